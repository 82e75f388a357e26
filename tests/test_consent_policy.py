"""The ``[contact_policy]`` section: defaults, validation messages, and the quiet-hours arithmetic.

Expected values are worked out by hand (hours on a 24-hour clock)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from patron.contact.consent import contact_policy
from patron.contact.consent.quiet import US_PER_HOUR, move_out_of_quiet, remaining_us
from patron.errors import InputError


def test_defaults_cap_marketing_email_at_two_a_week() -> None:
    p = contact_policy({})
    assert p.channel("email").max_per_week == 2
    assert (p.channel("in_app").quiet_hours_start, p.channel("in_app").quiet_hours_end) == (21.0, 8.0)
    assert not set(p.marketing_purposes) & set(p.transactional_purposes)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("channels.fax.max_per_week = 1", "unknown channel 'fax'"),
        ("channels.email.max_per_week = -1", "channels.email.max_per_week"),
        ("quiet_hours_start = 25", "quiet_hours_start"),
        ('time_zone = "Mars/Base"', "unknown time zone"),
        ('transactional_purposes = ["marketing"]', "both a marketing and a transactional purpose"),
        ("colour = 1", "colour"),
    ],
)
def test_bad_policy_names_file_section_and_key(tmp_path: Path, section: str, expected: str) -> None:
    rules = tmp_path / "patron.toml"
    rules.write_text(f"[contact_policy]\n{section}\n")
    with pytest.raises(InputError) as exc:
        contact_policy(rules)
    msg = str(exc.value)
    assert str(rules) in msg and "[contact_policy]" in msg and expected in msg and "\n" not in msg


def test_remaining_time_in_wrapping_and_plain_arcs() -> None:
    tod = np.array([22.0, 7.5, 8.0, 12.0, 3.0]) * US_PER_HOUR
    nan = np.full(5, np.nan)
    # Arc 21-8 wraps midnight: 22:00 -> 10 h left, 07:30 -> 0.5 h, 08:00 is outside (end exclusive).
    got = remaining_us(tod.astype(np.int64), np.full(5, 21.0 * US_PER_HOUR), np.full(5, 8.0 * US_PER_HOUR)) / US_PER_HOUR
    assert list(got) == [10.0, 0.5, 0.0, 0.0, 5.0]
    # Arc 9-13: only 12:00 is inside (1 h left). No arc (NaN) or start == end: never quiet.
    got = remaining_us(tod.astype(np.int64), np.full(5, 9.0 * US_PER_HOUR), np.full(5, 13.0 * US_PER_HOUR)) / US_PER_HOUR
    assert list(got) == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert not remaining_us(tod.astype(np.int64), nan, nan).any()
    assert not remaining_us(tod.astype(np.int64), np.full(5, 6.0 * US_PER_HOUR), np.full(5, 6.0 * US_PER_HOUR)).any()


def test_union_of_arcs_and_all_day_quiet() -> None:
    t = pd.Series(pd.to_datetime(["2024-01-10 22:30", "2024-01-10 07:00", "2024-01-10 12:00"]))
    zones = pd.Series(["UTC"] * 3)
    # Policy 21-8 and own 7-9: 22:30 -> 08:00 (policy) -> inside own 7-9 -> 09:00; 07:00 -> 09:00.
    # Third row: own 0-24 covers the day... modelled as 8-21 plus policy 21-8: quiet all day.
    own_s, own_e = np.array([7.0, 7.0, 8.0]), np.array([9.0, 9.0, 21.0])
    moved, stuck = move_out_of_quiet(t, zones, [(np.full(3, 21.0), np.full(3, 8.0)), (own_s, own_e)])
    assert list(moved[:2]) == [pd.Timestamp("2024-01-11 09:00"), pd.Timestamp("2024-01-10 09:00")]
    assert list(stuck) == [False, False, True]
