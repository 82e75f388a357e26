WITH price AS (
  SELECT t.customer_id, COUNT(CASE WHEN CAST(t.occurred_at AS DATE) > DATE '2023-07-01' AND CAST(t.occurred_at AS DATE) <= DATE '2024-06-30' THEN t.discount END) AS n_known,
         SUM(CASE WHEN CAST(t.occurred_at AS DATE) > DATE '2023-07-01' AND CAST(t.occurred_at AS DATE) <= DATE '2024-06-30' AND t.discount > 0 THEN 1 ELSE 0 END) AS n_discounted,
         SUM(CASE WHEN CAST(t.occurred_at AS DATE) > DATE '2023-07-01' AND CAST(t.occurred_at AS DATE) <= DATE '2024-06-30' AND t.discount > 0 THEN t.discount END) AS discount_sum,
         SUM(CASE WHEN CAST(t.occurred_at AS DATE) > DATE '2023-07-01' AND CAST(t.occurred_at AS DATE) <= DATE '2024-06-30' AND t.discount > 0 THEN t.amount + t.discount END) AS list_sum
  FROM transactions t WHERE t.amount >= 0 AND CAST(t.occurred_at AS DATE) <= DATE '2024-06-30'
  GROUP BY t.customer_id
),
signals AS (
  SELECT pr.customer_id AS customer_id, COALESCE(pr.n_known, 0) AS orders, CASE WHEN pr.n_known >= 1 THEN CAST(pr.n_discounted AS DOUBLE) / pr.n_known END AS s,
         pr.discount_sum / NULLIF(pr.list_sum, 0) AS depth,
         NULL::DOUBLE AS dr, NULL::DOUBLE AS orr, NULL::DOUBLE AS pref,
         NULL::BIGINT AS content_days, NULL::DOUBLE AS c,
         NULL::BIGINT AS referrals, NULL::DOUBLE AS f, NULL::DOUBLE AS q
  FROM price AS pr
  
),
scored AS (
  SELECT g.*, (((CAST(2.0 AS DOUBLE) * LEAST(g.orders, 3) / CAST(3.0 AS DOUBLE)) * COALESCE(g.s, 0.0) + CAST(1.0 AS DOUBLE) * COALESCE(g.pref, 0.0)) / NULLIF(CASE WHEN g.s IS NULL THEN CAST(0.0 AS DOUBLE) ELSE (CAST(2.0 AS DOUBLE) * LEAST(g.orders, 3) / CAST(3.0 AS DOUBLE)) END + CASE WHEN g.pref IS NULL THEN CAST(0.0 AS DOUBLE) ELSE CAST(1.0 AS DOUBLE) END, 0.0)) AS dscore,
         (((CAST(2.0 AS DOUBLE) * LEAST(g.orders, 3) / CAST(3.0 AS DOUBLE)) * COALESCE(1.0 - g.s, 0.0) + CAST(1.0 AS DOUBLE) * COALESCE(1.0 - g.pref, 0.0) + CAST(1.0 AS DOUBLE) * COALESCE(g.c, 0.0) + CAST(1.0 AS DOUBLE) * COALESCE(g.f, 0.0) + CAST(1.0 AS DOUBLE) * COALESCE(g.q, 0.0)) / NULLIF(CASE WHEN 1.0 - g.s IS NULL THEN CAST(0.0 AS DOUBLE) ELSE (CAST(2.0 AS DOUBLE) * LEAST(g.orders, 3) / CAST(3.0 AS DOUBLE)) END + CASE WHEN 1.0 - g.pref IS NULL THEN CAST(0.0 AS DOUBLE) ELSE CAST(1.0 AS DOUBLE) END + CASE WHEN g.c IS NULL THEN CAST(0.0 AS DOUBLE) ELSE CAST(1.0 AS DOUBLE) END + CASE WHEN g.f IS NULL THEN CAST(0.0 AS DOUBLE) ELSE CAST(1.0 AS DOUBLE) END + CASE WHEN g.q IS NULL THEN CAST(0.0 AS DOUBLE) ELSE CAST(1.0 AS DOUBLE) END, 0.0)) AS vscore,
         CASE WHEN g.s IS NOT NULL THEN (CAST(2.0 AS DOUBLE) * LEAST(g.orders, 3) / CAST(3.0 AS DOUBLE)) ELSE CAST(0.0 AS DOUBLE) END + CASE WHEN g.pref IS NOT NULL THEN CAST(1.0 AS DOUBLE) ELSE CAST(0.0 AS DOUBLE) END + CASE WHEN g.c > 0 THEN CAST(1.0 AS DOUBLE) ELSE CAST(0.0 AS DOUBLE) END + CASE WHEN g.f > 0 THEN CAST(1.0 AS DOUBLE) ELSE CAST(0.0 AS DOUBLE) END + CASE WHEN g.q IS NOT NULL THEN CAST(1.0 AS DOUBLE) ELSE CAST(0.0 AS DOUBLE) END AS evidence,
         CASE WHEN g.pref IS NULL THEN 0 ELSE 1 END + CASE WHEN g.c IS NULL THEN 0 ELSE 1 END + CASE WHEN g.f IS NULL THEN 0 ELSE 1 END + CASE WHEN g.q IS NULL THEN 0 ELSE 1 END AS n_beyond_price
  FROM signals g
)
SELECT customer_id, CAST(CASE WHEN evidence < 1.0 THEN 'unknown' WHEN COALESCE(vscore, 0.0) >= 0.6 AND COALESCE(dscore, 0.0) < 0.4 AND n_beyond_price > 0 THEN 'values' WHEN COALESCE(dscore, 0.0) >= 0.6 AND COALESCE(vscore, 0.0) < 0.4 THEN 'discount' WHEN COALESCE(dscore, 0.0) >= 0.4 AND COALESCE(vscore, 0.0) >= 0.4 THEN 'mixed' ELSE 'other' END AS VARCHAR) AS "motivation", CAST(dscore AS DOUBLE) AS "motivation_discount_score", CAST(vscore AS DOUBLE) AS "motivation_values_score", CAST(evidence AS DOUBLE) AS "motivation_evidence", CAST(orders AS BIGINT) AS "motivation_orders", CAST(s AS DOUBLE) AS "motivation_discount_share", CAST(depth AS DOUBLE) AS "motivation_discount_depth", CAST(dr AS DOUBLE) AS "motivation_discount_response", CAST(orr AS DOUBLE) AS "motivation_other_response", CAST(pref AS DOUBLE) AS "motivation_response_preference", CAST(content_days AS BIGINT) AS "motivation_content_days", CAST(referrals AS BIGINT) AS "motivation_referrals", CAST(q AS DOUBLE) AS "motivation_survey" FROM scored
