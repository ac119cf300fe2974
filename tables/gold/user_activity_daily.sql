-- description: "Per user and UTC day: counts of logins, views, likes and uploads."
-- keys: [user_key, event_date]
SELECT
  user_key,
  event_date,
  datediff(event_date, DATE'1970-01-01') AS day_index,
  count(*) AS n_events,
  count_if(event_type = 'login') AS n_logins,
  count_if(event_type = 'view') AS n_views,
  count_if(event_type = 'like') AS n_likes,
  count_if(event_type = 'upload') AS n_uploads
FROM silver.events
GROUP BY user_key, event_date
