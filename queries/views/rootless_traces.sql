-- materialize
-- (a table of known size: `rootless_spans` then finds the spans of these traces with one hash
-- table of them, where an unmaterialised grouping, of unknown size to the planner, had all 10M
-- spans repartitioned by trace to meet it)
-- The traces that have no root (no span without a parent), with their size.
SELECT trace_id, count(*) AS span_count FROM spans
WHERE trace_id IS NOT NULL
GROUP BY trace_id
HAVING sum(CASE WHEN parent_span_id IS NULL OR parent_span_id = 0 THEN 1 ELSE 0 END) = 0
