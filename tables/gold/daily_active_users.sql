-- description: "Per UTC day: distinct active users, events, and events of each type."
-- keys: [event_date]
SELECT
  event_date,
  count(DISTINCT user_key) AS active_users,
  count(*) AS n_events,
  count(*) / nullif(count(DISTINCT user_key), 0) AS events_per_user,
  count_if(event_type = 'login') AS n_logins,
  count_if(event_type = 'view') AS n_views,
  count_if(event_type = 'like') AS n_likes,
  count_if(event_type = 'upload') AS n_uploads
FROM silver.events
GROUP BY event_date
