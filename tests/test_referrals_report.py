"""The report's "Word of mouse" section: present with one figure per referral figure when
referrals were ingested, absent (with no error) when none were."""

from __future__ import annotations

import patron
from patron.network import report_figures, simulate_referrals
from patron.report import build_report


def _db(tmp_path, *, with_referrals: bool) -> str:
    sim = simulate_referrals(n_seeds=30, invitations_mean=1.5, conversion=0.4, generations=3, n_organic=150,
                             purchase_rate=0.5, purchase_multiplier=1.5, seed=3)
    db = str(tmp_path / "r.duckdb")
    patron.ingest(sim.transactions, kind="transactions", db=db)
    if with_referrals:
        patron.ingest(sim.referrals, kind="referrals", db=db)
    return db


def test_section_shows_every_referral_figure(tmp_path):
    db = _db(tmp_path, with_referrals=True)
    html = build_report(db, sections=["referrals"])
    figures = report_figures(db)
    assert "Word of mouse" in html and "Referrals per campaign" in html
    assert html.count('class="plotly-graph-div"') == len(figures) >= 3


def test_section_left_out_without_referrals(tmp_path):
    html = build_report(_db(tmp_path, with_referrals=False), sections=["referrals"])
    assert "Word of mouse" not in html
