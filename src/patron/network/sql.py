"""SQL builders of the referral analysis. They return text; :mod:`patron.network.cascades` runs it.

Plain SQL (joins, ``GROUP BY``, ``CASE``, window functions, ``min_by``) so that the same text can
run on Spark; the only engine-specific spelling, whole days between two dates, comes from
:mod:`patron.data.dialect`.
"""

from __future__ import annotations

from patron.data.dialect import DUCKDB, Dialect

ALL = "(all)"
"""Scope name of the cascades over every campaign together."""

NO_CAMPAIGN = "(none)"
"""Scope name of the referrals without a campaign."""


def _kinds(kinds: list[str], dialect: Dialect) -> str:
    return ", ".join(dialect.literal(k) for k in kinds) or "NULL"


def first_purchase_sql(*, has_transactions: bool) -> str:
    """``_first_purchase(customer_id, first_purchase)``: each customer's first order (amount > 0)."""
    if not has_transactions:
        return "CREATE OR REPLACE TEMP TABLE _first_purchase AS SELECT CAST(NULL AS VARCHAR) AS customer_id, CAST(NULL AS TIMESTAMP) AS first_purchase WHERE 1 = 0"
    return """CREATE OR REPLACE TEMP TABLE _first_purchase AS
SELECT customer_id, min(occurred_at) AS first_purchase
FROM transactions WHERE amount > 0 GROUP BY customer_id"""


def pairs_sql(*, acquisition_kinds: list[str], window_days: float, dialect: Dialect = DUCKDB) -> str:
    """``_pairs``: one row per (referrer, referred) with the first touch, the acquisition time and
    its verdict (``status``): ``self_referral``, ``already_customer``, ``not_converted`` or
    ``converted`` (first purchase earlier than the first touch means already a customer; an
    acquisition is a row of an acquisition kind or a first purchase within the window)."""
    days = dialect.days_between("CAST(p.first_touch AS DATE)", "CAST(f.first_purchase AS DATE)")
    return f"""CREATE OR REPLACE TEMP TABLE _pairs AS
WITH p AS (
  SELECT referrer_id, referred_id,
    min(occurred_at) AS first_touch,
    min(CASE WHEN kind IN ({_kinds(acquisition_kinds, dialect)}) THEN occurred_at END) AS claimed_at,
    min_by(campaign_id, CASE WHEN campaign_id IS NOT NULL THEN occurred_at END) AS campaign_id,
    max(CASE WHEN kind = 'invited' THEN 1 ELSE 0 END) AS was_invited
  FROM referrals
  WHERE referred_id IS NOT NULL AND referrer_id IS NOT NULL
  GROUP BY referrer_id, referred_id
), a AS (
  SELECT p.*, f.first_purchase,
    CASE WHEN f.first_purchase >= p.first_touch AND {days} <= {float(window_days)} THEN f.first_purchase END AS bought_at
  FROM p LEFT JOIN _first_purchase f ON f.customer_id = p.referred_id
)
SELECT referrer_id, referred_id, first_touch, campaign_id, was_invited, first_purchase,
  CASE WHEN claimed_at IS NULL THEN bought_at
       WHEN bought_at IS NULL OR claimed_at <= bought_at THEN claimed_at ELSE bought_at END AS acquired_at,
  CASE WHEN referrer_id = referred_id THEN 'self_referral'
       WHEN first_purchase < first_touch THEN 'already_customer'
       WHEN claimed_at IS NULL AND bought_at IS NULL THEN 'not_converted'
       ELSE 'converted' END AS status
FROM a"""


EDGES_SQL = """CREATE OR REPLACE TEMP TABLE _edges AS
SELECT referrer_id, referred_id, campaign_id, first_touch, acquired_at, first_purchase, was_invited
FROM (
  SELECT *, row_number() OVER (PARTITION BY referred_id ORDER BY first_touch, acquired_at, referrer_id) AS claim
  FROM _pairs WHERE status = 'converted'
) c WHERE claim = 1"""
"""``_edges``: the acquisition edges, one per referred person: the first referral wins."""

ANOMALIES_SQL = """CREATE OR REPLACE TEMP TABLE _anomalies AS
SELECT referrer_id, referred_id, campaign_id, status AS reason, first_touch AS occurred_at
FROM _pairs WHERE status IN ('self_referral', 'already_customer')
UNION ALL
SELECT p.referrer_id, p.referred_id, p.campaign_id, 'duplicate_claim' AS reason, p.first_touch AS occurred_at
FROM _pairs p JOIN _edges e ON e.referred_id = p.referred_id
WHERE p.status = 'converted' AND p.referrer_id <> e.referrer_id"""
"""``_anomalies``: referrals reported and not counted as acquisitions (cycles are added later)."""


def scoped_edges_sql(*, by_campaign: bool) -> str:
    """``_scoped(scope, referrer_id, referred_id, acquired_at)``: the edges of the overall scope
    and, with ``by_campaign``, of each campaign."""
    sql = f"SELECT '{ALL}' AS scope, referrer_id, referred_id, acquired_at, first_touch FROM _edges"
    if by_campaign:
        sql += f"\nUNION ALL\nSELECT coalesce(campaign_id, '{NO_CAMPAIGN}') AS scope, referrer_id, referred_id, acquired_at, first_touch FROM _edges"
    return "CREATE OR REPLACE TEMP TABLE _scoped AS\n" + sql


def sharer_rows_sql(*, by_campaign: bool) -> str:
    """``_sharer_rows(scope, referrer_id, kind, occurred_at)``: referral rows by scope, without
    self-referrals."""
    base = "FROM referrals WHERE referrer_id IS NOT NULL AND (referred_id IS NULL OR referred_id <> referrer_id)"
    sql = f"SELECT '{ALL}' AS scope, referrer_id, kind, occurred_at {base}"
    if by_campaign:
        sql += f"\nUNION ALL\nSELECT coalesce(campaign_id, '{NO_CAMPAIGN}') AS scope, referrer_id, kind, occurred_at {base}"
    return "CREATE OR REPLACE TEMP TABLE _sharer_rows AS\n" + sql


ROOTS_SQL = """CREATE OR REPLACE TEMP TABLE _nodes AS
SELECT s.scope, s.referrer_id AS tree_id, s.referrer_id AS customer_id, CAST(NULL AS VARCHAR) AS parent_id,
  0 AS depth, f.first_purchase AS acquired_at, CAST(NULL AS TIMESTAMP) AS first_touch
FROM (SELECT DISTINCT scope, referrer_id FROM _sharer_rows
      UNION SELECT DISTINCT scope, referrer_id FROM _scoped) s
LEFT JOIN _first_purchase f ON f.customer_id = s.referrer_id
WHERE NOT EXISTS (SELECT 1 FROM _scoped e WHERE e.scope = s.scope AND e.referred_id = s.referrer_id)
  AND NOT EXISTS (SELECT 1 FROM _anomalies a WHERE a.reason = 'cycle' AND a.referred_id = s.referrer_id)"""
"""Generation 0 of ``_nodes``: the seeds, sharers not acquired by a referral in their scope (and
not caught in a referral cycle)."""


def generation_sql(depth: int) -> str:
    """Add generation ``depth + 1`` to ``_nodes``: the people acquired by generation ``depth``."""
    return f"""INSERT INTO _nodes
SELECT e.scope, n.tree_id, e.referred_id, e.referrer_id, {int(depth) + 1}, e.acquired_at, e.first_touch
FROM _nodes n JOIN _scoped e ON e.scope = n.scope AND e.referrer_id = n.customer_id
WHERE n.depth = {int(depth)}"""


CYCLES_SQL = f"""INSERT INTO _anomalies
SELECT e.referrer_id, e.referred_id, e.campaign_id, 'cycle' AS reason, e.first_touch AS occurred_at
FROM _edges e
WHERE NOT EXISTS (SELECT 1 FROM _nodes n WHERE n.scope = '{ALL}' AND n.customer_id = e.referred_id)"""
"""Edges no seed reaches lie on (or hang from) a referral cycle: reported, then dropped."""

DROP_CYCLES_SQL = f"""DELETE FROM _edges
WHERE NOT EXISTS (SELECT 1 FROM _nodes n WHERE n.scope = '{ALL}' AND n.customer_id = _edges.referred_id)"""


def sharers_sql(*, invitation_kinds: list[str], by_month: bool, dialect: Dialect = DUCKDB) -> str:
    """Per scope (and month of the invitation): sharers ``n``, and the sums over sharers of
    invitations ``i`` and conversions ``c`` with ``ii, cc, ci`` for the delta-method intervals.

    A sharer is a referrer with an invitation (a row of ``invitation_kinds``) or an acquisition
    edge; a conversion is an acquisition edge, dated by its first touch."""
    month = dialect.period_start("CAST({t} AS DATE)", "M")
    inv_m = month.format(t="occurred_at") if by_month else "CAST(NULL AS DATE)"
    edge_m = month.format(t="first_touch") if by_month else "CAST(NULL AS DATE)"
    return f"""WITH inv AS (
  SELECT scope, referrer_id, {inv_m} AS month, count(*) AS i, 0 AS c
  FROM _sharer_rows WHERE kind IN ({_kinds(invitation_kinds, dialect)}) GROUP BY 1, 2, 3
), conv AS (
  SELECT scope, referrer_id, {edge_m} AS month, 0 AS i, count(*) AS c
  FROM _scoped GROUP BY 1, 2, 3
), per_sharer AS (
  SELECT scope, referrer_id, month, sum(i) AS i, sum(c) AS c
  FROM (SELECT * FROM inv UNION ALL SELECT * FROM conv) u GROUP BY scope, referrer_id, month
)
SELECT scope, month, count(*) AS n, sum(i) AS i, sum(c) AS c,
  sum(i * i) AS ii, sum(c * c) AS cc, sum(c * i) AS ci
FROM per_sharer GROUP BY scope, month ORDER BY scope, month"""


def offer_flags_sql(dialect: Dialect = DUCKDB) -> str:
    """One row per acquisition edge whose campaign has an offer, with the limit checks: inside
    the time window (acquisition time), inside the quantity cap (rank of the acquisition among
    the offer's, by time), and invited personally when the offer is invitation-only."""
    days = dialect.days_between("CAST(o.starts_at AS DATE)", "CAST(e.acquired_at AS DATE)")
    return f"""WITH ranked AS (
  SELECT e.*, row_number() OVER (PARTITION BY e.campaign_id ORDER BY e.acquired_at, e.referred_id) AS n_th
  FROM _edges e
)
SELECT e.campaign_id AS offer_id, e.referrer_id, e.referred_id, e.acquired_at, e.n_th,
  (o.starts_at IS NULL OR e.acquired_at >= o.starts_at)
    AND (CASE WHEN o.ends_at IS NOT NULL THEN e.acquired_at <= o.ends_at
              WHEN o.duration_days IS NOT NULL AND o.starts_at IS NOT NULL THEN {days} <= o.duration_days
              ELSE TRUE END) AS within_window,
  (o.max_referrals IS NULL OR e.n_th <= o.max_referrals) AS within_quota,
  (coalesce(o.invitation_only, FALSE) = FALSE OR e.was_invited = 1) AS invitation_ok
FROM ranked e JOIN offers o ON o.offer_id = e.campaign_id
ORDER BY offer_id, e.n_th"""
