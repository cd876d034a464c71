-- materialize
-- The children whose time lies outside their parent's: starting before it, ending after it, or
-- starting after it ended. Messaging (PRODUCER parents, PRODUCER and CONSUMER children) and
-- parents without a duration (Zipkin's incomplete spans: no known end) are left out.
--
-- Found on ids, kinds and times alone, so that the join of every span to its parent carries
-- narrow rows; `children_outside_parent` adds names, hosts and processes to the few found. Each
-- row holds every value the condition reads: a child and a parent that match a row meet it.
SELECT DISTINCT c.trace_id, c.span_id, c.parent_span_id, c.kind, c.start_time, c.end_time,
       p.kind AS parent_kind, p.start_time AS parent_start_time, p.end_time AS parent_end_time,
       p.duration_nano AS parent_duration_nano
FROM spans c
JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
WHERE c.kind NOT IN ('PRODUCER', 'CONSUMER') AND p.kind NOT IN ('PRODUCER')
  AND p.duration_nano <> 0
  AND (c.start_time < p.start_time OR c.end_time > p.end_time OR c.start_time > p.end_time)
