WITH cal AS (
  SELECT customer_id, CAST(occurred_at AS DATE) AS p, SUM(amount) AS value, COUNT(*) AS orders,
         MIN(occurred_at) AS first_ts, MAX(occurred_at) AS last_ts
  FROM transactions
  WHERE amount >= 0 AND CAST(occurred_at AS DATE) <= DATE '1997-09-30'
  GROUP BY customer_id, CAST(occurred_at AS DATE)
),
per_customer AS (
  SELECT customer_id, COUNT(*) AS n_periods, MIN(p) AS first_p, MAX(p) AS last_p,
         SUM(value) AS gross, min_by(value, p) AS first_value, SUM(orders) AS n_orders,
         MIN(first_ts) AS first_purchase, MAX(last_ts) AS last_purchase
  FROM cal GROUP BY customer_id
),
refunds AS (
  SELECT customer_id, -SUM(amount) AS refunded
  FROM transactions WHERE amount < 0 AND CAST(occurred_at AS DATE) <= DATE '1997-09-30' GROUP BY customer_id
),
hold AS (
  SELECT customer_id, COUNT(*) AS frequency_holdout, AVG(value) AS monetary_value_holdout
  FROM (SELECT customer_id, CAST(occurred_at AS DATE) AS p, SUM(amount) AS value FROM transactions
        WHERE amount >= 0 AND CAST(occurred_at AS DATE) > DATE '1997-09-30' AND CAST(occurred_at AS DATE) <= DATE '1998-06-30'
        GROUP BY customer_id, CAST(occurred_at AS DATE)) h
  GROUP BY customer_id
)
SELECT c.customer_id,
       CAST(c.n_periods - 1 AS BIGINT) AS frequency,
       CAST(datediff(c.last_p, c.first_p) AS DOUBLE) / 7.0 AS recency,
       CAST(datediff(DATE '1997-09-30', c.first_p) AS DOUBLE) / 7.0 AS T,
       CASE WHEN c.n_periods > 1 THEN (c.gross - c.first_value) / (c.n_periods - 1) ELSE 0.0 END AS monetary_value,
       CAST(c.n_orders AS BIGINT) AS n_orders,
       c.gross - coalesce(r.refunded, 0.0) AS total_spend,
       coalesce(r.refunded, 0.0) AS refunded,
       c.first_purchase,
       c.last_purchase,
       CAST(coalesce(h.frequency_holdout, 0) AS BIGINT) AS frequency_holdout,
       coalesce(h.monetary_value_holdout, 0.0) AS monetary_value_holdout,
       CAST(datediff(DATE '1998-06-30', DATE '1997-09-30') AS DOUBLE) / 7.0 AS duration_holdout
FROM per_customer c
LEFT JOIN refunds r ON r.customer_id = c.customer_id
LEFT JOIN hold h ON h.customer_id = c.customer_id
