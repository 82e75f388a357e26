SELECT customer_id, CASE WHEN clv >= 1000.0 THEN 'platinum' WHEN clv >= 300.0 THEN 'gold' WHEN clv >= 100.0 THEN 'silver' ELSE 'bronze' END AS value_tier FROM base WHERE n_orders IS NOT NULL
