/* check
id = "broken_gts"
title = "GTS global transaction that does not follow the trace"
severity = "error"
is_break = true
meaning = "A distributed transaction (Huawei GTS, Seata XID and alike) should map onto one trace: global transaction id to trace id, branch to span, parent branch to parent span. Here one global transaction is under more than one trace id, a new branch names a parent branch that is not its parent span's branch, or a span's global transaction differs from its parent's. The transaction and the trace tell two different stories of one request."
causes = [
  "The transaction context travels (GTS/Seata propagate their id in their own header or RPC attachment) while the trace context does not: an HTTP or RPC call made without the request ctx, so the callee joins the global transaction under a new trace id.",
  "A goroutine or async task that carries the transaction id explicitly but is started from `context.Background()`.",
  "A branch registered from the wrong context (a pooled or cached context, a context of another request), so its parent branch and its parent span disagree.",
  "The GTS attributes are set at the wrong level (on the resource of a long-lived process rather than on each span), or under keys other than the configured ones.",
]
fix = "Propagate the trace context wherever the transaction context goes: pass the request's ctx to the call that carries the GTS/XID header, start workers with `go worker(ctx)`, and record `gts.global_tx_id`, `gts.branch_tx_id`, `gts.parent_branch_tx_id` on the span that begins the branch (keys configurable with `--gts-*-key`)."
*/
WITH transaction_traces AS (
  SELECT gts_global_tx_id, trace_id, min(start_time) AS first_start
  FROM spans WHERE gts_global_tx_id IS NOT NULL AND trace_id IS NOT NULL
  GROUP BY gts_global_tx_id, trace_id
),
-- Grouped, not counted with a window over the transaction: a window over a whole partition holds
-- its input outside the memory limit (see docs/checks.md, "Memory").
transactions AS (
  SELECT gts_global_tx_id, count(*) AS trace_count,
         array_agg(trace_id ORDER BY first_start, trace_id) AS trace_ids
  FROM transaction_traces GROUP BY gts_global_tx_id HAVING count(*) > 1
),
later_traces AS (
  SELECT gts_global_tx_id, trace_count, first_trace_id, trace_id
  FROM (SELECT gts_global_tx_id, trace_count, trace_ids[1] AS first_trace_id, unnest(trace_ids) AS trace_id
        FROM transactions) t
  WHERE trace_id <> first_trace_id
),
first_spans AS (
  SELECT trace_id, span_id, gts_global_tx_id,
         row_number() OVER (PARTITION BY gts_global_tx_id, trace_id ORDER BY start_time, span_id) AS position
  FROM spans WHERE gts_global_tx_id IS NOT NULL AND trace_id IS NOT NULL
),
problems AS (
  SELECT f.trace_id, f.span_id, 1 AS rank,
         'global transaction ' || o.gts_global_tx_id || ' is under ' || CAST(o.trace_count AS VARCHAR) ||
           ' trace ids; it began in trace ' || hex_id(o.first_trace_id) AS reason,
         o.first_trace_id AS related_trace_id, NULL AS related_span_id
  FROM later_traces o
  JOIN first_spans f ON f.trace_id = o.trace_id AND f.gts_global_tx_id = o.gts_global_tx_id AND f.position = 1
  UNION ALL
  SELECT c.trace_id, c.span_id, 2 AS rank,
         'branch ' || c.gts_branch_tx_id || ' names parent branch ' || c.gts_parent_branch_tx_id ||
           ' but its parent span ' || hex_id(p.span_id) || ' is branch ' || p.gts_branch_tx_id AS reason,
         NULL AS related_trace_id, p.span_id AS related_span_id
  FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
  WHERE c.gts_parent_branch_tx_id IS NOT NULL AND p.gts_branch_tx_id IS NOT NULL
    AND coalesce(c.gts_branch_tx_id, '') <> p.gts_branch_tx_id AND c.gts_parent_branch_tx_id <> p.gts_branch_tx_id
  UNION ALL
  SELECT c.trace_id, c.span_id, 3 AS rank,
         'global transaction ' || c.gts_global_tx_id || ' differs from its parent span ' || hex_id(p.span_id) ||
           '''s ' || p.gts_global_tx_id AS reason,
         NULL AS related_trace_id, p.span_id AS related_span_id
  FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
  WHERE c.gts_global_tx_id IS NOT NULL AND p.gts_global_tx_id IS NOT NULL AND c.gts_global_tx_id <> p.gts_global_tx_id
)
SELECT s.trace_id, s.span_id, s.service_name AS service, s.name AS span_name, s.start_time AS time,
       concat_ws('; ', max(CASE WHEN p.rank = 1 THEN p.reason END), max(CASE WHEN p.rank = 2 THEN p.reason END),
                 max(CASE WHEN p.rank = 3 THEN p.reason END)) AS explanation,
       min(p.related_trace_id) AS related_trace_id, min(p.related_span_id) AS related_span_id
-- (Joined to the spans as they are, not to a DISTINCT of all spans: a span stored twice only
-- repeats rows that max and min fold.)
FROM problems p
JOIN spans s ON s.trace_id = p.trace_id AND s.span_id = p.span_id
GROUP BY s.trace_id, s.span_id, s.service_name, s.name, s.start_time
