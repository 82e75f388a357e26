"""After an erasure, the derived ``customer_profiles`` table and a regenerated HTML report hold no
trace of the person.

The built-in report sections show aggregates only, so the test registers a section that lists
every customer of the profile table by id: after the erasure it shows the pseudonym under which the
person's purchases are kept (the control that the listing would show the id) and no identifier.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import patron.relationship.profiles as profiles
import patron.report as report
from patron.data.store import connect
from patron.people.rights import erase_customer
from tests.test_rights_data import MARKERS, PERSON, build_database, bytes_hits, text_hits

SECTION = "rights_test_customers"
"""Key of the test's customer-listing report section."""


@pytest.fixture
def listing_section():
    @report.register_section(SECTION, order=5, title="Every customer", replace=True)
    def every_customer(db: str, ctx: report.registry.ReportContext) -> report.Section:
        prof = ctx.profiles()
        return report.Section(SECTION, "Every customer", tables=[("customers", pd.DataFrame({"customer_id": prof["customer_id"]}))])

    yield SECTION
    report.unregister_section(SECTION)


def test_profiles_and_report_forget_the_person(tmp_path: Path, listing_section: str) -> None:
    db = build_database(tmp_path, derived=False)
    profiles.build_profiles(db)
    with connect(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM customer_profiles WHERE customer_id = ?", [PERSON]).fetchall()[0][0] == 1

    result = erase_customer(db, PERSON)
    assert result.tables["customer_profiles"] == {"deleted": 1, "pseudonymized": 0}
    assert bytes_hits(db, *MARKERS) == [] and text_hits(db, *MARKERS) == []

    after = report.build_report(db, sections=[listing_section])  # rebuilds customer_profiles
    assert [m for m in MARKERS if m.lower() in after.lower()] == []
    with connect(db, read_only=True) as con:
        pseudonym = con.execute("SELECT DISTINCT customer_id FROM transactions WHERE customer_id LIKE 'erased-%'").fetchall()[0][0]
    assert pseudonym in after  # control: the listing shows customers by id (the person's purchases, pseudonymized)
    assert bytes_hits(db, *MARKERS) == [] and text_hits(db, *MARKERS) == []
