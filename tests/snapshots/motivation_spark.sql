WITH price AS (
  SELECT t.customer_id, COUNT(CASE WHEN CAST(t.occurred_at AS DATE) > DATE '2023-07-01' AND CAST(t.occurred_at AS DATE) <= DATE '2024-06-30' THEN t.discount END) AS n_known,
         SUM(CASE WHEN CAST(t.occurred_at AS DATE) > DATE '2023-07-01' AND CAST(t.occurred_at AS DATE) <= DATE '2024-06-30' AND t.discount > 0 THEN 1 ELSE 0 END) AS n_discounted,
         SUM(CASE WHEN CAST(t.occurred_at AS DATE) > DATE '2023-07-01' AND CAST(t.occurred_at AS DATE) <= DATE '2024-06-30' AND t.discount > 0 THEN t.discount END) AS discount_sum,
         SUM(CASE WHEN CAST(t.occurred_at AS DATE) > DATE '2023-07-01' AND CAST(t.occurred_at AS DATE) <= DATE '2024-06-30' AND t.discount > 0 THEN t.amount + t.discount END) AS list_sum
  FROM transactions t WHERE t.amount >= 0 AND CAST(t.occurred_at AS DATE) <= DATE '2024-06-30'
  GROUP BY t.customer_id
),
camp AS (
  SELECT campaign_id, MAX(CASE WHEN kind = 'discount' THEN 1 ELSE 0 END) AS is_discount,
         MAX(CASE WHEN kind IN ('content', 'values') THEN 1 ELSE 0 END) AS is_content
  FROM campaigns GROUP BY campaign_id
),
exposed AS (
  SELECT c.campaign_id, c.customer_id, MIN(c.occurred_at) AS exposed_at,
         MAX(CASE WHEN c.in_holdout THEN 1 ELSE 0 END) AS control
  FROM contacts c JOIN camp k ON k.campaign_id = c.campaign_id
  WHERE c.kind IN ('sent', 'delivered', 'opened') AND CAST(c.occurred_at AS DATE) > DATE '2023-07-01' AND CAST(c.occurred_at AS DATE) <= DATE '2024-06-30'
  GROUP BY c.campaign_id, c.customer_id
),
answered AS (
  SELECT e.campaign_id, e.customer_id, e.control,
         MAX(CASE WHEN t.customer_id IS NULL THEN 0 ELSE 1 END) AS answered
  FROM exposed e LEFT JOIN transactions t
    ON t.customer_id = e.customer_id AND t.amount >= 0 AND t.occurred_at > e.exposed_at AND t.occurred_at <= e.exposed_at + INTERVAL '30' DAY
  WHERE CAST(e.exposed_at AS DATE) <= DATE '2024-05-31'
  GROUP BY e.campaign_id, e.customer_id, e.control
),
control_rate AS (
  SELECT campaign_id, AVG(CAST(answered AS DOUBLE)) AS rate FROM answered WHERE control = 1 GROUP BY campaign_id
),
response AS (
  SELECT a.customer_id,
         SUM(CASE WHEN k.is_discount = 1 THEN 1 ELSE 0 END) AS n_discount,
         AVG(CASE WHEN k.is_discount = 1 THEN a.answered - COALESCE(b.rate, 0.0) END) AS discount_response,
         SUM(CASE WHEN k.is_discount = 0 THEN 1 ELSE 0 END) AS n_other,
         AVG(CASE WHEN k.is_discount = 0 THEN a.answered - COALESCE(b.rate, 0.0) END) AS other_response
  FROM answered a JOIN camp k ON k.campaign_id = a.campaign_id
  LEFT JOIN control_rate b ON b.campaign_id = a.campaign_id
  WHERE a.control = 0 GROUP BY a.customer_id
),
reach AS (
  SELECT DISTINCT c.customer_id FROM contacts c JOIN camp k ON k.campaign_id = c.campaign_id
  WHERE k.is_content = 1 AND c.kind IN ('sent', 'delivered', 'opened') AND (c.in_holdout IS NULL OR NOT c.in_holdout)
    AND CAST(c.occurred_at AS DATE) > DATE '2023-07-01' AND CAST(c.occurred_at AS DATE) <= DATE '2024-06-30'
),
content AS (
  SELECT customer_id, COUNT(DISTINCT day) AS days FROM (
    SELECT c.customer_id, CAST(c.occurred_at AS DATE) AS day
    FROM contacts c JOIN camp k ON k.campaign_id = c.campaign_id
    WHERE k.is_content = 1 AND c.kind IN ('opened', 'clicked') AND CAST(c.occurred_at AS DATE) > DATE '2023-07-01' AND CAST(c.occurred_at AS DATE) <= DATE '2024-06-30'
    UNION ALL
    SELECT i.customer_id, CAST(i.occurred_at AS DATE) AS day
    FROM interactions i LEFT JOIN camp k ON k.campaign_id = i.object
    WHERE ((i.kind IN ('content_view') AND (k.is_discount IS NULL OR k.is_discount = 0))
           OR (i.kind IN ('email_open', 'email_click') AND k.is_content = 1))
      AND CAST(i.occurred_at AS DATE) > DATE '2023-07-01' AND CAST(i.occurred_at AS DATE) <= DATE '2024-06-30'
  ) AS u GROUP BY customer_id
),
referred AS (
  SELECT f.referrer_id AS customer_id, COUNT(*) AS n FROM referrals f
  WHERE f.kind IN ('shared', 'invited') AND CAST(f.occurred_at AS DATE) > DATE '2023-07-01' AND CAST(f.occurred_at AS DATE) <= DATE '2024-06-30' GROUP BY f.referrer_id
),
survey AS (
  SELECT b.customer_id, AVG(b.score) AS score FROM feedback b
  WHERE b.kind = 'values' AND CAST(b.occurred_at AS DATE) > DATE '2023-07-01' AND CAST(b.occurred_at AS DATE) <= DATE '2024-06-30' GROUP BY b.customer_id
),
signals AS (
  SELECT p.customer_id AS customer_id, COALESCE(pr.n_known, 0) AS orders, CASE WHEN pr.n_known >= 1 THEN CAST(pr.n_discounted AS DOUBLE) / pr.n_known END AS s,
         pr.discount_sum / NULLIF(pr.list_sum, 0) AS depth,
         rs.discount_response AS dr, rs.other_response AS orr, CASE WHEN rs.n_discount > 0 AND rs.n_other > 0 THEN LEAST(GREATEST(0.5 + (rs.discount_response - rs.other_response) / 2.0, 0.0), 1.0) END AS pref,
         COALESCE(ct.days, 0) AS content_days, LEAST(COALESCE(ct.days, 0) / CAST(4.0 AS DOUBLE), 1.0) AS c,
         COALESCE(rf.n, 0) AS referrals, LEAST(COALESCE(rf.n, 0) / CAST(2.0 AS DOUBLE), 1.0) AS f, CASE WHEN sv.score IS NOT NULL THEN LEAST(GREATEST((sv.score - CAST(0.0 AS DOUBLE)) / CAST(10.0 AS DOUBLE), 0.0), 1.0) END AS q
  FROM (SELECT DISTINCT customer_id FROM (SELECT customer_id FROM price UNION ALL SELECT customer_id FROM response UNION ALL SELECT customer_id FROM content UNION ALL SELECT customer_id FROM referred UNION ALL SELECT customer_id FROM survey) AS q) AS p
  LEFT JOIN price pr ON pr.customer_id = p.customer_id LEFT JOIN response rs ON rs.customer_id = p.customer_id LEFT JOIN content ct ON ct.customer_id = p.customer_id LEFT JOIN referred rf ON rf.customer_id = p.customer_id LEFT JOIN survey sv ON sv.customer_id = p.customer_id
),
scored AS (
  SELECT g.*, (((CAST(2.0 AS DOUBLE) * LEAST(g.orders, 3) / CAST(3.0 AS DOUBLE)) * COALESCE(g.s, 0.0) + CAST(1.0 AS DOUBLE) * COALESCE(g.pref, 0.0)) / NULLIF(CASE WHEN g.s IS NULL THEN CAST(0.0 AS DOUBLE) ELSE (CAST(2.0 AS DOUBLE) * LEAST(g.orders, 3) / CAST(3.0 AS DOUBLE)) END + CASE WHEN g.pref IS NULL THEN CAST(0.0 AS DOUBLE) ELSE CAST(1.0 AS DOUBLE) END, 0.0)) AS dscore,
         (((CAST(2.0 AS DOUBLE) * LEAST(g.orders, 3) / CAST(3.0 AS DOUBLE)) * COALESCE(1.0 - g.s, 0.0) + CAST(1.0 AS DOUBLE) * COALESCE(1.0 - g.pref, 0.0) + CAST(1.0 AS DOUBLE) * COALESCE(g.c, 0.0) + CAST(1.0 AS DOUBLE) * COALESCE(g.f, 0.0) + CAST(1.0 AS DOUBLE) * COALESCE(g.q, 0.0)) / NULLIF(CASE WHEN 1.0 - g.s IS NULL THEN CAST(0.0 AS DOUBLE) ELSE (CAST(2.0 AS DOUBLE) * LEAST(g.orders, 3) / CAST(3.0 AS DOUBLE)) END + CASE WHEN 1.0 - g.pref IS NULL THEN CAST(0.0 AS DOUBLE) ELSE CAST(1.0 AS DOUBLE) END + CASE WHEN g.c IS NULL THEN CAST(0.0 AS DOUBLE) ELSE CAST(1.0 AS DOUBLE) END + CASE WHEN g.f IS NULL THEN CAST(0.0 AS DOUBLE) ELSE CAST(1.0 AS DOUBLE) END + CASE WHEN g.q IS NULL THEN CAST(0.0 AS DOUBLE) ELSE CAST(1.0 AS DOUBLE) END, 0.0)) AS vscore,
         CASE WHEN g.s IS NOT NULL THEN (CAST(2.0 AS DOUBLE) * LEAST(g.orders, 3) / CAST(3.0 AS DOUBLE)) ELSE CAST(0.0 AS DOUBLE) END + CASE WHEN g.pref IS NOT NULL THEN CAST(1.0 AS DOUBLE) ELSE CAST(0.0 AS DOUBLE) END + CASE WHEN g.c > 0 THEN CAST(1.0 AS DOUBLE) ELSE CAST(0.0 AS DOUBLE) END + CASE WHEN g.f > 0 THEN CAST(1.0 AS DOUBLE) ELSE CAST(0.0 AS DOUBLE) END + CASE WHEN g.q IS NOT NULL THEN CAST(1.0 AS DOUBLE) ELSE CAST(0.0 AS DOUBLE) END AS evidence,
         CASE WHEN g.pref IS NULL THEN 0 ELSE 1 END + CASE WHEN g.c IS NULL THEN 0 ELSE 1 END + CASE WHEN g.f IS NULL THEN 0 ELSE 1 END + CASE WHEN g.q IS NULL THEN 0 ELSE 1 END AS n_beyond_price
  FROM signals g
)
SELECT customer_id, CAST(CASE WHEN evidence < 1.0 THEN 'unknown' WHEN COALESCE(vscore, 0.0) >= 0.6 AND COALESCE(dscore, 0.0) < 0.4 AND n_beyond_price > 0 THEN 'values' WHEN COALESCE(dscore, 0.0) >= 0.6 AND COALESCE(vscore, 0.0) < 0.4 THEN 'discount' WHEN COALESCE(dscore, 0.0) >= 0.4 AND COALESCE(vscore, 0.0) >= 0.4 THEN 'mixed' ELSE 'other' END AS STRING) AS `motivation`, CAST(dscore AS DOUBLE) AS `motivation_discount_score`, CAST(vscore AS DOUBLE) AS `motivation_values_score`, CAST(evidence AS DOUBLE) AS `motivation_evidence`, CAST(orders AS BIGINT) AS `motivation_orders`, CAST(s AS DOUBLE) AS `motivation_discount_share`, CAST(depth AS DOUBLE) AS `motivation_discount_depth`, CAST(dr AS DOUBLE) AS `motivation_discount_response`, CAST(orr AS DOUBLE) AS `motivation_other_response`, CAST(pref AS DOUBLE) AS `motivation_response_preference`, CAST(content_days AS BIGINT) AS `motivation_content_days`, CAST(referrals AS BIGINT) AS `motivation_referrals`, CAST(q AS DOUBLE) AS `motivation_survey` FROM scored
