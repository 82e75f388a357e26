"""Run lifetimes' Quickstart (docs/Quickstart.md of a lifetimes 0.11.3 checkout) against
patron.compat.lifetimes, changing nothing but the import lines, and print what it prints.

    .venv/bin/python scripts/lifetimes-quickstart.py LIFETIMES_SOURCE

Every fenced code block of the Quickstart is run in order in one namespace (with a
non-interactive matplotlib backend); in each, ``from lifetimes...`` / ``import lifetimes`` become
the same import from ``patron.compat.lifetimes``, and no other line changes. The script prints
how many lines it changed and fails if any block raises. Nothing from lifetimes is copied into
this repository.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

IMPORT = re.compile(r"^(\s*)(from|import)\s+lifetimes\b")


def blocks(markdown: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"```[a-zA-Z]*\n(.*?)```", markdown, flags=re.S)]


def main() -> None:
    source = Path(sys.argv[1]) / "docs" / "Quickstart.md"
    code = blocks(source.read_text())
    changed = total = 0
    namespace: dict = {"__name__": "__quickstart__"}
    for i, block in enumerate(code, 1):
        lines = []
        for line in block.splitlines():
            total += bool(line.strip())
            if re.fullmatch(r"\s*import\s+lifetimes\s*", line):
                new = line.replace("import lifetimes", "import patron.compat.lifetimes as lifetimes")
            else:
                new = IMPORT.sub(lambda m: f"{m.group(1)}{m.group(2)} patron.compat.lifetimes", line)
            changed += new != line
            lines.append(new)
        print(f"--- block {i}")
        exec(compile("\n".join(lines), f"Quickstart block {i}", "exec"), namespace)
    print(f"ran {len(code)} blocks, {total} non-blank lines, {changed} changed (imports only)")


if __name__ == "__main__":
    main()
