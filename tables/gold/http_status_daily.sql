-- description: "Per UTC day and HTTP status: requests, clients, bytes and the status's share of the day."
-- keys: [request_date, status]
WITH per_status AS (
  SELECT
    request_date,
    status,
    count(*) AS requests,
    count(DISTINCT client_key) AS distinct_clients,
    coalesce(sum(response_bytes), 0) AS response_bytes,   -- bytes logged as '-' count as 0
    count_if(is_bot) AS bot_requests
  FROM silver.access_requests
  GROUP BY request_date, status
)
SELECT
  request_date,
  status,
  concat(CAST(status DIV 100 AS STRING), 'xx') AS status_class,
  status >= 400 AS is_error,
  requests,
  distinct_clients,
  response_bytes,
  bot_requests,
  sum(requests) OVER (PARTITION BY request_date) AS day_requests,
  requests / sum(requests) OVER (PARTITION BY request_date) AS share_of_day
FROM per_status
