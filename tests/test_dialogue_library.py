"""The dialogue's library part on hand-made databases: property conditions, status and segment
triggers at refreshes, the send-time rule, rule checks, and the effect of a trigger measured by
``patron contact-effect --campaign TRIGGER`` on a simulation with a planted effect.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from patron.cli import app as cli_app
from patron.contact.dialogue import Dialogue, DialogueRules, EventFacts, dialogue_rules
from patron.contact.dialogue.outbox import matches
from patron.contact.dialogue.rules import Trigger, parse_delay
from patron.data.store import connect
from patron.errors import InputError
from patron.service.event_tables import create_event_tables

T0 = datetime(2024, 6, 3, 12, 0)
"""The dialogue's clock in these tests (naive UTC, a Monday noon: outside default quiet hours)."""

DEST = [{"name": "crm", "url": "http://127.0.0.1:9/hook"}]


def dialogue(triggers: list[dict[str, Any]], config: dict[str, Any] | None = None) -> Dialogue:
    cfg = {**(config or {}), "triggers": triggers, "destinations": DEST}
    return Dialogue(dialogue_rules(cfg), config=cfg, clock=lambda: T0)


def database(path: Path, people: list[str]) -> Path:
    with connect(path) as con:
        create_event_tables(con)
        con.executemany("INSERT INTO customers (customer_id) VALUES (?)", [[p] for p in people])
    return path


def states(con: Any) -> dict[tuple[str, str], tuple[str, str]]:
    rows = con.execute("SELECT trigger, customer_id, state, reason FROM trigger_firings").fetchall()
    return {(t, c): (s, r) for t, c, s, r in rows}


def profiles(con: Any, rows: dict[str, tuple[str, str]]) -> None:
    """Replace ``customer_profiles`` with ``{customer: (status, value_tier)}``."""
    con.execute("CREATE OR REPLACE TABLE customer_profiles (customer_id VARCHAR, status VARCHAR, value_tier VARCHAR)")
    con.executemany("INSERT INTO customer_profiles VALUES (?, ?, ?)", [[c, s, v] for c, (s, v) in rows.items()])


# --- conditions ---------------------------------------------------------------------------------


def _ev(event: str = "Order Completed", **props: Any) -> EventFacts:
    return EventFacts("m", "c", event, T0, T0, {"event": event, "properties": props})


@pytest.mark.parametrize(("where", "props", "fires"), [
    ({}, {}, True),
    ({"properties.total": 30}, {"total": 30}, True),
    ({"properties.total": 30}, {"total": 31}, False),
    ({"properties.total": {">=": 30, "<": 100}}, {"total": 99.5}, True),
    ({"properties.total": {">=": 30, "<": 100}}, {"total": 100}, False),
    ({"properties.total": {">": 10}}, {"total": "50"}, False),  # text is not a number
    ({"properties.total": {">": 10}}, {}, False),
    ({"properties.coupon": {"exists": False}}, {}, True),
    ({"properties.coupon": {"exists": False}}, {"coupon": None}, False),
    ({"properties.category": {"in": ["books", "music"]}}, {"category": "music"}, True),
    ({"properties.category": {"!=": "books"}}, {"category": "books"}, False),
    ({"properties.shipping.country": "FR"}, {"shipping": {"country": "FR"}}, True),
    ({"properties.shipping.country": "FR"}, {"shipping": "FR"}, False),
    ({"properties.flag": {">": 0}}, {"flag": True}, False),  # a boolean is not a number
])
def test_where_conditions(where: dict[str, Any], props: dict[str, Any], fires: bool) -> None:
    t = Trigger(name="t", event="Order Completed", where=where, destination="crm")
    assert matches(t, _ev(**props)) is fires
    assert matches(t, _ev("Product Viewed", **props)) is False


@pytest.mark.parametrize(("text", "seconds"), [("45s", 45), ("30m", 1800), ("12h", 43200), ("3d", 259200),
                                               ("2w", 1209600), ("1.5h", 5400)])
def test_delays(text: str, seconds: int) -> None:
    assert parse_delay(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["3", "d3", "3 days", "-1d", "400d"])
def test_bad_delays(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_delay(bad)


def test_rules_errors_name_the_trigger_and_field() -> None:
    with pytest.raises(InputError, match=r"trigger t: channel: 'fax' is not a channel"):
        dialogue_rules({"triggers": [{"name": "t", "event": "E", "channel": "fax", "destination": "crm"}],
                        "destinations": DEST})
    with pytest.raises(InputError, match=r"trigger 't' is declared twice"):
        dialogue_rules({"triggers": [{"name": "t", "event": "E", "destination": "crm"}] * 2, "destinations": DEST})
    with pytest.raises(InputError, match=r"on = status"):
        dialogue_rules({"triggers": [{"name": "t", "on": "segment", "segment": "x", "status_to": ["lost"],
                                      "destination": "crm"}], "destinations": DEST})
    with pytest.raises(InputError, match=r"trigger t: status_to: 'at-risk' is not a status"):
        dialogue_rules({"triggers": [{"name": "t", "on": "status", "status_to": ["at-risk"], "destination": "crm"}],
                        "destinations": DEST})
    with pytest.raises(InputError, match=r"triggers must be an array of tables"):
        dialogue_rules({"triggers": {"name": "t"}})
    assert dialogue_rules({}) == DialogueRules()


# --- status and segment triggers at refreshes -----------------------------------------------------


def test_status_triggers_fire_on_moves_between_refreshes(tmp_path: Path) -> None:
    people = ["a", "b", "c", "d"]
    db = database(tmp_path / "s.duckdb", people)
    d = dialogue([
        {"name": "win_back", "on": "status", "status_from": ["active"], "status_to": ["at_risk"], "purpose": "account",
         "destination": "crm"},
        {"name": "any_move", "on": "status", "purpose": "account", "destination": "crm"},
    ])
    with connect(db) as con:
        d.load(con)
        profiles(con, {"a": ("active", "gold"), "b": ("active", "gold"), "c": ("new", "bronze")})
        assert d.fire_status_changes(con) == []  # the first refresh seen: statuses recorded only
        profiles(con, {"a": ("at_risk", "gold"), "b": ("active", "gold"), "c": ("at_risk", "bronze"),
                       "d": ("new", "bronze")})
        sent = d.fire_status_changes(con)
        got = states(con)
        assert got == {("win_back", "a"): ("pending", "allowed"), ("any_move", "a"): ("pending", "allowed"),
                       ("any_move", "c"): ("pending", "allowed")}
        assert len(sent) == 3
        assert d.fire_status_changes(con) == []  # no move since: nothing more
        assert len(states(con)) == 3


def test_segment_triggers_fire_on_entering_and_leaving(tmp_path: Path) -> None:
    db = database(tmp_path / "g.duckdb", ["a", "b", "c"])
    d = dialogue([
        {"name": "vip_in", "on": "segment", "segment": "value_tier = 'gold'", "purpose": "account", "destination": "crm"},
        {"name": "vip_out", "on": "segment", "segment": "value_tier = 'gold'", "change": "leave", "purpose": "account",
         "destination": "crm"},
    ])
    with connect(db) as con:
        d.load(con)
        profiles(con, {"a": ("active", "gold"), "b": ("active", "silver"), "c": ("active", "gold")})
        assert d.fire_segment_changes(con) == []
        profiles(con, {"a": ("active", "gold"), "b": ("active", "gold"), "c": ("active", "silver")})
        d.fire_segment_changes(con)
        assert {k: v[0] for k, v in states(con).items()} == {("vip_in", "b"): "pending", ("vip_out", "c"): "pending"}


def test_send_if_is_checked_at_send_time(tmp_path: Path) -> None:
    db = database(tmp_path / "f.duckdb", ["a", "b"])
    d = dialogue([{"name": "t", "event": "Order Completed", "delay": "1h", "send_if": "status in [active, new]",
                   "purpose": "order", "destination": "crm"}])
    with connect(db) as con:
        d.load(con)
        profiles(con, {"a": ("active", "gold"), "b": ("active", "gold")})
        d.fire_events(con, [EventFacts(f"m{p}", p, "Order Completed", T0, T0, {}) for p in ("a", "b")])
        profiles(con, {"a": ("active", "gold"), "b": ("lost", "gold")})  # b's status changes before the send
        d.clock = lambda: T0 + timedelta(hours=2)
        d.decide(con)
        assert {c: v for (_, c), v in states(con).items()} == {"a": ("pending", "allowed"), "b": ("excluded", "send_if")}


def test_old_events_fire_nothing(tmp_path: Path) -> None:
    db = database(tmp_path / "o.duckdb", ["a"])
    d = dialogue([{"name": "t", "event": "Order Completed", "purpose": "order", "destination": "crm"}])
    with connect(db) as con:
        d.load(con)
        old = EventFacts("m1", "a", "Order Completed", T0 - timedelta(days=2), T0, {})
        assert d.fire_events(con, [old]) == [] and states(con) == {}


# --- the effect of a trigger ----------------------------------------------------------------------


def test_contact_effect_recovers_a_planted_trigger_effect(tmp_path: Path) -> None:
    """4,000 persons fire a trigger with a 50% holdout; the test plants purchases in the 30 days
    after the firing with probability 0.10 for the held-out and 0.18 for the sent (the arms known
    from the documented md5 draw, computed here). ``patron contact-effect --campaign`` must bracket
    the planted lift of 0.08 and exclude zero."""
    n, p0, p1 = 4000, 0.10, 0.18
    people = [f"p{i}" for i in range(n)]
    db = database(tmp_path / "e.duckdb", people)
    d = dialogue([{"name": "thanks", "event": "Order Completed", "purpose": "order", "holdout": 0.5,
                   "destination": "crm"}])
    held = {p for p in people
            if int(hashlib.md5(f"0:thanks:{p}".encode()).hexdigest()[:13], 16) / 16**13 < 0.5}
    rng = np.random.default_rng(20240603)
    buys = rng.random(n) < np.where([p in held for p in people], p0, p1)
    days = rng.uniform(1, 29, n)
    with connect(db) as con:
        d.load(con)
        d.fire_events(con, [EventFacts(f"m{p}", p, "Order Completed", T0 - timedelta(minutes=1), T0, {}) for p in people])
        con.executemany(
            "INSERT INTO transactions (customer_id, order_id, occurred_at, amount) VALUES (?, ?, ?, 25.0)",
            [[p, f"o{p}", T0 + timedelta(days=float(days[i]))] for i, p in enumerate(people) if buys[i]]
            + [["z", "late", T0 + timedelta(days=60)]])  # data past the window: the outcome is complete
        arms = dict(con.execute("SELECT in_holdout, count(*) FROM contacts WHERE campaign_id = 'thanks' GROUP BY ALL").fetchall())
    assert arms == {True: len(held), False: n - len(held)}
    result = CliRunner().invoke(cli_app, ["contact-effect", "--db", str(db), "--campaign", "thanks", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["campaigns"][0]
    assert (row["campaign_id"], row["n_treated"], row["n_control"]) == ("thanks", n - len(held), len(held))
    assert row["response_lift_lower"] <= p1 - p0 <= row["response_lift_upper"]
    assert row["response_lift_lower"] > 0
    # the report's section lists the trigger with the same counts and the lift
    from patron.report.dialogue_section import dialogue_section, trigger_table

    table = trigger_table(str(db))
    got = table.set_index("trigger").loc["thanks"]
    assert (got["firings"], got["sends"], got["held_out"], got["excluded"], got["dead"]) == (n, n - len(held), len(held), 0, 0)
    assert got["response_lift_lower"] <= p1 - p0 <= got["response_lift_upper"]
    section = dialogue_section(str(db), object())
    assert section is not None and section.tables[0][1].shape[0] == 1


def test_the_report_leaves_the_section_out_when_no_trigger_fired(tmp_path: Path) -> None:
    from patron.report.dialogue_section import dialogue_section

    db = database(tmp_path / "n.duckdb", ["a"])
    assert dialogue_section(str(db), object()) is None


def test_a_segment_rule_the_profiles_cannot_answer_skips_only_its_trigger(tmp_path: Path) -> None:
    db = database(tmp_path / "r.duckdb", ["a", "b"])
    d = dialogue([
        {"name": "broken", "on": "segment", "segment": "no_such_column > 1", "purpose": "account", "destination": "crm"},
        {"name": "gold", "on": "segment", "segment": "value_tier = 'gold'", "purpose": "account", "destination": "crm"},
    ])
    with connect(db) as con:
        d.load(con)
        profiles(con, {"a": ("active", "silver"), "b": ("active", "silver")})
        d.fire_segment_changes(con)
        with pytest.raises(InputError, match="trigger broken"):
            d.check_rules(con, d.trigger("broken"))
        profiles(con, {"a": ("active", "gold"), "b": ("active", "silver")})
        d.fire_segment_changes(con)
        assert {k: v[0] for k, v in states(con).items()} == {("gold", "a"): "pending"}
