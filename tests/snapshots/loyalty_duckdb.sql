WITH orders AS (
  SELECT customer_id, CAST(occurred_at AS DATE) AS day, amount, discount, margin, category
  FROM transactions
  WHERE amount >= 0 AND CAST(occurred_at AS DATE) <= DATE '1997-09-30'
),
purchases AS (
  SELECT customer_id, day, SUM(amount) AS value FROM orders GROUP BY customer_id, day
),
numbered AS (
  SELECT customer_id, day, value,
         ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY day) AS k,
         LAG(day) OVER (PARTITION BY customer_id ORDER BY day) AS prev_day
  FROM purchases
),
steps AS (
  SELECT customer_id, value, CAST(k AS DOUBLE) AS k, CAST(date_diff('day', prev_day, day) AS DOUBLE) AS gap
  FROM numbered
),
per_customer AS (
  SELECT customer_id, COUNT(*) AS n_purchases,
         MAX(CASE WHEN k = 2 THEN gap END) AS days_to_second_purchase,
         COUNT(gap) AS n_gaps, AVG(gap) AS mean_gap,
         SUM(CASE WHEN gap IS NOT NULL THEN k - 1 END) AS gx, SUM(gap) AS gy,
         SUM(CASE WHEN gap IS NOT NULL THEN (k - 1) * (k - 1) END) AS gxx, SUM((k - 1) * gap) AS gxy,
         SUM(k) AS sx, SUM(value) AS sy, SUM(k * k) AS sxx, SUM(k * value) AS sxy, AVG(value) AS mean_value
  FROM steps GROUP BY customer_id
),
slopes AS (
  SELECT p.*, ((p.n_gaps) * (p.gxy) - (p.gx) * (p.gy)) / NULLIF((p.n_gaps) * (p.gxx) - (p.gx) * (p.gx), 0) AS interpurchase_slope, ((p.n_purchases) * (p.sxy) - (p.sx) * (p.sy)) / NULLIF((p.n_purchases) * (p.sxx) - (p.sx) * (p.sx), 0) AS spend_slope FROM per_customer p
),
discounts AS (
  SELECT customer_id, COUNT(*) AS n_orders, SUM(amount) AS revenue, COUNT(discount) AS n_known,
         SUM(CASE WHEN discount > 0 THEN 1 ELSE 0 END) AS n_discounted,
         SUM(CASE WHEN discount IS NOT NULL THEN amount END) AS known_revenue,
         SUM(CASE WHEN discount > 0 THEN amount ELSE 0 END) AS discounted_revenue
  FROM orders GROUP BY customer_id
),
shares AS (
  SELECT customer_id, n_orders, revenue, n_known, n_discounted,
         CASE WHEN n_known > 0 THEN CAST(n_discounted AS DOUBLE) / n_known END AS discount_order_share,
         CASE WHEN known_revenue > 0 THEN discounted_revenue / known_revenue END AS discount_revenue_share
  FROM discounts
),
categories AS (
  SELECT customer_id, category, SUM(amount) AS revenue, COUNT(*) AS n
  FROM orders WHERE category IS NOT NULL GROUP BY customer_id, category
),
ranked AS (
  SELECT customer_id, category, revenue,
         ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY revenue DESC, n DESC, category) AS r,
         SUM(revenue) OVER (PARTITION BY customer_id) AS total
  FROM categories
)
SELECT p.customer_id,
       CAST(s.n_orders AS BIGINT) AS n_orders,
       CAST(p.n_purchases AS BIGINT) AS n_purchases,
       s.revenue,
       p.n_purchases > 1 AS returned,
       p.days_to_second_purchase,
       p.mean_gap AS mean_interpurchase_days,
       p.interpurchase_slope,
       CASE WHEN p.n_gaps < 3 THEN 'insufficient' WHEN p.interpurchase_slope < 0 AND -(p.interpurchase_slope) >= 0.1 * p.mean_gap THEN 'shortening' WHEN p.interpurchase_slope > 0 AND p.interpurchase_slope >= 0.1 * p.mean_gap THEN 'lengthening' ELSE 'steady' END AS interpurchase_trend,
       p.spend_slope,
       CASE WHEN p.n_purchases < 3 THEN 'insufficient' WHEN p.spend_slope < 0 AND -(p.spend_slope) >= 0.1 * p.mean_value THEN 'falling' WHEN p.spend_slope > 0 AND p.spend_slope >= 0.1 * p.mean_value THEN 'rising' ELSE 'steady' END AS spend_trend,
       s.discount_order_share,
       s.discount_revenue_share,
       CASE WHEN s.discount_order_share IS NOT NULL THEN s.discount_order_share >= 0.5 END AS discount_dependent,
       CASE WHEN s.n_known > 0 THEN s.n_discounted = 0 END AS full_price_buyer,
       c.category AS top_category,
       c.revenue / NULLIF(c.total, 0) AS top_category_share
FROM slopes p
JOIN shares s ON s.customer_id = p.customer_id
LEFT JOIN ranked c ON c.customer_id = p.customer_id AND c.r = 1
ORDER BY p.customer_id
