"""The contact planner on hand-built data with known answers, campaign-file errors, and the CLI.

Each expected outcome is worked out by hand from the rules in docs/consent.md (noted per case).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from patron.cli import main
from patron.contact.consent import Plan, load_campaign, plan, read_id_list, record_consent
from patron.contact.consent.planner import PLANS_DDL
from patron.data.ingest import ingest
from patron.data.store import connect
from patron.errors import InputError, NoDataError

SEND = "2024-03-01T10:00:00Z"
"""A Friday, 10:00 UTC: 19:00 in Tokyo, 05:00 in New York."""
NO_QUIET = {"contact_policy": {"quiet_hours_start": 0, "quiet_hours_end": 0}}


def _setup(db: str, ids: list[str], *, spend: list[float] | None = None) -> None:
    spend = spend or [10.0 * (i + 1) for i in range(len(ids))]
    ingest(pd.DataFrame({"customer_id": ids, "occurred_at": ["2024-01-01"] * len(ids), "amount": spend}), kind="transactions", db=db)
    record_consent(db, [{"customer_id": c, "purpose": "marketing", "channel": "any", "status": "granted", "occurred_at": "2024-01-01"} for c in ids])


def _campaign(**kw: object) -> dict:
    base = {"name": "c", "purpose": "marketing", "channel": "email", "class": "marketing", "send_at": SEND}
    base.update(kw)
    return base


def _reasons(p: Plan) -> dict[str, str]:
    return dict(zip(p.table["customer_id"], p.table["reason"], strict=True))


def _count(db: str, table: str) -> int:
    with connect(db) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def test_quiet_hours_move_inside_window_else_exclude(db: str) -> None:
    _setup(db, ["tokyo", "ny", "utc"])
    ingest(pd.DataFrame({"customer_id": ["tokyo", "ny"], "occurred_at": ["2024-01-01"] * 2, "channel": ["any", "email"],
                         "time_zone": ["Asia/Tokyo", "America/New_York"]}), kind="preferences", db=db)
    # Send 13:00 UTC = 22:00 Tokyo (quiet 21-8) -> 08:00 Tokyo = 23:00 UTC, inside a window to 23:30.
    p = plan(db, _campaign(send_at="2024-03-01T13:00:00Z", send_window_end="2024-03-01T23:30:00Z", target_ids=["tokyo", "ny", "utc"]), now="2024-02-01")
    t = p.table.set_index("customer_id")
    assert t.loc["tokyo", "included"] and t.loc["tokyo", "send_at"] == pd.Timestamp("2024-03-01 23:00:00")
    # 13:00 UTC = 08:00 New York (EST): quiet ends exactly then, so no move. UTC: 13:00 is fine.
    assert t.loc["ny", "send_at"] == pd.Timestamp("2024-03-01 13:00:00") and t.loc["utc", "included"]
    # Window ending 22:00 UTC: the move to 23:00 is too late -> excluded for quiet hours.
    p = plan(db, _campaign(send_at="2024-03-01T13:00:00Z", send_window_end="2024-03-01T22:00:00Z", target_ids=["tokyo"]), now="2024-02-01")
    assert _reasons(p) == {"tokyo": "quiet_hours"}


def test_customer_quiet_hours_add_to_policy_and_dst_is_respected(db: str) -> None:
    _setup(db, ["a"])
    # Own quiet hours 9-12 London; policy 21-8. 2024-03-31 is the spring-forward day in London.
    ingest(pd.DataFrame({"customer_id": ["a"], "occurred_at": ["2024-01-01"], "channel": ["email"], "time_zone": ["Europe/London"],
                         "quiet_hours_start": [9], "quiet_hours_end": [12]}), kind="preferences", db=db)
    # 00:30 UTC on 31 March = 00:30 GMT: quiet until 08:00 BST (07:00 UTC), then own quiet 9-12 does not
    # contain 08:00, so the send is 07:00 UTC.
    p = plan(db, _campaign(send_at="2024-03-31T00:30:00Z", send_window_end="2024-03-31T23:00:00Z", target_ids=["a"]), now="2024-02-01")
    assert p.table.loc[0, "send_at"] == pd.Timestamp("2024-03-31 07:00:00")
    # 09:30 UTC = 10:30 BST: inside own quiet hours -> 12:00 BST = 11:00 UTC.
    p = plan(db, _campaign(send_at="2024-03-31T09:30:00Z", send_window_end="2024-03-31T23:00:00Z", target_ids=["a"]), now="2024-02-01")
    assert p.table.loc[0, "send_at"] == pd.Timestamp("2024-03-31 11:00:00")


def test_caps_count_sent_contacts_and_other_plans_and_preferences_only_tighten(db: str) -> None:
    _setup(db, ["a", "b", "c", "d"])
    contacts = pd.DataFrame({"customer_id": ["a", "a", "b", "b"], "channel": ["email", "email", "email", "sms"],
                             "occurred_at": ["2024-02-25T10:00:00", "2024-02-28T10:00:00", "2024-02-23T10:00:00", "2024-02-28T10:00:00"],
                             "kind": ["sent", "sent", "sent", "sent"]})
    ingest(contacts, kind="contacts", db=db, now=pd.Timestamp("2024-03-01").to_pydatetime())
    # c asks for at most 5 a week: the policy cap of 2 still applies. d asks for 0: never.
    ingest(pd.DataFrame({"customer_id": ["c", "d"], "occurred_at": ["2024-01-01"] * 2, "channel": ["email", "any"],
                         "max_per_week": [5, 0]}), kind="preferences", db=db)
    with connect(db) as con:
        con.execute(PLANS_DDL)
        # Another campaign plans c for 2024-03-05 and 2024-03-06 (after now): with this send that is 3 in a week.
        con.execute("INSERT INTO contact_plans (plan_id, campaign, channel, customer_id, send_at, included, reason) VALUES "
                    "('x', 'other', 'email', 'c', TIMESTAMP '2024-03-05 10:00:00', TRUE, 'included'), "
                    "('x', 'other', 'email', 'c', TIMESTAMP '2024-03-06 10:00:00', TRUE, 'included')")
    policy = {"contact_policy": {"quiet_hours_start": 0, "quiet_hours_end": 0, "channels": {"email": {"max_per_week": 2}}}}
    p = plan(db, _campaign(target_ids=["a", "b", "c", "d"]), now="2024-03-01", config=policy)
    # a: 2 email sends in the 7 days before -> 3 with this one: cap. b: one email send (sms does not count).
    assert _reasons(p) == {"a": "cap_reached", "b": "included", "c": "cap_reached", "d": "cap_reached"}
    # With 'now' after those planned sends they are assumed sent (or not), and no longer count.
    assert _reasons(plan(db, _campaign(name="c2", target_ids=["c"]), now="2024-03-07", config=policy))["c"] == "included"
    # Transactional messages are not capped and need no marketing consent.
    p = plan(db, _campaign(name="t", purpose="service", target_ids=["a", "d", "zz"], **{"class": "transactional"}), now="2024-03-01", config=policy)
    assert _reasons(p) == {"a": "included", "d": "included", "zz": "unknown_customer"}


def test_consent_pause_lost_topic_and_unknown(db: str) -> None:
    _setup(db, ["ok", "rev", "paused", "lost", "news_only", "no_rec", "badzone"])
    record_consent(db, [{"customer_id": "rev", "purpose": "marketing", "channel": "email", "status": "revoked", "occurred_at": "2024-02-01"}])
    with connect(db) as con:
        con.execute("DELETE FROM consents WHERE customer_id = 'no_rec'")  # test set-up only
        con.execute("CREATE TABLE customer_profiles (customer_id VARCHAR, as_of DATE, status VARCHAR, clv DOUBLE)")
        con.execute("INSERT INTO customer_profiles VALUES ('lost', DATE '2024-02-01', 'lost', 1), ('ok', DATE '2024-02-01', 'active', 5)")
    ingest(pd.DataFrame({"customer_id": ["paused", "news_only", "badzone"], "occurred_at": ["2024-01-01"] * 3, "channel": ["any"] * 3,
                         "paused_until": ["2024-03-02", None, None], "topics": [None, "news", None], "time_zone": [None, None, "Mars/Base"]}),
           kind="preferences", db=db)
    p = plan(db, _campaign(topic="offers", target_ids=["ok", "rev", "paused", "lost", "news_only", "no_rec", "badzone", "ghost"]),
             now="2024-02-01", config=NO_QUIET)
    assert _reasons(p) == {"ok": "included", "rev": "revoked", "paused": "paused", "lost": "lost", "news_only": "topic",
                           "no_rec": "no_consent", "badzone": "unknown_time_zone", "ghost": "unknown_customer"}
    assert p.summary()["excluded"]["revoked"] == 1 and p.summary()["value_source"] == "clv"


def test_ranking_prefers_incremental_value_then_clv_then_spend(db: str) -> None:
    _setup(db, ["a", "b", "c"], spend=[30.0, 20.0, 10.0])
    by_spend = plan(db, _campaign(target_ids=["a", "b", "c"]), now="2024-02-01", config=NO_QUIET).table
    assert list(by_spend.sort_values("rank")["customer_id"]) == ["a", "b", "c"]
    with connect(db) as con:
        con.execute("CREATE TABLE customer_profiles AS SELECT * FROM (VALUES ('a', DATE '2024-01-01', 1.0), ('b', DATE '2024-01-01', 3.0), ('c', DATE '2024-01-01', 2.0)) t(customer_id, as_of, clv)")
    assert list(plan(db, _campaign(target_ids=["a", "b", "c"]), now="2024-02-01", config=NO_QUIET).table.sort_values("rank")["customer_id"]) == ["b", "c", "a"]
    with connect(db) as con:
        con.execute("CREATE TABLE incremental_value AS SELECT * FROM (VALUES ('c', 9.0), ('a', 5.0)) t(customer_id, expected_incremental_value)")
    p = plan(db, _campaign(target_ids=["a", "b", "c"]), now="2024-02-01", config=NO_QUIET)
    assert list(p.table.sort_values("rank")["customer_id"]) == ["c", "a", "b"] and p.value_source == "incremental_value"


def test_holdout_is_deterministic_and_near_its_fraction(db: str) -> None:
    ids = [f"id{i:04d}" for i in range(2000)]
    _setup(db, ids)
    camp = _campaign(target_ids=ids, holdout_fraction=0.25, seed=3)
    a = plan(db, camp, now="2024-02-01", config=NO_QUIET)
    b = plan(db, camp, now="2024-02-01", config=NO_QUIET)
    held = set(a.table.loc[a.table["in_holdout"], "customer_id"])
    assert held == set(b.table.loc[b.table["in_holdout"], "customer_id"])
    # Binomial(2000, 0.25): sd = 19.4; 5 sd either side.
    assert abs(len(held) - 500) < 5 * 19.4
    other = plan(db, {**camp, "seed": 4}, now="2024-02-01", config=NO_QUIET)
    assert held != set(other.table.loc[other.table["in_holdout"], "customer_id"])


def test_plan_is_stored_and_replaced(db: str) -> None:
    _setup(db, ["a", "b"])
    plan(db, _campaign(target_ids=["a", "b"]), now="2024-02-01")
    plan(db, _campaign(target_ids=["a"]), now="2024-02-01")
    with connect(db) as con:
        rows = con.execute("SELECT campaign, customer_id FROM contact_plans").fetchall()
    assert rows == [("c", "a")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name = "x"\npurpose = "marketing"\nchannel = "fax"\ntarget_ids = ["a"]\nsend_at = "2024-03-01T10:00:00Z"\n', "field channel"),
        ('name = "x"\npurpose = "marketing"\nchannel = "email"\ntarget_ids = ["a"]\n', "field send_at"),
        ('name = "x"\npurpose = "marketing"\nchannel = "email"\ntarget_ids = ["a"]\nsend_at = "next tuesday"\n', "field send_at"),
        ('name = "x"\npurpose = "marketing"\nchannel = "email"\nsend_at = "2024-03-01T10:00:00Z"\n', "target"),
        ('name = "x"\npurpose = "marketing"\nchannel = "email"\nclass = "transactional"\ntarget_ids = ["a"]\nsend_at = "2024-03-01T10:00:00Z"\n', "field purpose"),
        ('name = "x"\npurpose = "marketing"\nchannel = "email"\ntarget_ids = ["a"]\nsend_at = "2024-03-01T10:00:00Z"\nholdout_fraction = 1.5\n', "field holdout_fraction"),
        ('name = "x"\npurpose = "marketing"\nchannel = "email"\ntarget_ids = ["a"]\nsend_at = "2024-03-01T10:00:00Z"\ncolour = "red"\n', "field colour"),
        ('name = "x"\npurpose = "marketing"\nchannel = "email"\ntarget_file = "ids.csv"\nsend_at = "2024-03-01T10:00:00Z"\n', "ids.csv: row 2, field customer_id"),
        ('name = "x\n', "not valid TOML"),
    ],
)
def test_bad_campaign_files_fail_in_one_line_and_write_nothing(db: str, tmp_path: Path, text: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    _setup(db, ["a"])
    (tmp_path / "ids.csv").write_text("customer_id,name\na,Ann\n,Nobody\nb,Bob\n")
    f = tmp_path / "camp.toml"
    f.write_text(text)
    with connect(db) as con:
        con.execute(PLANS_DDL)
    before = _count(db, "contact_plans")
    with pytest.raises(InputError) as exc:
        plan(db, f)
    assert expected in str(exc.value) and "\n" not in str(exc.value)
    assert str(f) in str(exc.value) or "ids.csv" in str(exc.value)
    assert main(["plan", "--campaign", str(f), "--db", db, "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err
    assert _count(db, "contact_plans") == before and not (tmp_path / "p.csv").exists()


def test_id_lists_and_json_campaigns(db: str, tmp_path: Path) -> None:
    (tmp_path / "plain.csv").write_text("a\nb\na\n")
    assert list(read_id_list(tmp_path / "plain.csv")) == ["a", "b"]
    _setup(db, ["a", "b"])
    (tmp_path / "ids.csv").write_text("customer_id,name\na,Ann\nb,Bob\n")
    f = tmp_path / "camp.json"
    f.write_text(json.dumps({"name": "j", "purpose": "marketing", "channel": "sms", "target_file": "ids.csv",
                             "send_at": "2024-03-01T11:00:00+01:00"}))
    camp = load_campaign(f)
    assert camp.send_at.isoformat() == "2024-03-01T10:00:00"
    assert set(plan(db, camp, now="2024-02-01", config=NO_QUIET).table["customer_id"]) == {"a", "b"}
    with pytest.raises(NoDataError):
        (tmp_path / "empty.csv").write_text("customer_id\n")
        plan(db, {**camp.model_dump(by_alias=True), "target_file": str(tmp_path / "empty.csv")}, now="2024-02-01")


def test_cli_plan_writes_file_and_json(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _setup(db, ["a", "b"])
    rules = tmp_path / "patron.toml"
    rules.write_text("[contact_policy]\nquiet_hours_start = 0\nquiet_hours_end = 0\n")
    f = tmp_path / "camp.toml"
    f.write_text('name = "x"\npurpose = "marketing"\nchannel = "email"\ntarget_ids = ["a", "b", "q"]\nsend_at = 2024-03-01T10:00:00Z\n')
    out = tmp_path / "plan.parquet"
    assert main(["plan", "--campaign", str(f), "--db", db, "--out", str(out), "--config", str(rules), "--now", "2024-02-01", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["targeted"], summary["included"], summary["excluded"]) == (3, 2, {"unknown_customer": 1})
    assert set(pd.read_parquet(out)["customer_id"]) == {"a", "b", "q"}
    assert main(["plan", "--campaign", str(f), "--db", db, "--config", str(rules)]) == 0
    assert "included" in capsys.readouterr().out


def test_segment_rule_target_uses_customer_profiles(db: str) -> None:
    """Target by a segment rule (patron.relationship.segments.members); the rule n_orders >= 2 is checked by hand."""
    ids = [f"s{i}" for i in range(12)]
    rows = [(c, f"2024-01-{d:02d}", 10.0) for i, c in enumerate(ids) for d in range(1, 2 + i % 3)]
    ingest(pd.DataFrame(rows, columns=["customer_id", "occurred_at", "amount"]), kind="transactions", db=db)
    record_consent(db, [{"customer_id": c, "purpose": "marketing", "channel": "any", "status": "granted", "occurred_at": "2024-01-01"} for c in ids])
    p = plan(db, _campaign(target="n_orders >= 2"), now="2024-02-01", config=NO_QUIET)
    assert set(p.table["customer_id"]) == {c for i, c in enumerate(ids) if 1 + i % 3 >= 2}
