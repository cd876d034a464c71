-- Every span's parents: its parent_span_id, and each `child_of` link into its own trace. Jaeger and
-- OpenTracing send extra CHILD_OF references as links with `opentracing.ref_type = child_of`, and
-- Tempo counts them as parents (tempo #3634), so the checks do too. All-zero parents are left to
-- `invalid_id` (Zipkin reads them as "no parent").
-- (`empty(links)` reads the list offsets; `cardinality(links)` built a list per row, and took a seventh
-- of the suite's CPU time.)
SELECT trace_id, span_id, parent_span_id AS parent_id, 'parent' AS via
FROM spans
WHERE trace_id IS NOT NULL AND parent_span_id IS NOT NULL AND parent_span_id <> 0
UNION ALL
SELECT trace_id, span_id, link['span_id'] AS parent_id, 'child_of link' AS via
FROM (SELECT trace_id, span_id, unnest(links) AS link FROM spans WHERE trace_id IS NOT NULL AND NOT empty(links))
WHERE link['attributes']['opentracing.ref_type']['string'] = 'child_of'
  AND link['trace_id'] = trace_id AND link['span_id'] IS NOT NULL AND link['span_id'] <> 0
