SELECT customer_id, recency_score, frequency_score, monetary_score,
    CAST(recency_score AS VARCHAR) || '' || CAST(frequency_score AS VARCHAR) || '' || CAST(monetary_score AS VARCHAR) AS rfm_score
FROM (
    SELECT customer_id,
        CAST(NTILE(5) OVER (ORDER BY days_since_last DESC, customer_id) AS INTEGER) AS recency_score,
        CAST(NTILE(5) OVER (ORDER BY n_orders ASC, customer_id) AS INTEGER) AS frequency_score,
        CAST(NTILE(5) OVER (ORDER BY total_spend ASC, customer_id) AS INTEGER) AS monetary_score
    FROM (SELECT customer_id, recency, n_orders, total_spend, datediff(CAST(as_of AS DATE), CAST(last_purchase AS DATE)) AS days_since_last
          FROM base WHERE n_orders IS NOT NULL) AS buyers
) AS scored
