"""Commands about consent and contact: ``patron consent`` and ``patron plan``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from patron.cli.app import DbOption, JsonOption, _print_json, app, out
from patron.cli.output import records

ConfigOption = Annotated[Path | None, typer.Option("--config", help="Rules file with [contact_policy] [default: $PATRON_CONFIG or ./patron.toml].")]



@app.command()
def consent(
    customer_id: Annotated[str | None, typer.Argument(help="Any identifier of a customer (customer id, userId, email, phone): their consent state and full ledger history.")] = None,
    db: DbOption = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="State as of this ISO time (UTC unless an offset is given) [default: now].")] = None,
    as_json: JsonOption = False,
) -> None:
    """Consent derived from the append-only ledger: one customer's state and history, or counts of
    customers granted / denied / revoked / expired per purpose and channel."""
    from rich.table import Table

    from patron.contact.consent import consent_counts, consent_history, consent_state

    if customer_id is None:
        counts = consent_counts(db, as_of=as_of)
        if as_json:
            _print_json({"as_of": as_of, "counts": records(counts)})
            return
        t = Table(title="Consent by purpose and channel (customers)", title_justify="left")
        for col in counts.columns:
            t.add_column(col, justify="right" if col not in ("purpose", "channel") else "left")
        for row in counts.itertuples(index=False):
            t.add_row(*[f"{v:,}" if isinstance(v, int) else str(v) for v in row])
        out.print(t)
        return
    from patron.data.store import reader
    from patron.people.identity import resolve_identifier

    with reader(db) as con:  # any identifier of the person: their customer id, user id, email, phone
        customer_id = resolve_identifier(con, customer_id) or customer_id
    state = consent_state(db, as_of=as_of, customer_ids=[customer_id])
    history = consent_history(db, customer_id)
    if as_json:
        _print_json({"customer_id": customer_id, "as_of": as_of, "state": records(state), "history": records(history)})
        return
    t = Table(title=f"Consent of {customer_id}", title_justify="left")
    for col in ("purpose", "channel", "granted", "reason", "occurred_at", "expires_at", "decided_by"):
        t.add_column(col)
    for row in state.itertuples(index=False):
        t.add_row(row.purpose, row.channel, "yes" if row.granted else "no", row.reason, str(row.occurred_at),
                  "" if row.expires_at is None or row.expires_at != row.expires_at else str(row.expires_at), row.decided_by)
    out.print(t)
    h = Table(title="Ledger history (oldest first)", title_justify="left")
    for col in ("occurred_at", "purpose", "channel", "status", "expires_at", "source", "lawful_basis", "policy_version"):
        h.add_column(col)
    for row in records(history):
        h.add_row(*["" if row[c] is None else str(row[c]) for c in ("occurred_at", "purpose", "channel", "status", "expires_at", "source", "lawful_basis", "policy_version")])
    out.print(h)


@app.command("plan")
def plan_command(
    campaign: Annotated[Path, typer.Option("--campaign", help="Campaign file (.toml or .json): name, purpose, channel, class, target, send_at, ...")],
    db: DbOption = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the plan to a .csv or .parquet file.")] = None,
    config: ConfigOption = None,
    now: Annotated[str | None, typer.Option("--now", help="Current time for counting other campaigns' planned contacts [default: now].")] = None,
    as_json: JsonOption = False,
) -> None:
    """Plan a campaign: who is contacted when, and why everyone else is excluded (consent, caps,
    quiet hours, pause, status, holdout). The plan is stored in contact_plans."""
    from rich.table import Table

    from patron.contact.consent import plan as make_plan

    result = make_plan(db, campaign, now=now, config=config)
    if out_file is not None:
        result.write(out_file)
    summary = result.summary()
    if out_file is not None:
        summary["out"] = str(out_file)
    if as_json:
        _print_json(summary)
        return
    t = Table(title=f"Plan {summary['plan_id']} for {summary['campaign']} ({summary['class']}, {summary['channel']}, "
              f"send {summary['send_at']} UTC): {summary['included']:,} of {summary['targeted']:,} included", title_justify="left")
    t.add_column("outcome")
    t.add_column("customers", justify="right")
    t.add_row("included", f"{summary['included']:,}")
    for why, n in summary["excluded"].items():
        t.add_row(f"excluded: {why}", f"{n:,}")
    out.print(t)
    out.print(f"ranked by {summary['value_source']}; expected value of included: {summary['expected_value_included']:,.2f}")
    if out_file is not None:
        out.print(f"plan written to {out_file}")
