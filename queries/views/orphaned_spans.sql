-- materialize
-- (one row per orphan: small; read twice by `orphaned_span`, for the orphans and the sizes of their
-- traces, which would otherwise look for the missing parents twice)
-- The spans none of whose parents (`span_parents`: parent id, `child_of` links) is in their trace,
-- with the first missing parent id and the first missing link.
--
-- The parents not found are few: only they are grouped per span, and a span is an orphan when all
-- of its parents are among them (its parents counted again, for those spans only). Grouping every
-- span's parents took twice the time on 10M spans.
WITH missing AS (
  SELECT c.trace_id, c.span_id, c.via, c.parent_id
  FROM span_parents c
  LEFT ANTI JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_id
),
candidates AS (
  SELECT trace_id, span_id, count(*) AS missing_count,
         min(CASE WHEN via = 'parent' THEN parent_id END) AS missing_parent,
         min(CASE WHEN via <> 'parent' THEN parent_id END) AS missing_link
  FROM missing
  GROUP BY trace_id, span_id
)
SELECT k.trace_id, k.span_id, k.missing_parent, k.missing_link
FROM candidates k JOIN span_parents c ON c.trace_id = k.trace_id AND c.span_id = k.span_id
GROUP BY k.trace_id, k.span_id, k.missing_count, k.missing_parent, k.missing_link
HAVING count(*) = k.missing_count
