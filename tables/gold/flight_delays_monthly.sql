-- description: "Per carrier and month: flights, cancellations, mean/median/p90 delays and on-time share."
-- keys: [carrier, year, month]

-- Every aggregate is exact and order-independent (means summed as decimals: a sum of doubles depends on
-- the order Spark adds them in), so the same flights always give the same rows. Delays are minutes;
-- flights without an arr_delay (cancelled, diverted) are left out of the arrival statistics.
WITH airline_names AS (
  -- silver.airlines is keyed by carrier; min() only keeps a duplicate from multiplying the flights
  SELECT carrier, min(name) AS airline_name FROM silver.airlines GROUP BY carrier
),
monthly AS (
  SELECT
    f.carrier,
    n.airline_name,
    f.year,
    f.month,
    count(*) AS flights,
    count_if(f.dep_time IS NULL) AS cancelled_flights,
    count(f.arr_delay) AS flights_with_arr_delay,
    CAST(avg(CAST(f.dep_delay AS DECIMAL(20, 6))) AS DOUBLE) AS mean_dep_delay,
    CAST(avg(CAST(f.arr_delay AS DECIMAL(20, 6))) AS DOUBLE) AS mean_arr_delay,
    percentile(f.arr_delay, 0.5) AS median_arr_delay,
    percentile(f.arr_delay, 0.9) AS p90_arr_delay,
    count_if(f.arr_delay <= 15) AS on_time_flights
  FROM silver.flights AS f
  LEFT JOIN airline_names AS n ON f.carrier = n.carrier
  GROUP BY f.carrier, n.airline_name, f.year, f.month
)
SELECT
  carrier,
  airline_name,
  year,
  month,
  make_date(year, month, 1) AS month_start,
  flights,
  cancelled_flights,
  cancelled_flights / flights AS cancelled_share,
  flights_with_arr_delay,
  mean_dep_delay,
  mean_arr_delay,
  median_arr_delay,
  p90_arr_delay,
  on_time_flights / nullif(flights_with_arr_delay, 0) AS on_time_share
FROM monthly
