-- materialize
-- (one row per orphan: small; read twice by `orphaned_span`, for the orphans and the sizes of their
-- traces, which would otherwise look for the missing parents twice)
-- The spans none of whose parents (parent id, `child_of` links) is in their trace, with the first
-- missing parent id and the first missing link.
--
-- The parents not found are few (`child_parent_matches` looks every span's parents up once): only
-- they are grouped per span. A span is an orphan when all of its `child_of` links are missing
-- (counted in the small `child_of_links`), and so is its parent id, or it has none. (Counting every parent of these spans again took a second pass over all spans.)
WITH missing AS (
  SELECT c.trace_id, c.span_id,
         CASE WHEN c.via = 'parent' THEN c.parent_id END AS missing_parent,
         CASE WHEN c.via <> 'parent' THEN c.parent_id END AS missing_link
  FROM child_parent_matches c
  WHERE NOT c.parent_found
),
candidates AS (
  SELECT trace_id, span_id, count(missing_parent) AS missing_parents, count(missing_link) AS missing_links,
         min(missing_parent) AS missing_parent, min(missing_link) AS missing_link
  FROM missing
  GROUP BY trace_id, span_id
),
links AS (
  SELECT trace_id, span_id, count(*) AS link_count, bool_or(has_parent_id) AS has_parent_id
  FROM child_of_links
  GROUP BY trace_id, span_id
)
SELECT k.trace_id, k.span_id, k.missing_parent, k.missing_link
FROM candidates k
LEFT JOIN links l ON l.trace_id = k.trace_id AND l.span_id = k.span_id
WHERE k.missing_links = coalesce(l.link_count, 0)
  AND (k.missing_parents > 0 OR NOT coalesce(l.has_parent_id, false))
