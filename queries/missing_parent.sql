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
-- roots in the traces that may have several and for the roots' own rows).
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
-- The roots, less those whose ids a parented span or a `child_of` link also has, with only what
-- their evidence needs: the 2.7M roots of 10M spans go through three joins, and names,
-- destinations and headers are read only for the few with evidence (`evidence` below). (The ids
-- of `parented_ids` have names of their own: with both sides' `span_id`, DataFusion 55's physical
-- filter pushdown took the one in `c.span_id IS NULL` by name for the roots' own, below the join,
-- and found no root at all; apache/datafusion#21246, #25296.)
roots AS (
  SELECT r.trace_id, r.span_id, r.kind, r.start_time, r.gts_global_tx_id,
         r.header_traceparent IS NOT NULL OR r.header_b3 IS NOT NULL OR r.header_x_b3_traceid IS NOT NULL
           OR r.header_x_b3_spanid IS NOT NULL AS has_headers
  FROM parented_ids c
  RIGHT JOIN spans r ON c.parented_trace_id = r.trace_id AND c.parented_span_id = r.span_id
  WHERE r.parent_span_id IS NULL AND r.trace_id IS NOT NULL AND c.parented_span_id IS NULL
),
-- Only traces with several roots need counting, and only those with several spans without a
-- parent id (`traces_without_one_root`, few and of known size) can: their roots are counted, not
-- the 2.7M roots of 10M spans grouped by trace (and repartitioned to meet the grouping). The few
-- traces with several roots are the hash table each root is looked up in. Spans sharing one id are
-- roots each.
multiple_roots AS (
  SELECT r.trace_id, count(*) AS root_count, min(CAST(r.start_time AS BIGINT)) AS first_root_start_nano
  FROM traces_without_one_root t JOIN roots r ON r.trace_id = t.trace_id
  WHERE t.root_count > 1
  GROUP BY r.trace_id HAVING count(*) > 1
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
-- The roots with some evidence, with the evidence that comes from other spans. (The few GTS
-- origins, callee halves and traces of several roots are the hash tables, not the millions of
-- roots.)
evident_roots AS (
  SELECT r.trace_id, r.span_id, r.start_time,
         h.reason AS callee_reason,
         CASE WHEN o.origin_trace_id IS NOT NULL
              THEN 'its GTS global transaction ' || r.gts_global_tx_id || ' began in trace ' || hex_id(o.origin_trace_id)
         END AS transaction_reason,
         CASE WHEN m.root_count > 1 AND CAST(r.start_time AS BIGINT) > m.first_root_start_nano
              THEN 'one of ' || CAST(m.root_count AS VARCHAR) || ' roots in this trace'
         END AS roots_reason,
         coalesce(h.caller_trace_id, o.origin_trace_id) AS related_trace_id,
         h.caller_span_id AS related_span_id
  FROM transaction_origins o
  RIGHT JOIN (callee_halves h
    RIGHT JOIN (multiple_roots m RIGHT JOIN roots r ON m.trace_id = r.trace_id)
    ON h.root_trace_id = r.trace_id AND h.root_span_id = r.span_id)
    ON o.gts_global_tx_id = r.gts_global_tx_id AND o.trace_id = r.trace_id
  WHERE r.has_headers OR r.kind IN ('CLIENT', 'PRODUCER') OR h.reason IS NOT NULL OR o.origin_trace_id IS NOT NULL
     OR (m.root_count > 1 AND CAST(r.start_time AS BIGINT) > m.first_root_start_nano)
),
-- Each root with evidence meets its span again, by its ids and start, for its names, destination
-- and headers.
evidence AS (
  SELECT s.trace_id, s.span_id, s.service_name, s.name, s.start_time,
         CASE WHEN s.header_traceparent IS NOT NULL OR s.header_b3 IS NOT NULL
                OR s.header_x_b3_traceid IS NOT NULL OR s.header_x_b3_spanid IS NOT NULL
              THEN 'received propagation headers but started a new trace (' ||
                CASE WHEN s.header_traceparent IS NOT NULL
                       THEN 'traceparent ' || s.header_traceparent ||
                            coalesce(', invalid: ' || traceparent_part(s.header_traceparent, 'problem'), '')
                     WHEN s.header_b3 IS NOT NULL THEN 'b3 ' || s.header_b3
                     ELSE 'X-B3-TraceId ' || coalesce(s.header_x_b3_traceid, s.header_x_b3_spanid) END || ')'
         END AS headers_reason,
         CASE WHEN s.kind IN ('CLIENT', 'PRODUCER')
              THEN s.kind || ' span is a root: the outgoing call' ||
                CASE WHEN coalesce(s.db_system, s.peer_service, s.server_address, s.rpc_system, s.messaging_system) IS NOT NULL
                     THEN ' to ' || coalesce(s.db_system, s.peer_service, s.server_address, s.rpc_system, s.messaging_system)
                     ELSE '' END ||
                ' was made from a context without a span'
         END AS client_reason,
         e.callee_reason, e.transaction_reason, e.roots_reason, e.related_trace_id, e.related_span_id
  FROM evident_roots e
  JOIN spans s ON s.trace_id = e.trace_id AND s.span_id = e.span_id AND s.start_time = e.start_time
)
SELECT trace_id, span_id, service_name AS service, name AS span_name, start_time AS time,
       concat_ws('; ', headers_reason, client_reason, callee_reason, transaction_reason, roots_reason) AS explanation,
       related_trace_id, related_span_id
FROM evidence
WHERE coalesce(headers_reason, client_reason, callee_reason, transaction_reason, roots_reason) IS NOT NULL
