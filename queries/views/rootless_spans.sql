-- materialize
-- (the spans of traces without a root: few; read three times by `parent_cycle`, which would
-- otherwise group every span by trace three times)
-- The spans of the traces that have no root (no span without a parent), with the trace's size.
-- Only such a trace can hold a loop of parent ids.
WITH rootless AS (
  SELECT trace_id, count(*) AS span_count FROM spans
  WHERE trace_id IS NOT NULL
  GROUP BY trace_id
  HAVING sum(CASE WHEN parent_span_id IS NULL OR parent_span_id = 0 THEN 1 ELSE 0 END) = 0
)
SELECT s.trace_id, s.span_id, s.parent_span_id, s.service_name, s.name, s.start_time, r.span_count
FROM rootless r JOIN spans s ON s.trace_id = r.trace_id
