-- materialize
-- (`child_of` links are fewer than links: kept apart for `span_parents`, `child_parent_matches`,
-- `orphaned_spans` and `missing_parent`.)
-- The `child_of` links of each span to a span of its own trace (OpenTracing's extra CHILD_OF
-- references, as Jaeger writes them): each counts as a parent. `has_parent_id`: the span also has
-- a parent id (not all zero).
SELECT trace_id, span_id, link_span_id AS parent_id,
       coalesce(parent_span_id <> 0, false) AS has_parent_id
FROM span_links
WHERE trace_id IS NOT NULL AND ref_type = 'child_of'
  AND link_trace_id = trace_id AND link_span_id IS NOT NULL AND link_span_id <> 0
