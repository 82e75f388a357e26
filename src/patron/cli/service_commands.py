"""Commands of the service: ``patron serve`` and ``patron keys``."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from patron.cli.app import DbOption, JsonOption, app, err, get_settings, typer_app
from patron.cli.choices import LogLevel, Role, choice
from patron.extras import require


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    config: Annotated[Path | None, typer.Option("--config", help="Rules file with a [service] section.")] = None,
    log_level: Annotated[LogLevel, typer.Option("--log-level", help="uvicorn log level.", **choice())] = "warning",
    workers: Annotated[int, typer.Option(
        "--workers", min=0, max=64,
        help="Acceptor processes taking the HTTP requests (event endpoints answered by them, the rest "
             "passed to this process, which alone writes the database); 0: this process serves everything. "
             "See docs/service.md, 'Throughput'.")] = 0,
) -> None:
    """Serve the Segment-spec event API, the profile API, the dashboard and the customers'
    preference center over one database file.

    While it runs, this process owns the file: commands that change it stop with one line naming
    the service (send changes through its HTTP API); read-only commands (status, summary,
    segments, equity, report, export-customer, keys list, ...) read the snapshot the service
    keeps beside it and say how old it is. A second server on the same file stops with one line
    naming the running one."""
    require("service", "patron serve")
    import uvicorn

    from patron.data.served import Server, remove_marker, running_server, write_marker
    from patron.data.store import close_served, open_served
    from patron.errors import InputError
    from patron.service import create_app

    path = db or get_settings().db
    running = running_server(path)
    if running is not None and running.pid != os.getpid():
        raise InputError(f"database {path} is already served by patron serve ({running.describe()}): "
                         "stop that one first, or serve another database")
    plan = None
    if workers:
        import errno
        import socket
        import time

        from patron.service.acceptors import AcceptorPlan

        deadline = time.monotonic() + 5.0  # acceptors of a killed server may take a moment to die
        while True:
            try:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                listener = socket.create_server((host, port), family=family, backlog=2048)
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
                time.sleep(0.1)
        plan = AcceptorPlan(workers, listener.fileno(), config=str(config) if config is not None else None,
                            log_level=log_level)
    application = create_app(path, config=config, acceptors=plan)
    open_served(path)  # hold the file from here on: another holder stops us with one line naming it
    url = f"http://{host}:{port}"
    me = os.getpid()
    write_marker(path, Server(me, url, application.state.patron.rules.snapshot_every_minutes))
    err.print(f"patron serving {path} at {url} (docs at {url}/docs)")
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with the handler that was
    # there before it: make that handler an orderly exit so the marker below is removed.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        if plan is None:
            uvicorn.run(application, host=host, port=port, log_level=log_level, access_log=False)
        else:  # the acceptors take the port; this process answers them on a Unix socket
            uvicorn.run(application, uds=str(plan.http_socket), log_level=log_level, access_log=False)
    finally:
        close_served(path)
        remove_marker(path, me)


# -- patron keys -----------------------------------------------------------------------------

keys_app = typer_app(help="API keys of the service: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option("--role", help="write (event ingestion), read (profiles, scores, dashboard) or admin (everything).", **choice())],
    name: Annotated[str | None, typer.Option("--name", help="A label, e.g. the sending system.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key and print it once (only its SHA-256 hash is stored).

    Send it as the HTTP Basic user name with an empty password (the Segment and RudderStack SDKs'
    write key) or as Authorization: Bearer KEY. While patron serve holds the database, create keys
    through POST /v1/keys instead."""
    require("service", "patron keys create")
    from patron.service.auth import create_key_record

    record, key = create_key_record(db or get_settings().db, role, name)
    if as_json:
        typer.echo(json.dumps({"key_id": record.key_id, "role": record.role, "name": record.name, "key": key}))
        return
    err.print(f"created {record.role} key {record.key_id}" + (f" ({record.name})" if record.name else "")
              + "; it is shown only now:")
    typer.echo(key)


@keys_app.command("list")
def keys_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List API keys (live and revoked) without secrets."""
    require("service", "patron keys list")
    from patron.service.auth import list_keys

    keys = list_keys(db or get_settings().db)
    if as_json:
        typer.echo(json.dumps([k.to_dict() for k in keys]))
        return
    if not keys:
        err.print("no API keys yet: patron keys create --role write")
        return
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "live"
        typer.echo(f"{k.key_id}  {k.role:<5}  {state:<22}  created {k.created_at:%Y-%m-%d %H:%M}  {k.name or ''}".rstrip())


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from patron keys list).")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke an API key: requests carrying it get 401 from then on."""
    require("service", "patron keys revoke")
    from patron.service.auth import revoke_key

    record = revoke_key(db or get_settings().db, key_id)
    if as_json:
        typer.echo(json.dumps(record.to_dict()))
        return
    typer.echo(f"revoked {record.key_id} ({record.role}) at {record.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


# -- patron preference-link ----------------------------------------------------------------------


@app.command("preference-link")
def preference_link(
    identifier: Annotated[str, typer.Argument(help="Any identifier of the customer: customer id, user id, email, phone.")],
    db: DbOption = None,
    hours: Annotated[float | None, typer.Option("--hours", min=0.01, max=2160, help="Hours the link is valid [default: [preference_center] link_hours, 168].")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="Address customers reach the service at [default: [preference_center] public_url, else the running service's, else http://127.0.0.1:8000].")] = None,
    revoke: Annotated[bool, typer.Option("--revoke", help="Withdraw every link (and open page) of the customer instead.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="Rules file with a [preference_center] section.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Print a signed, expiring link to a customer's own page, where they see what is held about
    them and what they get back, change their consents and preferences, download or erase their
    data. The link opens that person's page only.

    Beside a running service the link is made from its snapshot; a customer's first link is a
    change to the database, made through the service then (POST /v1/customers/{id}/preference-link)."""
    from patron.config import section
    from patron.contact.consent.times import now_utc
    from patron.data.store import connect, reader, served_elsewhere
    from patron.errors import InputError
    from patron.service.links import LinkError, page_link
    from patron.service.links import revoke as revoke_links
    from patron.service.settings import PreferenceCenterRules

    rules = section("preference_center", PreferenceCenterRules, config)
    path = db or get_settings().db
    server = served_elsewhere(path)
    now = now_utc()
    if revoke:
        with connect(path) as con:  # a write: beside a running service this stops with one line naming it
            customer_id = _resolve(con, identifier)
            done = revoke_links(con, customer_id, now)
        if as_json:
            typer.echo(json.dumps({"customer_id": customer_id, "revoked": done}))
        else:
            err.print(f"every link of {customer_id} withdrawn" if done else f"{customer_id} had no link")
        return
    base = (base_url or rules.public_url or (server.url if server else "http://127.0.0.1:8000")).rstrip("/")
    opened = reader(path) if server else connect(path)
    with opened as con:
        customer_id = _resolve(con, identifier)
        try:
            link = page_link(con, customer_id, hours=hours or rules.link_hours, base_url=base, now=now,
                             create=server is None)
        except LinkError as exc:
            raise InputError(f"{exc}: while patron serve ({server.describe() if server else '?'}) holds {path}, make it "
                             f"with POST {base}/v1/customers/{{identifier}}/preference-link and an admin key") from None
    if as_json:
        typer.echo(json.dumps(link))
        return
    err.print(f"link to the page of {customer_id}, valid until {link['expires_at']}:")
    typer.echo(link["url"])


def _resolve(con: Any, identifier: str) -> str:
    """The person id ``identifier`` names (as the service resolves it), or a one-line error."""
    from patron.errors import NoDataError
    from patron.service.profile_view import resolve_customer

    found = resolve_customer(con, identifier)
    if found is None:
        raise NoDataError(f"no customer matches {identifier!r}")
    return str(found)
