/* check
id = "parent_cycle"
title = "Trace whose parent ids form a cycle"
severity = "error"
is_break = true
meaning = "The trace has no root, and no span's parent is missing: every span names a parent that is in the trace, so following parents loops forever. No backend can draw this trace (Jaeger shows it without a root; Tempo's structural queries find nothing)."
causes = [
  "Span ids reused across requests: a non-random id generator, or a context copied from another request (a pooled or cached context).",
  "A hand-written propagator that writes the callee's own span id into the parent header it sends back or on.",
  "Spans of several traces merged under one trace id by a broken converter or a 64-bit trace id collision.",
]
fix = "Use the SDK's random id generator, never reuse a context between requests, and check custom propagators: the parent id a callee records must be the caller's span id."
*/
WITH present AS (
  SELECT DISTINCT trace_id, span_id FROM spans WHERE trace_id IS NOT NULL AND span_id IS NOT NULL
),
traces AS (
  SELECT s.trace_id, count(*) AS span_count,
         sum(CASE WHEN s.parent_span_id IS NULL OR s.parent_span_id = 0 THEN 1 ELSE 0 END) AS roots,
         sum(CASE WHEN s.parent_span_id IS NOT NULL AND s.parent_span_id <> 0 AND p.span_id IS NULL THEN 1 ELSE 0 END)
           AS orphans
  FROM spans s LEFT JOIN present p ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id
  WHERE s.trace_id IS NOT NULL
  GROUP BY s.trace_id
),
first_spans AS (
  SELECT trace_id, span_id, parent_span_id, service_name, name, start_time,
         row_number() OVER (PARTITION BY trace_id ORDER BY start_time, span_id) AS position
  FROM spans WHERE trace_id IS NOT NULL
)
SELECT f.trace_id, f.span_id, f.service_name AS service, f.name AS span_name, f.start_time AS time,
       'no root among ' || CAST(t.span_count AS VARCHAR) || ' spans and no parent missing: the parent ids loop (' ||
         hex_id(f.span_id) || ' names parent ' || hex_id(f.parent_span_id) || ')' AS explanation,
       NULL AS related_trace_id, f.parent_span_id AS related_span_id
FROM traces t JOIN first_spans f ON f.trace_id = t.trace_id AND f.position = 1
WHERE t.roots = 0 AND t.orphans = 0
