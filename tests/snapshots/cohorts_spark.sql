WITH orders AS (
  SELECT customer_id, CAST(occurred_at AS DATE) AS day, amount, discount, margin, category
  FROM transactions
  WHERE amount >= 0 AND CAST(occurred_at AS DATE) <= DATE '1997-09-30'
),
periods AS (
  SELECT customer_id, CAST(date_trunc('MONTH', day) AS DATE) AS p, SUM(amount) AS revenue
  FROM orders GROUP BY customer_id, CAST(date_trunc('MONTH', day) AS DATE)
),
firsts AS (
  SELECT customer_id, MIN(p) AS cohort FROM periods GROUP BY customer_id
),
sizes AS (
  SELECT cohort, COUNT(*) AS customers, CAST(((year(CAST(date_trunc('MONTH', DATE '1997-09-30') AS DATE)) - year(cohort)) * 12 + (month(CAST(date_trunc('MONTH', DATE '1997-09-30') AS DATE)) - month(cohort))) AS BIGINT) AS last_period
  FROM firsts GROUP BY cohort
),
activity AS (
  SELECT f.cohort, CAST(((year(x.p) - year(f.cohort)) * 12 + (month(x.p) - month(f.cohort))) AS BIGINT) AS period, COUNT(*) AS active, SUM(x.revenue) AS revenue
  FROM periods x JOIN firsts f ON f.customer_id = x.customer_id
  GROUP BY f.cohort, CAST(((year(x.p) - year(f.cohort)) * 12 + (month(x.p) - month(f.cohort))) AS BIGINT)
)
SELECT s.cohort, s.customers, s.last_period, a.period, a.active, a.revenue
FROM sizes s LEFT JOIN activity a ON a.cohort = s.cohort
ORDER BY s.cohort, a.period
