-- materialize
-- (1.4% of the spans of the generated corpus: `premature_end` and `clock_skew` both judge these
-- pairs, and one join of every span to its parent replaces one in each check)
-- The children whose time lies outside their parent's: starting before it, ending after it, or
-- starting after it ended, with the parent's name, kind, times, host and process. Messaging
-- (PRODUCER parents, PRODUCER and CONSUMER children) and parents without a duration (Zipkin's
-- incomplete spans: no known end) are left out.
SELECT c.trace_id, c.span_id, c.parent_span_id, c.service_name, c.name, c.kind, c.start_time, c.end_time,
       c.duration_nano, c.has_links, c.parent_is_remote, c.host, c.process,
       p.name AS parent_name, p.kind AS parent_kind, p.start_time AS parent_start_time,
       p.end_time AS parent_end_time, p.duration_nano AS parent_duration_nano, p.host AS parent_host,
       p.process AS parent_process
FROM span_processes c
JOIN span_processes p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
WHERE c.kind NOT IN ('PRODUCER', 'CONSUMER') AND p.kind NOT IN ('PRODUCER')
  AND p.duration_nano <> 0
  AND (c.start_time < p.start_time OR c.end_time > p.end_time OR c.start_time > p.end_time)
