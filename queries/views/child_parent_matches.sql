-- materialize
-- (small: the orphans and the children outside their parent's time; `orphaned_spans` and
-- `children_outside_parent_ids` read it, so every parent is looked up once, not once for each)
-- Every span's parents (its parent id, and its `child_of` links as in `span_parents`) looked up in
-- its trace, keeping two kinds of rows:
-- - a parent not found (`parent_found` false): an all-zero parent id is left to `invalid_id`;
-- - a parent id found whose span's time does not hold the child's: the child starts before it,
--   ends after it, or starts after it ended. Messaging (PRODUCER parents, PRODUCER and CONSUMER
--   children) and parents without a duration (Zipkin's incomplete spans) are left out.
-- Each row holds the child's and the parent's kinds and times, all that the condition reads.
-- (As two joins, one per view, the two took 3.4 to 4.1 s on 10M spans; as one, 2.1 to 2.6 s.)
-- (Which relation a row is stays a boolean until the few rows kept: a text column would be 7.5M
-- strings built and hashed into the join's table. The links' NULL kind is typed as the spans'
-- dictionary: an untyped NULL made the union cast every span's kind to text.)
WITH relations AS (
  SELECT trace_id, span_id, parent_span_id AS parent_id, false AS is_link, kind, start_time, end_time
  FROM spans WHERE trace_id IS NOT NULL AND parent_span_id IS NOT NULL
  UNION ALL
  SELECT trace_id, span_id, parent_id, true AS is_link, arrow_cast(NULL, 'Dictionary(Int32, Utf8)') AS kind,
         NULL AS start_time, NULL AS end_time
  FROM child_of_links
)
SELECT c.trace_id, c.span_id, c.parent_id, CASE WHEN c.is_link THEN 'child_of link' ELSE 'parent' END AS via,
       c.kind, c.start_time, c.end_time,
       p.span_id IS NOT NULL AS parent_found, p.kind AS parent_kind, p.start_time AS parent_start_time,
       p.end_time AS parent_end_time, p.duration_nano AS parent_duration_nano
FROM relations c
LEFT JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_id
WHERE (p.span_id IS NULL AND NOT (NOT c.is_link AND c.parent_id = 0))
   OR (NOT c.is_link AND c.kind NOT IN ('PRODUCER', 'CONSUMER') AND p.kind NOT IN ('PRODUCER')
       AND p.duration_nano <> 0
       AND (c.start_time < p.start_time OR c.end_time > p.end_time OR c.start_time > p.end_time))
