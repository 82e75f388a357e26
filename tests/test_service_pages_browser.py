"""The dashboard's tables, member downloads and customer page in headless Chromium, served by
``patron serve`` on the CDNOW sample plus a hand-made person (traits and consents known here).

- overview: every table has its tools; the segment member table sorts by size (numbers), filters,
  downloads as CSV, and each size, rule and member list matches ``GET /v1/segments/{name}/members``
  (another code path: the route's own count and pages); a segment's CSV link downloads exactly the
  members the JSON pages list;
- consent: the one purpose x channel row of the hand-made records, in the table and its CSV;
- customer page, opened with the read key in the URL (``http://KEY:@host/customers?id=...``, which
  browsers refuse to fetch() from unless the page builds URLs from location.origin): titled with
  the person's name and "found by phone ...", every fact of the API's single view on the page,
  and no card overflowing at a narrow width.

Screenshots go to ``test-artifacts/dashboard-tables/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, urlsplit

import pandas as pd
import pytest

from patron.cli.demo import CDNOW_SAMPLE_COLUMNS
from patron.data.datasets import data_path
from patron.data.ingest import ingest
from tests.service_support import running_service
from tests.test_tables_browser import ROWS_JS, read_csv_text

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "dashboard-tables"
"""Where the screenshots are written (ignored by git)."""

NAME = "Ann Example"
EMAIL = "Ann@Example.com"
PHONE = "+33 6 12 34 56 78"
LONG_NOTE = "x" * 400
"""Traits of the hand-made person (a CDNOW buyer): a name, an email, a phone and a note without
spaces, far wider than any card (it must wrap inside its card)."""

CONSENTS = [
    {"customer_id": "PERSON", "purpose": "marketing", "channel": "email", "status": "granted", "occurred_at": "1998-01-05"},
    {"customer_id": "OTHER", "purpose": "marketing", "channel": "email", "status": "denied", "occurred_at": "1998-01-06"},
]
"""Consent records (PERSON and OTHER replaced by two CDNOW buyers): one granted, one denied."""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    """``patron serve`` on the CDNOW sample, scores refreshed; the buyer with most orders has the
    hand-made traits. Yields (service, that buyer's customer id)."""
    from patron.contact.consent import record_consent
    from patron.data.store import connect

    folder = tmp_path_factory.mktemp("pages-browser")
    db = folder / "cdnow.duckdb"
    ingest(data_path("CDNOW_sample.txt"), kind="transactions", db=str(db), columns=CDNOW_SAMPLE_COLUMNS,
           mapping={"occurred_at": "date"}, date_format="%Y%m%d")
    with connect(db) as con:
        person, other = [r[0] for r in con.execute(
            "SELECT customer_id FROM transactions GROUP BY customer_id ORDER BY count(*) DESC, customer_id LIMIT 2").fetchall()]
    ingest(pd.DataFrame({"customer_id": [person], "name": [NAME], "email": [EMAIL], "phone": [PHONE], "note": [LONG_NOTE]}),
           kind="customers", db=str(db))
    record_consent(str(db), [{**c, "customer_id": {"PERSON": person, "OTHER": other}[c["customer_id"]]} for c in CONSENTS])
    with running_service(db) as svc:
        with svc.client("admin") as admin:
            done = admin.post("/v1/refresh", params={"wait": "true"}, timeout=300)
        assert done.status_code in (200, 202) and done.json()["state"] == "succeeded", done.text
        yield svc, person


def _browser(pw, chromium: Path):
    return pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--headless=new"])


def _watch(page, errors: list[str]) -> None:
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))


def _api_members(client, name: str) -> tuple[dict, list[str]]:
    """The first JSON page of a segment and every member id, by following next_cursor."""
    first = client.get(f"/v1/segments/{quote(name, safe='')}/members", params={"limit": 500}).json()
    ids, page = [m["customer_id"] for m in first["members"]], first
    while page["next_cursor"]:
        page = client.get(f"/v1/segments/{quote(name, safe='')}/members",
                          params={"limit": 500, "cursor": page["next_cursor"]}).json()
        ids += [m["customer_id"] for m in page["members"]]
    return first, ids


def test_overview_and_consent_tables_sort_filter_and_download(chromium: Path, service, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    svc, _ = service
    with svc.client("read") as client:
        from patron.relationship.segments import BUILTIN_SEGMENTS

        names = list(BUILTIN_SEGMENTS)  # every built-in segment is a row of the members table
        api = {n: _api_members(client, n) for n in names}
    sizes = {n: first["total"] for n, (first, _) in api.items()}
    assert len(set(sizes.values())) >= 3, sizes  # sorting by size must mean something
    errors: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = _browser(pw, chromium)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True,
                                          http_credentials={"username": svc.keys["read"], "password": ""})
            page = context.new_page()
            _watch(page, errors)
            assert page.goto(svc.url + "/", wait_until="load", timeout=120_000).status == 200
            page.wait_for_selector("#segment-members .table-tools")
            tables = page.evaluate("() => [document.querySelectorAll('table.data').length, "
                                   "document.querySelectorAll('.table-tools').length]")
            assert tables[0] >= 3 and tables[0] == tables[1], f"every table has its tools: {tables}"

            section = "#segment-members"
            header = page.locator(f"{section} thead th").nth(2)  # customers
            header.click()
            shown = [r["cells"][0] for r in page.evaluate(ROWS_JS, "segment-members")]
            assert sorted(shown) == sorted(sizes)
            assert [sizes[n] for n in shown] == sorted(sizes.values()), "ascending by size, as numbers"
            header.click()
            shown = [r["cells"][0] for r in page.evaluate(ROWS_JS, "segment-members")]
            assert [sizes[n] for n in shown] == sorted(sizes.values(), reverse=True)
            page.fill(f"{section} .table-filter", "champ")
            rows = page.evaluate(ROWS_JS, "segment-members")
            assert [r["cells"][0] for r in rows if not r["hidden"]] == ["champions"]
            assert page.inner_text(f"{section} .table-count") == f"1 of {len(rows)} rows"
            with page.expect_download() as info:
                page.click(f"{section} .table-csv")
            info.value.save_as(tmp_path / "segments.csv")
            table_csv = read_csv_text((tmp_path / "segments.csv").read_text(encoding="utf-8"))
            page.fill(f"{section} .table-filter", "")
            page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

            # a segment's member list: the CSV link downloads every member of the JSON pages
            smallest = min((n for n in sizes if sizes[n] > 0), key=lambda n: sizes[n])
            largest = max(sizes, key=lambda n: sizes[n])
            downloads = {}
            for name in {smallest, largest}:
                with page.expect_download() as info:
                    page.click(f'{section} a.members-csv[data-segment="{name}"]')
                info.value.save_as(tmp_path / f"{name}.csv")
                downloads[name] = pd.read_csv(tmp_path / f"{name}.csv", dtype={"customer_id": str})

            assert page.goto(svc.url + "/consent", wait_until="load").status == 200
            page.wait_for_selector("#consent .table-tools")
            with page.expect_download() as info:
                page.click("#consent .table-csv")
            info.value.save_as(tmp_path / "consent.csv")
            consent_csv = read_csv_text((tmp_path / "consent.csv").read_text(encoding="utf-8"))
            page.fill("#consent .table-filter", "sms")
            assert [r["hidden"] for r in page.evaluate(ROWS_JS, "consent")] == [True]
            page.fill("#consent .table-filter", "email")
            assert [r["hidden"] for r in page.evaluate(ROWS_JS, "consent")] == [False]
            page.screenshot(path=str(ARTIFACTS / "consent.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    # the table's CSV: every row (also those the filter hid), by size descending, sizes and rules
    # those of the API
    assert table_csv[0] == ["segment", "rule", "customers", "members"]
    assert [sizes[r[0]] for r in table_csv[1:]] == sorted(sizes.values(), reverse=True)
    assert sorted(r[0] for r in table_csv[1:]) == sorted(sizes)
    for segment, rule, customers, link in table_csv[1:]:
        assert int(customers) == sizes[segment] and rule == api[segment][0]["rule"]
        assert link == f"/v1/segments/{segment}/members?format=csv"
    for name, frame in downloads.items():
        assert frame["customer_id"].tolist() == api[name][1], name
        assert len(frame) == sizes[name]
        assert {"status", "value_tier", "clv", "probability_alive"} <= set(frame.columns)
    # consent: one row (marketing by email), one customer granted and one denied
    head, row = consent_csv[0], consent_csv[1:]
    assert len(row) == 1
    got = dict(zip(head, row[0], strict=True))
    assert (got["purpose"], got["channel"], float(got["granted"]), float(got["denied"])) == ("marketing", "email", 1.0, 1.0)


PARTS_JS = """
() => Array.from(document.querySelectorAll('#view section.card')).map(card => {
  const part = {id: card.id.replace(/^part-/, ''), fits: card.scrollWidth <= card.clientWidth + 1,
                text: Array.from(card.childNodes).slice(1).map(n => n.textContent).join('')};
  const data = card.querySelector(':scope > .table table.data');
  if (data) {
    part.cols = Array.from(data.tHead.rows[0].cells).map(th => th.dataset.col);
    part.rows = Array.from(data.tBodies[0].rows).map(tr => Array.from(tr.cells).map(td => td.dataset.v));
  }
  const kv = card.querySelector(':scope > table.kv');
  if (kv) part.kv = Array.from(kv.rows).map(tr => [tr.cells[0].textContent, tr.cells[1].textContent]);
  return part;
})
"""
"""Each card of the single view: its part, whether it overflows, and its table rows (raw values)
or key/value pairs."""


def _fmt(value) -> str:
    """How the page writes one value (an independent Python reading of customers.js's rules)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _raw(value) -> str:
    """A cell's data-v: the value as JavaScript's String() (or JSON) writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def test_customer_page_with_credentials_in_the_url_titles_the_person_and_shows_the_api_facts(
        chromium: Path, service, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    svc, person = service
    with svc.client("read") as client:
        r = client.get(f"/v1/customers/{quote(PHONE, safe='')}")
    assert r.status_code == 200, r.text
    api = r.json()
    assert api["customer_id"] == person and api["found_by"] == {"identifier": PHONE, "kind": "phone"}
    assert api["traits"]["name"] == NAME
    errors: list[str] = []
    outside: list[str] = []
    host = svc.url.removeprefix("http://")
    with sync_playwright() as pw:
        browser = _browser(pw, chromium)
        try:
            # no stored credentials: the page has only the key in its own address
            context = browser.new_context(viewport={"width": 900, "height": 900})
            def only_the_service(route) -> None:
                where = urlsplit(route.request.url)
                if (where.scheme, where.hostname, where.port) == ("http", "127.0.0.1", svc.port):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            context.route("**/*", only_the_service)
            page = context.new_page()
            _watch(page, errors)
            url = f"http://{svc.keys['read']}:@{host}/customers?id={quote(PHONE, safe='')}"
            assert page.goto(url, wait_until="load").status == 200
            page.wait_for_selector("#summary-clv", timeout=30_000)
            title, found = page.inner_text("#person"), page.inner_text("#found-by")
            parts = {p["id"]: p for p in page.evaluate(PARTS_JS)}
            assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
            page.screenshot(path=str(ARTIFACTS / "customer.png"), full_page=True)
            # the form on the same page, looking up by email in another case
            page.fill("#customer-id", EMAIL.upper())
            page.click("form#lookup button")
            page.wait_for_function("() => { const e = document.getElementById('found-by'); "
                                   "return e !== null && e.textContent.includes('email'); }")
            by_email = page.inner_text("#found-by")
            page.fill("#customer-id", person)
            page.click("form#lookup button")
            page.wait_for_function("() => { const e = document.getElementById('found-by'); "
                                   "return e !== null && !e.textContent.includes('email'); }")
            by_id = page.inner_text("#found-by")
        finally:
            browser.close()
    assert errors == [] and outside == []
    assert title == NAME
    assert found == f"person id {person} · found by phone {PHONE}"
    assert by_email == f"person id {person} · found by email {EMAIL.upper()}"
    assert by_id == f"person id {person}"  # looked up by the person id itself: nothing more to say
    # every part of the API's view is on the page, with the same facts
    shown = set(api) - {"customer_id", "found_by"}
    assert set(parts) == shown
    for key in shown:
        value, part = api[key], parts[key]
        assert part["fits"], f"{key}: the card's content overflows it"
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            cols = part["cols"]
            assert set(cols) == {k for row in value for k in row}, key
            assert part["rows"] == [[_raw(row.get(c)) for c in cols] for row in value], key
        elif isinstance(value, dict) and value:
            expected = [[k.replace("_", " "), _fmt(v)] for k, v in value.items() if not isinstance(v, dict | list)]
            got = [kv for kv in part["kv"] if kv[0] in {e[0] for e in expected}]
            assert got == expected, key
        elif isinstance(value, list) and value:
            assert part["text"] == ", ".join(_fmt(v) for v in value), key
        elif value in (None, [], {}):
            assert part["text"] in ("", "none"), key
        else:
            assert part["text"] == _fmt(value), key
    assert len(api["recent_orders"]) >= 2 and parts["traits"]["kv"]
    assert (ARTIFACTS / "customer.png").stat().st_size > 10_000


def test_segment_member_pages_follow_the_api_pages(chromium: Path, service, tmp_path: Path) -> None:
    """``/segments?name=...``: page after page (by the Next link) the rows are the API's pages of
    the same size; the page's CSV holds that page; the "all" link downloads every member; an
    unknown name is a 404 page that says so."""
    from playwright.sync_api import sync_playwright

    svc, _ = service
    with svc.client("read") as client:
        sizes = {n: client.get(f"/v1/segments/{n}/members", params={"limit": 1}).json()["total"]
                 for n in ("champions", "at_risk_valuable", "lost_low_value")}
        name = max(sizes, key=lambda n: sizes[n])
        per_page = 40
        pages, cursor = [], None
        while len(pages) < 3:
            body = client.get(f"/v1/segments/{name}/members",
                              params={"limit": per_page, **({"cursor": cursor} if cursor else {})}).json()
            pages.append([m["customer_id"] for m in body["members"]])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        everyone = _api_members(client, name)[1]
    assert len(pages) >= 2, f"{name} has {sizes[name]} members: too few for pages of {per_page}"
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = _browser(pw, chromium)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True,
                                          http_credentials={"username": svc.keys["read"], "password": ""})
            page = context.new_page()
            _watch(page, errors)
            assert page.goto(svc.url + f"/segments?name={name}&limit={per_page}", wait_until="load").status == 200
            seen = []
            for i in range(len(pages)):
                page.wait_for_selector("#members .table-tools")
                seen.append([r["cells"][0] for r in page.evaluate(ROWS_JS, "members")])
                if i == 0:
                    page.screenshot(path=str(ARTIFACTS / "segment-members.png"), full_page=True)
                    with page.expect_download() as info:
                        page.click("#members .table-csv")
                    info.value.save_as(tmp_path / "page.csv")
                if i + 1 < len(pages):
                    page.click("a.members-next")
                    page.wait_for_load_state("load")
            with page.expect_download() as info:
                page.click("a.members-all")
            info.value.save_as(tmp_path / "all.csv")
            missing = page.goto(svc.url + "/segments?name=champs", wait_until="load")
            assert missing.status == 404
            assert "unknown segment" in page.inner_text("#members-error")
        finally:
            browser.close()
    assert errors == [] or all("404" in e for e in errors), errors
    assert seen == pages
    first = pd.read_csv(tmp_path / "page.csv", dtype={"customer_id": str})
    assert first["customer_id"].tolist() == pages[0]
    assert pd.read_csv(tmp_path / "all.csv", dtype={"customer_id": str})["customer_id"].tolist() == everyone
