-- materialize
-- (links are few, `child_of` links fewer: unnested once here, for `span_parents`, `orphaned_spans`
-- and `missing_parent`; unnesting every span's links in each read cost 0.5 s on 10M spans.
-- `empty(links)` reads the list offsets; `cardinality(links)` built a list per row, and took a
-- seventh of the suite's CPU time.)
-- The `child_of` links of each span to a span of its own trace (OpenTracing's extra CHILD_OF
-- references, as Jaeger writes them): each counts as a parent. `has_parent_id`: the span also has
-- a parent id (not all zero).
SELECT trace_id, span_id, link['span_id'] AS parent_id,
       coalesce(parent_span_id <> 0, false) AS has_parent_id
FROM (SELECT trace_id, span_id, parent_span_id, unnest(links) AS link FROM spans
      WHERE trace_id IS NOT NULL AND NOT empty(links))
WHERE link['attributes']['opentracing.ref_type']['string'] = 'child_of'
  AND link['trace_id'] = trace_id AND link['span_id'] IS NOT NULL AND link['span_id'] <> 0
