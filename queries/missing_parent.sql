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
-- A root's evidence comes from its columns and joins on it, not from a UNION of separate reads of
-- the roots (DataFusion inlines each use of a CTE: `roots` is computed twice, for the count of
-- roots per trace on two columns and for the roots' own rows).
--
-- A root is a span without a parent id that no `child_of` link (nor a span of the same id with a
-- parent) makes a child. Such relations are few: a span with a parent id whose id is used more than
-- once (`repeated_span_ids`), or a `child_of` link. Only they are looked up, not every span's
-- parents (on 10M spans, 7.5M parent relations were repartitioned and probed for this).
WITH parented_ids AS (
  SELECT s.trace_id AS parented_trace_id, s.span_id AS parented_span_id
  FROM repeated_span_ids d JOIN spans s ON s.span_id = d.span_id
  WHERE s.trace_id IS NOT NULL AND s.parent_span_id IS NOT NULL AND s.parent_span_id <> 0
  UNION ALL
  SELECT trace_id, span_id FROM child_of_links
),
-- The roots, less those whose ids a parented span or a `child_of` link also has. (The ids of
-- `parented_ids` have names of their own: with both sides' `span_id`, DataFusion 55's physical
-- filter pushdown took the one in `c.span_id IS NULL` by name for the roots' own, below the join,
-- and found no root at all; apache/datafusion#21246, #25296.)
roots AS (
  SELECT r.trace_id, r.span_id, r.service_name, r.name, r.kind, r.start_time, r.gts_global_tx_id, r.db_system,
         r.peer_service, r.server_address, r.rpc_system, r.messaging_system, r.header_traceparent, r.header_b3,
         r.header_x_b3_traceid, r.header_x_b3_spanid
  FROM parented_ids c
  RIGHT JOIN spans r ON c.parented_trace_id = r.trace_id AND c.parented_span_id = r.span_id
  WHERE r.parent_span_id IS NULL AND r.trace_id IS NOT NULL AND c.parented_span_id IS NULL
),
-- Only traces with several roots need counting: the few of them are the hash table each root is
-- looked up in, where the roots' ids were grouped twice and joined back to every root (on 10M
-- spans, 1.16-1.45 s against 1.36-1.71 s for the check, session 31). Spans sharing one id are
-- roots each.
multiple_roots AS (
  SELECT trace_id, count(*) AS root_count, min(CAST(start_time AS BIGINT)) AS first_root_start_nano
  FROM roots GROUP BY trace_id HAVING count(*) > 1
),
counted_roots AS (
  SELECT r.*, m.root_count, m.first_root_start_nano
  FROM multiple_roots m RIGHT JOIN roots r ON m.trace_id = r.trace_id
),
global_transactions AS (
  SELECT gts_global_tx_id, trace_id, min(start_time) AS first_start
  FROM spans WHERE gts_global_tx_id IS NOT NULL AND trace_id IS NOT NULL
  GROUP BY gts_global_tx_id, trace_id
),
-- Per global transaction and trace: the trace where the transaction began, when it is another.
transaction_origins AS (
  SELECT own.gts_global_tx_id, own.trace_id, min(g.trace_id) AS origin_trace_id
  FROM global_transactions own
  JOIN global_transactions g ON g.gts_global_tx_id = own.gts_global_tx_id AND g.trace_id <> own.trace_id
  WHERE g.first_start < own.first_start OR (g.first_start = own.first_start AND g.trace_id < own.trace_id)
  GROUP BY own.gts_global_tx_id, own.trace_id
),
-- Roots that a callee started during a call that did not propagate its context.
callee_halves AS (
  SELECT root_trace_id, root_span_id,
         max('started during the call ' || hex_id(span_id) || ' ''' || name || ''' from ' || service_name ||
             ' in trace ' || hex_id(trace_id) || ', which did not propagate its context') AS reason,
         max(trace_id) AS caller_trace_id, max(span_id) AS caller_span_id
  FROM unpropagated_calls
  WHERE root_span_id IS NOT NULL
  GROUP BY root_trace_id, root_span_id
),
evidence AS (
  SELECT r.trace_id, r.span_id, r.service_name, r.name, r.start_time,
         CASE WHEN r.header_traceparent IS NOT NULL OR r.header_b3 IS NOT NULL
                OR r.header_x_b3_traceid IS NOT NULL OR r.header_x_b3_spanid IS NOT NULL
              THEN 'received propagation headers but started a new trace (' ||
                CASE WHEN r.header_traceparent IS NOT NULL
                       THEN 'traceparent ' || r.header_traceparent ||
                            coalesce(', invalid: ' || traceparent_part(r.header_traceparent, 'problem'), '')
                     WHEN r.header_b3 IS NOT NULL THEN 'b3 ' || r.header_b3
                     ELSE 'X-B3-TraceId ' || coalesce(r.header_x_b3_traceid, r.header_x_b3_spanid) END || ')'
         END AS headers_reason,
         CASE WHEN r.kind IN ('CLIENT', 'PRODUCER')
              THEN r.kind || ' span is a root: the outgoing call' ||
                CASE WHEN coalesce(r.db_system, r.peer_service, r.server_address, r.rpc_system, r.messaging_system) IS NOT NULL
                     THEN ' to ' || coalesce(r.db_system, r.peer_service, r.server_address, r.rpc_system, r.messaging_system)
                     ELSE '' END ||
                ' was made from a context without a span'
         END AS client_reason,
         h.reason AS callee_reason,
         CASE WHEN o.origin_trace_id IS NOT NULL
              THEN 'its GTS global transaction ' || r.gts_global_tx_id || ' began in trace ' || hex_id(o.origin_trace_id)
         END AS transaction_reason,
         CASE WHEN r.root_count > 1 AND CAST(r.start_time AS BIGINT) > r.first_root_start_nano
              THEN 'one of ' || CAST(r.root_count AS VARCHAR) || ' roots in this trace'
         END AS roots_reason,
         coalesce(h.caller_trace_id, o.origin_trace_id) AS related_trace_id,
         h.caller_span_id AS related_span_id
  -- (The few GTS origins and callee halves are the hash tables, not the millions of roots: on 10M
  -- spans this check went from 1.92-2.11 s to 1.74-1.75 s.)
  FROM transaction_origins o
  RIGHT JOIN (callee_halves h RIGHT JOIN counted_roots r ON h.root_trace_id = r.trace_id AND h.root_span_id = r.span_id)
    ON o.gts_global_tx_id = r.gts_global_tx_id AND o.trace_id = r.trace_id
  -- (Only the roots with some evidence get their explanation built: each condition below is the
  -- one under which a reason above is not null.)
  WHERE r.header_traceparent IS NOT NULL OR r.header_b3 IS NOT NULL OR r.header_x_b3_traceid IS NOT NULL
     OR r.header_x_b3_spanid IS NOT NULL OR r.kind IN ('CLIENT', 'PRODUCER') OR h.reason IS NOT NULL
     OR o.origin_trace_id IS NOT NULL
     OR (r.root_count > 1 AND CAST(r.start_time AS BIGINT) > r.first_root_start_nano)
)
SELECT trace_id, span_id, service_name AS service, name AS span_name, start_time AS time,
       concat_ws('; ', headers_reason, client_reason, callee_reason, transaction_reason, roots_reason) AS explanation,
       related_trace_id, related_span_id
FROM evidence
WHERE coalesce(headers_reason, client_reason, callee_reason, transaction_reason, roots_reason) IS NOT NULL
