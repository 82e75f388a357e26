#!/usr/bin/env bash
# Install the official Segment and RudderStack Node SDKs into .node-sdks/ (from the npm registry),
# for tests/test_service_sdks.py. Does nothing when they are already there; needs node and npm.
# Tests never download: without this folder the Node SDK test is skipped with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.node-sdks
PACKAGES=("@segment/analytics-node@2" "@rudderstack/rudder-sdk-node@2")
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-node-sdks: node and npm are needed (apt-get install nodejs npm); skipping" >&2
  exit 0
fi
if [ -f "$DEST/node_modules/@segment/analytics-node/package.json" ] \
   && [ -f "$DEST/node_modules/@rudderstack/rudder-sdk-node/package.json" ]; then
  exit 0
fi
mkdir -p "$DEST"
[ -f "$DEST/package.json" ] || echo '{"name": "patron-node-sdks", "private": true}' > "$DEST/package.json"
npm install --prefix "$DEST" --no-audit --no-fund --loglevel=error "${PACKAGES[@]}"
echo "install-node-sdks: installed ${PACKAGES[*]} into $DEST"
