"""Commands about one person named by any identifier: ``patron customer`` (the single view) and
``patron contact-check`` (may they be contacted now?). The same code answers
``GET /v1/customers/{identifier}`` and ``POST /v1/contacts/check`` in ``patron serve``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from patron.cli.app import DbOption, JsonOption, app, out
from patron.cli.choices import Channel, choice

IdentifierArgument = Annotated[str, typer.Argument(
    help="Any identifier of the person: customer id, userId, anonymousId, email (any case) or phone (any format).")]

ConfigOption = Annotated[Path | None, typer.Option(
    "--config", help="Rules file ([segments], [contact_policy], [rfm]) [default: $PATRON_CONFIG or ./patron.toml].")]


@app.command("customer")
def customer_command(identifier: IdentifierArgument, db: DbOption = None, config: ConfigOption = None,
                     as_json: JsonOption = False) -> None:
    """The single view of one person: identities, traits, scores of the last profiles build
    (patron profiles, or a refresh of the service), segments, consents, preferences, recent orders
    and contacts, identity merges; the same whichever identifier names them."""
    from patron.service.profile_view import customer_view

    view = customer_view(db, identifier, config=config)
    if as_json:
        typer.echo(json.dumps(view, default=str))
        return
    scores = view.get("scores") or {}
    out.print(f"[bold]{view['customer_id']}[/]" + (f" ({scores.get('status')}: {scores.get('status_reason')})" if scores else
                                                   " (no scores yet: run patron profiles)"))
    if scores:
        out.print(f"CLV {scores.get('clv'):,.2f} [{scores.get('clv_lower'):,.2f}, {scores.get('clv_upper'):,.2f}], "
                  f"P(alive) {scores.get('probability_alive'):.2f}, {scores.get('n_orders')} orders as of {scores.get('as_of')}")
    out.print("identities: " + ", ".join(f"{i['kind']}={i['value']}" for i in view["identities"]))
    out.print("consents: " + (", ".join(f"{c['purpose']}/{c['channel']} {c['reason']}" for c in view["consents"]) or "none"))
    out.print(f"recent orders: {len(view['recent_orders'])}, recent contacts: {len(view['recent_contacts'])}, "
              f"segments: {', '.join(view['segments']) or 'none'}")


@app.command("contact-check")
def contact_check_command(
    identifier: IdentifierArgument,
    channel: Annotated[Channel, typer.Option("--channel", help="The channel the message would go out on.", **choice())],
    purpose: Annotated[str, typer.Option("--purpose", help="A marketing purpose (needs consent) or a transactional one ([contact_policy]).")] = "marketing",
    at: Annotated[str | None, typer.Option("--at", help="When the message would go out (ISO 8601; no offset = UTC) [default: now].")] = None,
    topic: Annotated[str | None, typer.Option("--topic", help="Topic of the message.")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """May this person be contacted on this channel for this purpose at this time? The contact
    planner's rules for one person (docs/consent.md); a no is an answer (exit 0), with its reason."""
    from patron.errors import InputError
    from patron.service.contact_check import contact_decision

    try:
        when = dt.datetime.fromisoformat(at.replace("Z", "+00:00")) if at else None
    except ValueError:
        raise InputError(f"--at: not an ISO 8601 time: {at!r}") from None
    decision = contact_decision(db, identifier, channel=channel, purpose=purpose, at=when, topic=topic, config=config)
    if as_json:
        typer.echo(decision.model_dump_json())
        return
    verdict = "[green]allowed[/]" if decision.allowed else f"[red]not allowed[/] ({decision.reason})"
    out.print(f"{decision.customer_id or identifier}: {verdict}: {decision.message}")
