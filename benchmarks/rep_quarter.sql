-- Hand-written DuckDB reference for the cold-query benchmark (benchmarks/bench_scale.py):
-- ten catalog metrics per rep for one period, straight over the Parquet files.
--
--   python -m analysis metrics DATA --by rep_id --period 2026-Q3 --metrics revenue,deals_won,
--       deals_lost,win_rate,avg_deal_size,sales_cycle_days,calls,meetings,avg_call_minutes,
--       positive_call_rate
--
-- must print the same figures. Definitions (SPEC section 4, analysis/semantic/catalog.yml):
--   * a deal is in P when it is won or lost and its close_date (a date, never shifted) is in P;
--     its rep is owner_id;
--   * revenue = sum of amount of won deals (0 without any), win_rate = won / (won + lost),
--     avg_deal_size = revenue / won, sales_cycle_days = mean of close_date - created_at's day
--     over won deals; a zero denominator is NULL ("not available"), never 0;
--   * an activity is in P by occurred_at. The scale dataset stores naive timestamps, which the
--     package reads as wall time in the company time zone (workbench.yml: America/New_York)
--     already, so they compare with P's bounds as they are (TIMESTAMPTZ columns would need
--     timezone('America/New_York', occurred_at) first);
--   * calls / meetings count activities of that type; a call is connected when its outcome is
--     connected, positive, negative or meeting_booked, positive when positive or meeting_booked;
--     avg_call_minutes = mean of duration_s / 60 over connected calls with a duration,
--     positive_call_rate = positive / connected calls.
-- The package also leaves out values its data-quality rules flag (analysis/data/values.py);
-- the generated scale data has none in these columns, which the benchmark's check confirms.
--
-- Placeholders filled by the benchmark: {opportunities} and {activities} (quoted paths of the
-- Parquet files), {start} and {end} (the first and last day of P, ISO dates).

WITH deals AS (
    SELECT owner_id AS rep_id,
           count(*) FILTER (WHERE status = 'won') AS deals_won,
           count(*) FILTER (WHERE status = 'lost') AS deals_lost,
           sum(amount) FILTER (WHERE status = 'won') AS revenue,
           avg(close_date - CAST(created_at AS DATE)) FILTER (WHERE status = 'won') AS sales_cycle_days
    FROM read_parquet({opportunities})
    WHERE status IN ('won', 'lost')
      AND close_date BETWEEN DATE '{start}' AND DATE '{end}'
    GROUP BY owner_id
),
activity AS (
    SELECT rep_id,
           count(*) FILTER (WHERE type = 'call') AS calls,
           count(*) FILTER (WHERE type = 'meeting') AS meetings,
           count(*) FILTER (WHERE connected) AS connected_calls,
           count(*) FILTER (WHERE connected AND outcome IN ('positive', 'meeting_booked')) AS positive_calls,
           sum(duration_s) FILTER (WHERE connected) AS connected_seconds,
           count(duration_s) FILTER (WHERE connected) AS connected_timed
    FROM (
        SELECT *, type = 'call' AND outcome IN ('connected', 'positive', 'negative', 'meeting_booked') AS connected
        FROM read_parquet({activities})
        WHERE occurred_at >= TIMESTAMP '{start}'
          AND occurred_at < TIMESTAMP '{end}' + INTERVAL 1 DAY
    )
    GROUP BY rep_id
)
SELECT coalesce(d.rep_id, a.rep_id) AS rep_id,
       coalesce(d.revenue, 0) AS revenue,
       coalesce(d.deals_won, 0) AS deals_won,
       coalesce(d.deals_lost, 0) AS deals_lost,
       d.deals_won / nullif(d.deals_won + d.deals_lost, 0) AS win_rate,
       d.revenue / nullif(d.deals_won, 0) AS avg_deal_size,
       d.sales_cycle_days,
       coalesce(a.calls, 0) AS calls,
       coalesce(a.meetings, 0) AS meetings,
       a.connected_seconds / 60 / nullif(a.connected_timed, 0) AS avg_call_minutes,
       a.positive_calls / nullif(a.connected_calls, 0) AS positive_call_rate
FROM deals AS d
FULL OUTER JOIN activity AS a ON d.rep_id = a.rep_id
ORDER BY rep_id
