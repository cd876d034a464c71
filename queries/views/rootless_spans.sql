-- materialize
-- (the spans of traces without a root: few; read three times by `parent_cycle`, which would
-- otherwise group every span by trace three times)
-- The spans of the traces that have no root (`rootless_traces`), with the trace's size.
-- Only such a trace can hold a loop of parent ids.
SELECT s.trace_id, s.span_id, s.parent_span_id, s.service_name, s.name, s.start_time, r.span_count
FROM rootless_traces r JOIN spans s ON s.trace_id = r.trace_id
