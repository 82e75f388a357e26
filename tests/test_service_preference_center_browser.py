"""The customer's own page in headless Chromium (issue 16, item 4): a real ``patron serve``, a link
made with the admin key, opened without any API key; the customer pauses contact and withdraws a
consent on the page, and the contact check and ``patron plan`` honour it; the download is their
export. Debian's ``/usr/bin/chromium`` driven by Playwright (``make browser``); screenshots go to
``test-artifacts/preference-center/``.

Data come from files ingested before the service starts (the CLI path): two customers, Ann and
Bob, with orders (one discounted) and a granted marketing consent by email. Expected decisions
follow the ledger rules of docs/consent.md (named beside each assertion); the plan is ``patron
plan`` run on the file after the service stopped.
"""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import pytest

from patron.contact.consent.times import now_utc
from tests.service_support import running_service
from tests.test_cli import run

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "preference-center"
"""Where the screenshots are written (ignored by git)."""

ANN_EMAIL = "ann.zq@example.com"
BOB_EMAIL = "bob.qx@example.com"

TIMEOUT_MS = 30_000
"""Longest wait for the page to answer an action."""


def _files(tmp: Path, send_at: str) -> None:
    (tmp / "customers.csv").write_text(f"customer_id,email,first_seen\nann,{ANN_EMAIL},2024-01-01\nbob,{BOB_EMAIL},2024-01-01\n")
    (tmp / "orders.csv").write_text("customer_id,order_id,occurred_at,amount,discount,currency\n"
                                    "ann,a1,2024-03-01,40,5,EUR\nann,a2,2024-05-01,60,,EUR\nbob,b1,2024-04-01,999,99,EUR\n")
    (tmp / "consents.csv").write_text("customer_id,purpose,channel,status,occurred_at\n"
                                      "ann,marketing,email,granted,2024-01-02\nbob,marketing,email,granted,2024-01-02\n")
    (tmp / "camp.json").write_text(json.dumps({"name": "summer", "purpose": "marketing", "channel": "email",
                                               "target_ids": ["ann", "bob"], "send_at": send_at}))


def _plan(tmp: Path) -> dict[str, str]:
    proc = run("plan", "--campaign", "camp.json", "--db", "pc.duckdb", "--out", "plan.csv", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    with (tmp / "plan.csv").open() as f:
        return {r["customer_id"]: r["reason"] for r in csv.DictReader(f)}


def test_a_customer_changes_their_preferences_in_chromium(chromium: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    # noon UTC tomorrow: outside the policy's default quiet hours (21-8), after every record
    at = (now_utc() + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0).isoformat() + "Z"
    _files(tmp_path, at)
    for name, kind in (("customers.csv", "customers"), ("orders.csv", "transactions"), ("consents.csv", "consents")):
        proc = run("ingest", name, "--kind", kind, "--db", "pc.duckdb", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert _plan(tmp_path) == {"ann": "included", "bob": "included"}  # both granted, no preference
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    outside: list[str] = []
    with running_service(tmp_path / "pc.duckdb") as svc:
        admin = svc.client("admin")

        def check(customer: str) -> str:
            r = admin.post("/v1/contacts/check", json={"customer": customer, "channel": "email", "at": at})
            assert r.status_code == 200, r.text
            return r.json()["reason"]

        made = admin.post("/v1/customers/ann/preference-link", json={"hours": 1})
        assert made.status_code == 201, made.text
        url = made.json()["url"]
        assert url.startswith(svc.url + "/preferences#")
        assert check("ann") == "allowed"

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--headless=new"])
            try:
                context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)

                def only_the_service(route) -> None:
                    if route.request.url.startswith(svc.url + "/"):
                        route.continue_()
                    else:
                        outside.append(route.request.url)
                        route.abort()

                context.route("**/*", only_the_service)
                page = context.new_page()
                page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
                page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))

                page.goto(url, wait_until="load")
                page.wait_for_selector("#page:not([hidden])", timeout=TIMEOUT_MS)
                assert "#" not in page.url  # the token left the address bar
                text = page.inner_text("main")
                assert ANN_EMAIL in text and BOB_EMAIL not in text and "999" not in text
                assert "5.00 EUR in discounts on 1 order" in page.inner_text("#sentences")
                cookie = next(c for c in context.cookies() if c["name"] == "patron_preferences")
                assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/preferences"
                page.screenshot(path=str(ARTIFACTS / "opened.png"), full_page=True)

                # pause every offer for a month: the check says paused (paused_until after `at`)
                until = (now_utc() + timedelta(days=30)).date().isoformat()
                page.fill("#paused-until", until)
                page.fill("#cap-week-email", "1")
                page.click("#save-preferences")
                page.wait_for_function("() => document.getElementById('preferences-saved').textContent === 'Saved.'",
                                       timeout=TIMEOUT_MS)
                assert check("ann") == "paused"
                assert check("bob") == "allowed"  # another person's answer does not move

                # withdraw the email consent: the latest record (revoked) decides, before the pause
                assert page.is_checked("#consent-marketing-email")
                page.uncheck("#consent-marketing-email")
                page.click("#save-consents")
                page.wait_for_function("() => document.getElementById('consents-saved').textContent === 'Saved.'",
                                       timeout=TIMEOUT_MS)
                assert not page.is_checked("#consent-marketing-email")
                assert check("ann") == "revoked"

                with page.expect_download(timeout=TIMEOUT_MS) as dl:
                    page.click("#download")
                export = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
                assert export["customer_id"] == "ann"
                assert sorted(o["order_id"] for o in export["tables"]["transactions"]) == ["a1", "a2"]
                sources = {r["source"] for r in export["tables"]["preferences"]}
                assert sources == {"preference_center"}
                page.screenshot(path=str(ARTIFACTS / "changed.png"), full_page=True)
            finally:
                browser.close()
        admin.close()

    assert errors == []
    assert outside == []
    # the CLI's planner on the file: Ann's withdrawal (revoked) excludes her; Bob is untouched
    assert _plan(tmp_path) == {"ann": "revoked", "bob": "included"}
