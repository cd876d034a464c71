/* check
id = "missing_parent"
title = "Root span that should have had a parent"
severity = "error"
is_break = true
meaning = "A span starts a new trace although the evidence says it was called from inside another one: it recorded incoming propagation headers it did not extract, it is a CLIENT or PRODUCER span (an outgoing call) with no parent, it started during a call to its service that did not propagate (the callee half of an `unpropagated_call`), it shares a GTS global transaction with an earlier trace, or it is a second root in its trace. The call chain is cut here: what came before is in another trace, or lost."
causes = [
  "HTTP call made without the request context (Go: `http.NewRequest` instead of `http.NewRequestWithContext(ctx, ...)`, or `http.DefaultClient.Do` on a request built from `context.Background()`).",
  "Redis, SQL or cache call on `context.Background()` instead of the request's ctx (`rdb.Set(context.Background(), ...)`), so the client span becomes a root.",
  "Goroutine started without its context (`go func() { ... }()` using `context.Background()` inside) instead of `go func(ctx context.Context) { ... }(ctx)`.",
  "A gRPC interceptor that builds a new context and does not pass it to `handler(newCtx, req)`.",
  "Middleware (Gin, Echo) that does not pass `c.Request.Context()` on to the service layer.",
  "Headers received but not extracted: no propagator registered for the format the caller sends (a B3 caller and a W3C-only server), or a header looked up with the wrong case in a case-sensitive carrier (`X-B3-Traceid` vs `x-b3-traceid`).",
]
fix = "Pass the request's `ctx` down every call (`NewRequestWithContext`, `rdb.Get(ctx, ...)`, `go worker(ctx)`, `handler(newCtx, req)`), and register a composite propagator (W3C trace context + B3) on the server so every header format the callers send is extracted."
*/
WITH roots AS (
  SELECT trace_id, span_id, service_name, name, kind, start_time, gts_global_tx_id, db_system, peer_service,
         server_address, rpc_system, messaging_system, header_traceparent, header_b3, header_x_b3_traceid,
         header_x_b3_spanid
  FROM spans s
  LEFT JOIN (SELECT DISTINCT trace_id AS parented_trace_id, span_id AS parented_span_id FROM span_parents) p
    ON p.parented_trace_id = s.trace_id AND p.parented_span_id = s.span_id
  WHERE s.parent_span_id IS NULL AND s.trace_id IS NOT NULL AND p.parented_span_id IS NULL
),
root_counts AS (
  SELECT trace_id, count(*) AS root_count, min(start_time) AS first_root_start FROM roots GROUP BY trace_id
),
global_transactions AS (
  SELECT gts_global_tx_id, trace_id, min(start_time) AS first_start
  FROM spans WHERE gts_global_tx_id IS NOT NULL AND trace_id IS NOT NULL
  GROUP BY gts_global_tx_id, trace_id
),
evidence AS (
  SELECT trace_id, span_id, 1 AS rank,
         'received propagation headers but started a new trace (' ||
           CASE WHEN header_traceparent IS NOT NULL
                  THEN 'traceparent ' || header_traceparent ||
                       coalesce(', invalid: ' || traceparent_part(header_traceparent, 'problem'), '')
                WHEN header_b3 IS NOT NULL THEN 'b3 ' || header_b3
                ELSE 'X-B3-TraceId ' || coalesce(header_x_b3_traceid, header_x_b3_spanid) END || ')' AS reason,
         NULL AS related_trace_id, NULL AS related_span_id
  FROM roots
  WHERE header_traceparent IS NOT NULL OR header_b3 IS NOT NULL
     OR header_x_b3_traceid IS NOT NULL OR header_x_b3_spanid IS NOT NULL
  UNION ALL
  SELECT trace_id, span_id, 2 AS rank,
         kind || ' span is a root: the outgoing call' ||
           CASE WHEN coalesce(db_system, peer_service, server_address, rpc_system, messaging_system) IS NOT NULL
                THEN ' to ' || coalesce(db_system, peer_service, server_address, rpc_system, messaging_system) ELSE '' END ||
           ' was made from a context without a span' AS reason,
         NULL AS related_trace_id, NULL AS related_span_id
  FROM roots
  WHERE kind IN ('CLIENT', 'PRODUCER')
  UNION ALL
  SELECT u.root_trace_id AS trace_id, u.root_span_id AS span_id, 3 AS rank,
         'started during the call ' || hex_id(u.span_id) || ' ''' || u.name || ''' from ' || u.service_name ||
           ' in trace ' || hex_id(u.trace_id) || ', which did not propagate its context' AS reason,
         u.trace_id AS related_trace_id, u.span_id AS related_span_id
  FROM unpropagated_calls u
  WHERE u.root_span_id IS NOT NULL
  UNION ALL
  SELECT r.trace_id, r.span_id, 4 AS rank,
         'its GTS global transaction ' || r.gts_global_tx_id || ' began in trace ' || hex_id(g.trace_id) AS reason,
         g.trace_id AS related_trace_id, NULL AS related_span_id
  FROM roots r
  JOIN global_transactions g ON g.gts_global_tx_id = r.gts_global_tx_id AND g.trace_id <> r.trace_id
  JOIN global_transactions own ON own.gts_global_tx_id = r.gts_global_tx_id AND own.trace_id = r.trace_id
  WHERE g.first_start < own.first_start OR (g.first_start = own.first_start AND g.trace_id < own.trace_id)
  UNION ALL
  SELECT r.trace_id, r.span_id, 5 AS rank,
         'one of ' || CAST(c.root_count AS VARCHAR) || ' roots in this trace' AS reason,
         NULL AS related_trace_id, NULL AS related_span_id
  FROM roots r JOIN root_counts c ON c.trace_id = r.trace_id
  WHERE c.root_count > 1 AND r.start_time > c.first_root_start
)
SELECT r.trace_id, r.span_id, r.service_name AS service, r.name AS span_name, r.start_time AS time,
       concat_ws('; ', max(CASE WHEN e.rank = 1 THEN e.reason END), max(CASE WHEN e.rank = 2 THEN e.reason END),
                 max(CASE WHEN e.rank = 3 THEN e.reason END), min(CASE WHEN e.rank = 4 THEN e.reason END),
                 max(CASE WHEN e.rank = 5 THEN e.reason END)) AS explanation,
       coalesce(max(CASE WHEN e.rank = 3 THEN e.related_trace_id END), min(e.related_trace_id)) AS related_trace_id,
       max(e.related_span_id) AS related_span_id
FROM evidence e JOIN roots r ON r.trace_id = e.trace_id AND r.span_id = e.span_id
GROUP BY r.trace_id, r.span_id, r.service_name, r.name, r.start_time
