-- materialize
-- (few: read by `rootless_traces` and by `missing_parent`, which counts a trace's roots only
-- where there can be several, so the millions of roots of 10M spans are neither grouped by trace
-- nor repartitioned to meet an unknown number of such traces)
-- The traces without exactly one span that has no parent (or an all-zero parent id), with their
-- size and the number of such spans: the traces without a root, and those that may have several.
SELECT trace_id, count(*) AS span_count,
       sum(CASE WHEN parent_span_id IS NULL OR parent_span_id = 0 THEN 1 ELSE 0 END) AS root_count
FROM spans
WHERE trace_id IS NOT NULL
GROUP BY trace_id
HAVING sum(CASE WHEN parent_span_id IS NULL OR parent_span_id = 0 THEN 1 ELSE 0 END) <> 1
