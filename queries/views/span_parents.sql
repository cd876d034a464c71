-- Every span's parents: its parent_span_id, and each `child_of` link into its own trace. Jaeger and
-- OpenTracing send extra CHILD_OF references as links with `opentracing.ref_type = child_of`, and
-- Tempo counts them as parents (tempo #3634), so the checks do too (the links are in the
-- materialised view `child_of_links`). All-zero parents are left to `invalid_id` (Zipkin reads
-- them as "no parent").
SELECT trace_id, span_id, parent_span_id AS parent_id, 'parent' AS via
FROM spans
WHERE trace_id IS NOT NULL AND parent_span_id IS NOT NULL AND parent_span_id <> 0
UNION ALL
SELECT trace_id, span_id, parent_id, 'child_of link' AS via
FROM child_of_links
