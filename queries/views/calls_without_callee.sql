-- materialize
-- (small: one row per call; read twice by `unanswered_calls`)
-- Outgoing calls (CLIENT, PRODUCER) to an instrumented service (one with spans in the data) whose
-- SERVER or CONSUMER side is not under the call in the same trace: neither a child of the call, nor
-- sharing its id (Zipkin), nor linking to it (messaging). `unanswered_calls` then leaves out the
-- calls that an orphan of the callee answered.
--
-- The callee comes from the call's destination (`call_destinations`: `peer.service`, else
-- `server.address`, else its first label); calls to the caller's own service and database calls
-- are left out (Zipkin names database endpoints after the owning service).
WITH calls AS (
  SELECT s.trace_id, s.span_id, s.service_name, s.name, s.kind, s.start_time, s.end_time, s.status_code,
         s.http_route, s.rpc_system, s.db_system, d.callee
  FROM spans s
  -- (Parenthesised: without them, `IS NOT DISTINCT FROM` would take `... AND d.server_address` as
  -- its right side.)
  JOIN call_destinations d
    ON (d.peer_service IS NOT DISTINCT FROM s.peer_service) AND (d.server_address IS NOT DISTINCT FROM s.server_address)
  WHERE s.kind IN ('CLIENT', 'PRODUCER') AND s.trace_id IS NOT NULL AND s.span_id IS NOT NULL
    AND d.callee IS NOT NULL
),
callee_sides AS (
  SELECT trace_id, parent_span_id AS caller_span_id, service_name FROM spans
  WHERE kind IN ('SERVER', 'CONSUMER') AND parent_span_id IS NOT NULL
  UNION ALL
  -- A side sharing the call's id has a repeated id: the few such spans, not every server span.
  SELECT s.trace_id, s.span_id AS caller_span_id, s.service_name FROM spans s
  LEFT SEMI JOIN repeated_span_ids r ON r.span_id = s.span_id
  WHERE s.kind IN ('SERVER', 'CONSUMER')
  UNION ALL
  SELECT link_trace_id AS trace_id, link_span_id AS caller_span_id, service_name
  FROM span_links WHERE kind IN ('SERVER', 'CONSUMER')
),
calls_without_callee AS (
  SELECT c.* FROM calls c
  LEFT ANTI JOIN callee_sides x
    ON x.trace_id = c.trace_id AND x.caller_span_id = c.span_id AND x.service_name = c.callee
  -- A call to the caller's own service, or to a database, is not to an instrumented callee: Zipkin
  -- often names a database endpoint after the service or keyspace that owns it.
  WHERE c.callee IS NOT NULL AND c.callee <> coalesce(c.service_name, '') AND c.db_system IS NULL
)
SELECT * FROM calls_without_callee
