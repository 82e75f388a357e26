"""A segment's member list: ``patron segments --members NAME --out FILE`` and the SQL behind it
(:func:`patron.relationship.segments.write_members`), on the hand-made profiles of
:mod:`tests.test_segments`, whose members are worked out by hand there."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from patron.cli import main
from patron.data.store import connect
from patron.errors import NoDataError
from patron.relationship.segments import MEMBER_COLUMNS, write_members
from tests.test_segments import HAND_PROFILES, profiles_db  # noqa: F401  (the fixture)

BY_ID = {p[0]: p for p in HAND_PROFILES}


def test_members_file_lists_the_segment_by_id_with_profile_columns(profiles_db, tmp_path):  # noqa: F811
    # built-in at_risk_valuable: cooling or at_risk and platinum or gold -> c03 (cooling, gold) only;
    # c04 and c05 are at_risk but silver.
    path = tmp_path / "members.csv"
    assert write_members(profiles_db, "at_risk_valuable", path) == 1
    frame = pd.read_csv(path, dtype={"customer_id": str})
    assert frame["customer_id"].tolist() == ["c03"]
    assert frame.loc[0, "status"] == "cooling" and frame.loc[0, "value_tier"] == "gold" and frame.loc[0, "clv"] == 150.0
    assert list(frame.columns) == [c for c in MEMBER_COLUMNS if c in frame.columns]
    assert list(frame.columns)[:4] == ["customer_id", "status", "value_tier", "clv"]


def test_members_of_a_rules_file_segment_in_csv_and_parquet(profiles_db, tmp_path, capsys):  # noqa: F811
    rules = tmp_path / "r.toml"
    rules.write_text('[segments]\nbig = "clv >= 100"\n')
    expected = sorted(k for k, p in BY_ID.items() if p[2] >= 100)  # c01 500, c02 200, c03 150, c04 100
    assert expected == ["c01", "c02", "c03", "c04"]
    csv_path, pq_path = tmp_path / "big.csv", tmp_path / "big.parquet"
    assert main(["segments", "--db", profiles_db, "--rules", str(rules), "--members", "big", "--out", str(csv_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"segment": "big", "members": 4, "out": str(csv_path)}
    frame = pd.read_csv(csv_path, dtype={"customer_id": str})
    assert frame["customer_id"].tolist() == expected
    assert frame["clv"].tolist() == [BY_ID[k][2] for k in expected]
    assert main(["segments", "--db", profiles_db, "--rules", str(rules), "--members", "big", "--out", str(pq_path)]) == 0
    assert "4 members of segment big written to" in capsys.readouterr().out
    assert pq.read_table(pq_path).column("customer_id").to_pylist() == expected


def test_members_csv_guards_formula_cells_but_not_numbers(profiles_db, tmp_path):  # noqa: F811
    with connect(profiles_db) as con:
        con.execute("UPDATE customer_profiles SET customer_id = '=HYPERLINK(1)' WHERE customer_id = 'c01'")
        con.execute("UPDATE customer_profiles SET customer_id = '+33612345678' WHERE customer_id = 'c02'")
    path = tmp_path / "m.csv"
    rules = tmp_path / "r.toml"
    rules.write_text('[segments]\nbig = "clv >= 200"\n')
    assert write_members(profiles_db, "big", path, rules=rules) == 2
    ids = pd.read_csv(path, dtype={"customer_id": str})["customer_id"].tolist()
    assert sorted(ids) == sorted(["'=HYPERLINK(1)", "+33612345678"])


def test_unknown_segment_is_one_line_naming_the_closest(profiles_db, tmp_path, capsys):  # noqa: F811
    with pytest.raises(NoDataError, match=r'^unknown segment "champs" \(did you mean champions\?\); defined: champions, '):
        write_members(profiles_db, "champs", tmp_path / "x.csv")
    assert main(["segments", "--db", profiles_db, "--members", "champs", "--out", str(tmp_path / "x.csv")]) != 0
    err = capsys.readouterr().err
    assert "unknown segment" in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()
    assert main(["segments", "--db", profiles_db, "--members", "champions"]) == 2
    assert "--members needs --out" in capsys.readouterr().err


# --- GET /v1/segments/{name}/members ----------------------------------------------------------

SERVICE_RULES = {"segments": {"everyone": "clv >= 0", "big": "clv >= 100", "formula": "status = 'lost'"}}
"""Segments of the served rules file: everyone (the 10 hand profiles), big (c01-c04), formula (c07)."""


@pytest.fixture
def served(profiles_db):  # noqa: F811
    from fastapi.testclient import TestClient

    from patron.service import create_app
    from tests.service_support import create_keys

    with connect(profiles_db) as con:  # an id a spreadsheet would run, for the CSV guard
        con.execute("UPDATE customer_profiles SET customer_id = '=c07' WHERE customer_id = 'c07'")
    keys = create_keys(profiles_db)
    with TestClient(create_app(profiles_db, config=SERVICE_RULES), raise_server_exceptions=False) as client:
        client.keys = keys  # type: ignore[attr-defined]
        yield client


def _get(client, path: str, role: str = "read", **params):
    return client.get(path, params=params, auth=(client.keys[role], ""))


def test_route_pages_through_every_member_by_cursor(served):
    expected = ["=c07", "c01", "c02", "c03", "c04", "c05", "c06", "c08", "c09", "c10"]  # by id: "=" before letters
    seen, cursor, pages = [], None, 0
    while True:
        r = _get(served, "/v1/segments/everyone/members", limit=3, **({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == 10 and body["limit"] == 3 and body["rule"] == "clv >= 0" and body["as_of"] == "2024-12-31"
        seen += [m["customer_id"] for m in body["members"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and pages == 4  # 3 + 3 + 3 + 1
    first = _get(served, "/v1/segments/big/members").json()
    assert [(m["customer_id"], m["clv"], m["status"], m["value_tier"]) for m in first["members"]] == [
        (k, BY_ID[k][2], BY_ID[k][1], BY_ID[k][3]) for k in ("c01", "c02", "c03", "c04")]
    assert first["next_cursor"] is None and first["total"] == 4


def test_route_csv_streams_all_members_guarded_and_pages_with_link(served, monkeypatch):
    import io

    from patron.service import segments_api

    monkeypatch.setattr(segments_api, "CSV_CHUNK", 4)  # 10 members: chunks of 4, 4, 2
    r = _get(served, "/v1/segments/everyone/members", format="csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="everyone-members.csv"' in r.headers["content-disposition"]
    frame = pd.read_csv(io.StringIO(r.text), dtype={"customer_id": str})
    # by stored id ("=" sorts before letters), the id a spreadsheet would run prefixed with "'"
    assert frame["customer_id"].tolist() == ["'=c07", "c01", "c02", "c03", "c04", "c05", "c06", "c08", "c09", "c10"]
    assert dict(zip(frame["customer_id"], frame["clv"], strict=True))["c01"] == 500.0
    page = _get(served, "/v1/segments/everyone/members", format="csv", limit=6)
    assert len(pd.read_csv(io.StringIO(page.text))) == 6
    assert page.headers["link"].startswith("</v1/segments/everyone/members?format=csv&limit=6&cursor=")
    rest = _get(served, "/v1/segments/everyone/members", format="csv", limit=6, cursor=page.headers["x-next-cursor"])
    assert pd.read_csv(io.StringIO(rest.text), dtype={"customer_id": str})["customer_id"].tolist() == ["c06", "c08", "c09", "c10"]
    assert "x-next-cursor" not in rest.headers and "link" not in rest.headers


def test_route_refuses_unknown_segments_bad_cursors_and_missing_keys(served):
    r = _get(served, "/v1/segments/bigg/members")
    assert r.status_code == 404 and r.json()["error"].startswith('unknown segment "bigg" (did you mean big?); defined: ')
    r = _get(served, "/v1/segments/big/members", cursor="%%%")
    assert r.status_code == 400 and "cursor" in r.json()["error"]
    assert served.get("/v1/segments/big/members").status_code == 401
    assert _get(served, "/v1/segments/big/members", role="write").status_code == 403
    assert _get(served, "/v1/segments/big/members", limit=0).status_code == 422
    assert _get(served, "/v1/segments/big/members", format="xml").status_code == 422
    spec = served.get("/openapi.json", auth=(served.keys["read"], "")).json()
    route = spec["paths"]["/v1/segments/{name}/members"]["get"]
    assert {p["name"] for p in route["parameters"]} == {"name", "limit", "cursor", "format"}
    assert "text/csv" in route["responses"]["200"]["content"]


def test_route_without_scores_is_404(tmp_path):
    from fastapi.testclient import TestClient

    from patron.service import create_app
    from tests.service_support import create_keys

    db = tmp_path / "empty.duckdb"
    keys = create_keys(db)
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        r = client.get("/v1/segments/champions/members", auth=(keys["read"], ""))
    assert r.status_code == 404 and "no scores yet" in r.json()["error"]


def test_dashboard_member_pages(served):
    r = _get(served, "/segments")
    assert r.status_code == 200 and 'href="/segments?name=big"' in r.text and 'data-segment="everyone"' in r.text
    r = _get(served, "/segments", name="big", limit=3)
    assert r.status_code == 200 and r.text.count("<tr>") == 1 + 3  # header + c01, c02, c03
    assert "Next page" in r.text and "Download all 4 members as CSV" in r.text
    cursor = r.text.split('class="members-next" rel="next" href="/segments?')[1].split('"')[0].replace("&amp;", "&")
    r = served.get("/segments?" + cursor, auth=(served.keys["read"], ""))
    assert r.status_code == 200 and r.text.count("<tr>") == 2 and ">c04<" in r.text and "Next page" not in r.text
    assert _get(served, "/segments", name="bigg").status_code == 404
    assert _get(served, "/segments", name="big", cursor="%%%").status_code == 400
    assert served.get("/segments").status_code == 401
