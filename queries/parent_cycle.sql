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
-- Only a trace without a root can loop, and such traces are few: their spans are the view
-- `rootless_spans` (computed once), and only they are joined and ordered here.
WITH present AS (
  SELECT DISTINCT trace_id, span_id FROM rootless_spans WHERE span_id IS NOT NULL
),
cyclic AS (
  SELECT s.trace_id FROM rootless_spans s
  LEFT JOIN present p ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id
  GROUP BY s.trace_id
  HAVING sum(CASE WHEN p.span_id IS NULL THEN 1 ELSE 0 END) = 0
),
first_spans AS (
  SELECT s.*, row_number() OVER (PARTITION BY s.trace_id ORDER BY s.start_time, s.span_id) AS position
  FROM rootless_spans s JOIN cyclic c ON c.trace_id = s.trace_id
)
SELECT f.trace_id, f.span_id, f.service_name AS service, f.name AS span_name, f.start_time AS time,
       'no root among ' || CAST(f.span_count AS VARCHAR) || ' spans and no parent missing: the parent ids loop (' ||
         hex_id(f.span_id) || ' names parent ' || hex_id(f.parent_span_id) || ')' AS explanation,
       NULL AS related_trace_id, f.parent_span_id AS related_span_id
FROM first_spans f
WHERE f.position = 1
