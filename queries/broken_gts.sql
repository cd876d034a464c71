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
-- its input outside the memory limit (see docs/checks.md, "Memory"). The first trace is found by
-- its start, not by `array_agg(... ORDER BY ...)`, whose ordered lists DataFusion builds row by
-- row (0.5 s of CPU for 57K traces on 10M spans, session 31).
transactions AS (
  SELECT gts_global_tx_id, count(*) AS trace_count, min(first_start) AS first_start
  FROM transaction_traces GROUP BY gts_global_tx_id HAVING count(*) > 1
),
first_traces AS (
  SELECT t.gts_global_tx_id, x.trace_count, min(t.trace_id) AS first_trace_id
  FROM transactions x
  JOIN transaction_traces t ON t.gts_global_tx_id = x.gts_global_tx_id AND t.first_start = x.first_start
  GROUP BY t.gts_global_tx_id, x.trace_count
),
later_traces AS (
  SELECT f.gts_global_tx_id, f.trace_count, f.first_trace_id, t.trace_id
  FROM first_traces f JOIN transaction_traces t ON t.gts_global_tx_id = f.gts_global_tx_id
  WHERE t.trace_id <> f.first_trace_id
),
first_spans AS (
  SELECT trace_id, span_id, gts_global_tx_id, service_name, name, start_time,
         row_number() OVER (PARTITION BY gts_global_tx_id, trace_id ORDER BY start_time, span_id) AS position
  FROM spans WHERE gts_global_tx_id IS NOT NULL AND trace_id IS NOT NULL
),
-- Each problem carries its span's service, name and start: no join of the few problems with all
-- 10M spans, which repartitioned every span to meet them (0.35-0.38 s for this check against
-- 0.66-1.10 s with both changes, session 31).
problems AS (
  SELECT f.trace_id, f.span_id, f.service_name, f.name, f.start_time, 1 AS rank,
         'global transaction ' || o.gts_global_tx_id || ' is under ' || CAST(o.trace_count AS VARCHAR) ||
           ' trace ids; it began in trace ' || hex_id(o.first_trace_id) AS reason,
         o.first_trace_id AS related_trace_id, NULL AS related_span_id
  FROM later_traces o
  JOIN first_spans f ON f.trace_id = o.trace_id AND f.gts_global_tx_id = o.gts_global_tx_id AND f.position = 1
  UNION ALL
  SELECT c.trace_id, c.span_id, c.service_name, c.name, c.start_time, 2 AS rank,
         'branch ' || c.gts_branch_tx_id || ' names parent branch ' || c.gts_parent_branch_tx_id ||
           ' but its parent span ' || hex_id(p.span_id) || ' is branch ' || p.gts_branch_tx_id AS reason,
         NULL AS related_trace_id, p.span_id AS related_span_id
  FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
  WHERE c.gts_parent_branch_tx_id IS NOT NULL AND p.gts_branch_tx_id IS NOT NULL
    AND coalesce(c.gts_branch_tx_id, '') <> p.gts_branch_tx_id AND c.gts_parent_branch_tx_id <> p.gts_branch_tx_id
  UNION ALL
  SELECT c.trace_id, c.span_id, c.service_name, c.name, c.start_time, 3 AS rank,
         'global transaction ' || c.gts_global_tx_id || ' differs from its parent span ' || hex_id(p.span_id) ||
           '''s ' || p.gts_global_tx_id AS reason,
         NULL AS related_trace_id, p.span_id AS related_span_id
  FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
  WHERE c.gts_global_tx_id IS NOT NULL AND p.gts_global_tx_id IS NOT NULL AND c.gts_global_tx_id <> p.gts_global_tx_id
)
SELECT trace_id, span_id, service_name AS service, name AS span_name, start_time AS time,
       concat_ws('; ', max(CASE WHEN rank = 1 THEN reason END), max(CASE WHEN rank = 2 THEN reason END),
                 max(CASE WHEN rank = 3 THEN reason END)) AS explanation,
       min(related_trace_id) AS related_trace_id, min(related_span_id) AS related_span_id
FROM problems
GROUP BY trace_id, span_id, service_name, name, start_time
