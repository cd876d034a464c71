-- materialize
-- (one row per dropped call: small; read by unpropagated_call, missing_parent, the edge figures
-- and the dashboard's dropped calls)
-- The unanswered calls (`unanswered_calls`: the callee is instrumented, but its SERVER or CONSUMER
-- side is not under the call in the same trace), with, when there is one, the root that the
-- callee started during the call: the other half of the break. A failed call (status ERROR) with
-- no callee root during it probably never reached the callee, and is left out. Roots are matched
-- per second of start time, so the join stays a hash join at any volume.
WITH dropped AS (
  SELECT * FROM unanswered_calls
),
call_seconds AS (
  SELECT d.trace_id, d.span_id, d.callee,
         unnest(generate_series(CAST(d.start_time AS BIGINT) / 1000000000,
                                greatest(CAST(d.start_time AS BIGINT), least(CAST(d.end_time AS BIGINT), CAST(d.start_time AS BIGINT) + 60000000000)) / 1000000000)) AS second
  FROM dropped d
),
callee_roots AS (
  SELECT trace_id, span_id, service_name, name, start_time, http_route, rpc_system,
         CAST(start_time AS BIGINT) / 1000000000 AS second
  FROM spans
  WHERE parent_span_id IS NULL AND kind IN ('SERVER', 'CONSUMER') AND trace_id IS NOT NULL
),
halves AS (
  SELECT d.trace_id, d.span_id, r.trace_id AS root_trace_id, r.span_id AS root_span_id, r.name AS root_name,
         row_number() OVER (PARTITION BY d.trace_id, d.span_id
                            ORDER BY abs(CAST(r.start_time AS BIGINT) - CAST(d.start_time AS BIGINT)), r.trace_id, r.span_id) AS closeness
  FROM dropped d
  JOIN call_seconds cs ON cs.trace_id = d.trace_id AND cs.span_id = d.span_id
  JOIN callee_roots r ON r.service_name = d.callee AND r.second = cs.second
  WHERE r.trace_id <> d.trace_id
    AND r.start_time >= d.start_time AND r.start_time <= d.end_time
    AND (d.http_route IS NULL OR r.http_route IS NULL OR d.http_route = r.http_route)
    AND (d.rpc_system IS NULL OR r.rpc_system IS NULL OR d.name = r.name)
)
SELECT d.*, h.root_trace_id, h.root_span_id, h.root_name
FROM dropped d
LEFT JOIN (SELECT * FROM halves WHERE closeness = 1) h ON h.trace_id = d.trace_id AND h.span_id = d.span_id
WHERE d.status_code <> 'ERROR' OR h.root_span_id IS NOT NULL
