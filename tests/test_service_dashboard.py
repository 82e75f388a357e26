"""The dashboard over real HTTP (``patron serve`` on a loopback port): every page needs the read
role, serves nothing from outside the service, shows what the stored data say, follows a refresh,
and renders friendly empty states on an empty database.

The data are built here with known answers: 60 synthetic customers whose purchases run from
January to April 2024 (how many bought by 29 February is counted from the generated rows), profiles
stored as of 29 February before the server starts, and a handful of consent records.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.service_support import running_service

pytestmark = [pytest.mark.slow]

PAGES = ("/", "/customers", "/consent")
ASSETS = ("/static/dashboard.css", "/static/customers.js", "/static/figures.js", "/static/plotly.min.js")
FIRST_AS_OF = "2024-02-29"
"""Date of the profiles stored before the server starts (a refresh then scores as of the last
purchase, 2024-04-30 or earlier)."""

URL = re.compile(rb"https?://", re.IGNORECASE)
LINK = re.compile(r'\b(?:src|href|action)\s*=\s*"([^"]*)"', re.IGNORECASE)
CUSTOMERS_METRIC = re.compile(r'<div class="label">customers</div><div class="value">([\d,]+)</div>')


def synthetic_orders(seed: int = 7, customers: int = 60) -> pd.DataFrame:
    """Orders of ``customers`` people: a first purchase in the first 100 days of 2024, then 0-4
    repeats 5-39 days apart, each of a gamma-distributed amount around the person's own mean spend;
    orders after 2024-04-30 are dropped."""
    rng = np.random.default_rng(seed)
    rows = []
    mean_spend = rng.gamma(4.0, 10.0, size=customers)
    for i in range(customers):
        day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 100)))
        days = [day]
        for _ in range(int(rng.integers(0, 5))):
            days.append(days[-1] + pd.Timedelta(days=int(rng.integers(5, 40))))
        rows += [(f"c{i:02d}", f"o{i:02d}-{j}", d.date().isoformat(), round(float(rng.gamma(6.0, mean_spend[i] / 6.0)), 2))
                 for j, d in enumerate(days) if d <= pd.Timestamp("2024-04-30")]
    return pd.DataFrame(rows, columns=["customer_id", "order_id", "occurred_at", "amount"])


CONSENTS = [
    {"customer_id": "c01", "purpose": "marketing", "channel": "email", "status": "granted", "occurred_at": "2024-01-05"},
    {"customer_id": "c02", "purpose": "marketing", "channel": "email", "status": "granted", "occurred_at": "2024-01-06"},
    {"customer_id": "c03", "purpose": "marketing", "channel": "email", "status": "granted", "occurred_at": "2024-01-07"},
    {"customer_id": "c03", "purpose": "marketing", "channel": "email", "status": "revoked", "occurred_at": "2024-02-07"},
    {"customer_id": "c01", "purpose": "marketing", "channel": "sms", "status": "denied", "occurred_at": "2024-01-05"},
]
"""Consent records; as of now: marketing/email 2 granted and 1 revoked (the later record wins),
marketing/sms 1 denied."""


@pytest.fixture(scope="module")
def orders() -> pd.DataFrame:
    return synthetic_orders()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, orders: pd.DataFrame):
    from patron.contact.consent import record_consent
    from patron.data.ingest import ingest
    from patron.relationship.profiles import build_profiles

    folder = tmp_path_factory.mktemp("dashboard")
    db = folder / "d.duckdb"
    csv = folder / "orders.csv"
    orders.to_csv(csv, index=False)
    ingest(csv, kind="transactions", db=str(db))
    record_consent(str(db), CONSENTS)
    build_profiles(str(db), as_of=FIRST_AS_OF)
    with running_service(db) as svc:
        yield svc


@pytest.fixture(scope="module")
def empty_service(tmp_path_factory: pytest.TempPathFactory):
    with running_service(tmp_path_factory.mktemp("empty") / "e.duckdb") as svc:
        yield svc


def _customers_shown(page: str) -> int:
    found = CUSTOMERS_METRIC.search(page)
    assert found, "the headline customers metric is missing"
    return int(found.group(1).replace(",", ""))


def test_every_page_needs_the_read_role(service) -> None:
    for path in PAGES + ASSETS:
        anonymous = httpx.get(service.url + path, timeout=30)
        assert anonymous.status_code == 401, path
        assert anonymous.headers["www-authenticate"].lower().startswith("basic"), path  # the browser's prompt
        assert httpx.get(service.url + path, auth=("not-a-key", ""), timeout=30).status_code == 401, path
        with service.client("write") as write:
            assert write.get(path).status_code == 403, path
        for role in ("read", "admin"):
            with service.client(role) as client:
                response = client.get(path)
            assert response.status_code == 200, (role, path, response.text[:300])


def test_pages_and_assets_load_nothing_from_outside(service) -> None:
    from patron.service.pages import plotly_js_path

    with service.client("read") as client:
        for path in PAGES + ASSETS[:3]:
            body = client.get(path).content
            assert URL.findall(body) == [], f"{path} names an external URL"
            for link in LINK.findall(body.decode()):
                assert link.startswith(("/", "#", "data:")) and not link.startswith("//"), (path, link)
        bundle = client.get("/static/plotly.min.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert bundle.content == plotly_js_path().read_bytes()  # the installed package's bundle, unchanged


def test_pages_run_no_inline_script(service) -> None:
    """The service's Content-Security-Policy (``script-src 'self'``) lets a browser run scripts
    from /static only: every ``<script>`` of a page loads from there or is a JSON data block (a
    figure), and no element has an event-handler attribute. The overview holds figures here."""
    with service.client("read") as client:
        for path in PAGES:
            response = client.get(path)
            assert "script-src 'self';" in response.headers["content-security-policy"], path
            scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, flags=re.S)
            for attrs, content in scripts:
                assert ('src="/static/' in attrs and not content.strip()) or 'type="application/json"' in attrs, (
                    path, attrs, content[:100])
            tags = re.sub(r'"[^"]*"', '""', "".join(re.findall(r"<[a-zA-Z][^>]*>", response.text)))
            assert not re.search(r"\son[a-z]+\s*=", tags), path
            if path == "/":
                assert sum('type="application/json"' in a for a, _ in scripts) >= 5  # the figures


def test_unknown_assets_are_404(service) -> None:
    with service.client("read") as client:
        for path in ("/static/nope.js", "/static/..%2Fdashboard.py", "/static/layout.html"):
            assert client.get(path).status_code == 404, path


def test_overview_shows_the_stored_profiles_and_every_part(service, orders: pd.DataFrame) -> None:
    with service.client("read") as client:
        page = client.get("/").text
        started = time.perf_counter()
        again = client.get("/").text
        cached_seconds = time.perf_counter() - started
    expected = orders.loc[orders["occurred_at"] <= FIRST_AS_OF, "customer_id"].nunique()
    assert _customers_shown(page) == expected
    assert f"as of {FIRST_AS_OF}" in page
    for key in ("headline", "equity", "status", "status_backtest", "clv", "segments", "contact_effect"):
        assert f'<section id="{key}">' in page, key
    # the statuses of a quarter before 2024-02-29 cannot be checked: nobody had bought by 2023-11-30
    assert 'id="status_backtest-empty"' in page
    assert 'id="contact_effect-empty"' in page  # no contacts in this database: an empty state
    assert page.count('class="plotly-graph-div"') >= 4  # equity over time, status, migration, CLV
    assert '<script src="/static/plotly.min.js"></script>' in page
    assert again == page and cached_seconds < 1.0  # second view from the cache


def test_overview_follows_a_refresh(service, orders: pd.DataFrame) -> None:
    with service.client("admin") as admin:
        done = admin.post("/v1/refresh", params={"wait": "true"})
        assert done.status_code in (200, 202), done.text
        assert done.json()["state"] == "succeeded", done.json()
    with service.client("read") as client:
        page = client.get("/").text
    assert _customers_shown(page) == orders["customer_id"].nunique()
    assert f"as of {orders['occurred_at'].max()}" in page


def test_customers_page_links_the_highest_clv_customers(service) -> None:
    with service.client("read") as client:
        page = client.get("/customers").text
    assert '<form class="lookup" id="lookup"' in page and '<script src="/static/customers.js"></script>' in page
    listed = re.findall(r'<a href="/customers\?id=([^"]+)">', page)
    assert 1 <= len(listed) <= 12
    with service.client("read") as client:
        clvs = [client.get(f"/v1/customers/{c}").json()["scores"]["clv"] for c in listed]
    assert clvs == sorted(clvs, reverse=True)


def test_consent_page_counts_by_purpose_and_channel(service) -> None:
    with service.client("read") as client:
        page = client.get("/consent").text
    rows = re.findall(r"<tr>(.*?)</tr>", page.split("<tbody>", 1)[1])
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]
    by_pair = {(c[0], c[1]): c[2:6] for c in cells}  # granted, denied, revoked, expired
    assert by_pair[("marketing", "email")] == ["2", "0", "1", "0"]
    assert by_pair[("marketing", "sms")] == ["0", "1", "0", "0"]


def test_empty_database_pages_say_what_to_do(empty_service) -> None:
    expected = {"/": 'id="no-data"', "/customers": 'id="examples-empty"', "/consent": 'id="consent-empty"'}
    with empty_service.client("read") as client:
        for path, marker in expected.items():
            response = client.get(path)
            assert response.status_code == 200, (path, response.text[:300])
            assert marker in response.text, path
            assert "Traceback" not in response.text


def test_pages_are_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "service.md").read_text(encoding="utf-8")
    section = doc.split("## Dashboard", 1)[1].split("\n## ", 1)[0]
    for path in (*PAGES, "/static/"):
        assert f"`{path}" in section, path


def test_customer_ids_and_consent_names_are_escaped() -> None:
    from patron.service.pages import consent_body, customers_body

    evil = '<script>alert("x")</script>'
    listed = customers_body(pd.DataFrame({"customer_id": [evil], "clv": [1.5], "status": ["active"]}))
    assert "<script>" not in listed and "&lt;script&gt;" in listed
    assert 'href="/customers?id=%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E"' in listed
    counts = pd.DataFrame({"purpose": [evil], "channel": ["email"], "granted": [1], "denied": [0], "revoked": [0],
                           "expired": [0]})
    assert "<script>" not in consent_body(counts)
