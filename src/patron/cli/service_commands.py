"""Commands of the service: ``patron serve`` (and ``patron keys``, added by the auth module)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from patron.cli.app import DbOption, app, err
from patron.settings import get_settings


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    config: Annotated[Path | None, typer.Option("--config", help=r"Rules file with a \[service] section.")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the Segment-spec event API, the profile API and the dashboard over one database file.

    While it runs, this process owns the file: other patron commands that open it stop with a
    message naming the service; send changes through its HTTP API."""
    import uvicorn

    from patron.service import create_app
    from patron.store import service_file

    path = db or get_settings().db
    application = create_app(path, config=config)
    marker = service_file(path)
    url = f"http://{host}:{port}"
    marker.write_text(json.dumps({"pid": os.getpid(), "url": url}), encoding="utf-8")
    err.print(f"patron serving {path} at {url} (docs at {url}/docs)")
    try:
        uvicorn.run(application, host=host, port=port, log_level=log_level, access_log=False)
    finally:
        try:
            if json.loads(marker.read_text(encoding="utf-8")).get("pid") == os.getpid():
                marker.unlink()
        except (OSError, ValueError):
            pass
