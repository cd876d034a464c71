-- materialize
-- (one row per dropped call: small; read by unpropagated_call, missing_parent, the edge figures
-- and the dashboard's dropped calls)
-- Outgoing calls (CLIENT, PRODUCER) to an instrumented service (one with spans in the data) whose
-- SERVER or CONSUMER side is not under the call in the same trace: neither a child of the call, nor
-- sharing its id (Zipkin), nor linking to it (messaging), nor any orphan of the callee that started
-- during the call (the context arrived through a hop that was lost: that is `orphaned_span`'s
-- finding). With, when there is one, the root that the callee started during the call: the other
-- half of the break.
--
-- The callee is `peer.service`, else `server.address`, else the first label of `server.address`
-- (`orders.prod.svc` -> `orders`); calls to the caller's own service and database calls are left
-- out (Zipkin names database endpoints after the owning service). A failed call (status ERROR) with no callee root during it
-- probably never reached the callee, and is left out. Roots are matched per second of start time,
-- so the join stays a hash join at any volume.
WITH services AS (
  SELECT DISTINCT service_name FROM spans WHERE service_name IS NOT NULL
),
calls AS (
  SELECT s.trace_id, s.span_id, s.service_name, s.name, s.kind, s.start_time, s.end_time, s.status_code,
         s.http_route, s.rpc_system, s.db_system,
         coalesce(by_peer.service_name, by_address.service_name, by_label.service_name) AS callee
  FROM spans s
  LEFT JOIN services by_peer ON by_peer.service_name = s.peer_service
  LEFT JOIN services by_address ON by_address.service_name = s.server_address
  LEFT JOIN services by_label ON by_label.service_name = split_part(s.server_address, '.', 1)
  WHERE s.kind IN ('CLIENT', 'PRODUCER') AND s.trace_id IS NOT NULL AND s.span_id IS NOT NULL
    AND coalesce(s.peer_service, s.server_address) IS NOT NULL
),
callee_sides AS (
  SELECT trace_id, parent_span_id AS caller_span_id, service_name FROM spans
  WHERE kind IN ('SERVER', 'CONSUMER') AND parent_span_id IS NOT NULL
  UNION ALL
  SELECT trace_id, span_id AS caller_span_id, service_name FROM spans
  WHERE kind IN ('SERVER', 'CONSUMER') AND span_id IS NOT NULL
  UNION ALL
  SELECT link['trace_id'] AS trace_id, link['span_id'] AS caller_span_id, service_name
  FROM (SELECT service_name, unnest(links) AS link FROM spans WHERE kind IN ('SERVER', 'CONSUMER') AND cardinality(links) > 0)
),
present AS (
  SELECT DISTINCT trace_id, span_id FROM spans WHERE trace_id IS NOT NULL AND span_id IS NOT NULL
),
callee_orphans AS (
  SELECT s.trace_id, s.service_name, s.start_time FROM spans s
  LEFT JOIN present p ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id
  WHERE s.parent_span_id IS NOT NULL AND p.span_id IS NULL
),
unanswered AS (
  SELECT c.* FROM calls c
  LEFT JOIN (SELECT DISTINCT trace_id, caller_span_id, service_name FROM callee_sides) x
    ON x.trace_id = c.trace_id AND x.caller_span_id = c.span_id AND x.service_name = c.callee
  -- A call to the caller's own service, or to a database, is not to an instrumented callee: Zipkin
  -- often names a database endpoint after the service or keyspace that owns it.
  WHERE c.callee IS NOT NULL AND x.caller_span_id IS NULL
    AND c.callee <> coalesce(c.service_name, '') AND c.db_system IS NULL
),
-- Calls during which an orphan of the callee started. (A join and an anti join rather than a
-- NOT EXISTS subquery, so that the plan also runs on a cluster.)
answered_by_orphan AS (
  SELECT DISTINCT u.trace_id, u.span_id, u.callee, u.start_time, u.end_time FROM unanswered u
  JOIN callee_orphans o ON o.trace_id = u.trace_id AND o.service_name = u.callee
   AND o.start_time >= u.start_time AND o.start_time <= u.end_time
),
dropped AS (
  SELECT u.* FROM unanswered u
  LEFT JOIN answered_by_orphan a
    ON a.trace_id = u.trace_id AND a.span_id = u.span_id AND a.callee = u.callee
   AND a.start_time = u.start_time AND a.end_time = u.end_time
  WHERE a.span_id IS NULL
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
