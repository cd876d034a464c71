/* check
id = "clock_skew"
title = "Clock skew between hosts"
severity = "info"
is_break = false
meaning = "A child on another host than its parent starts before the parent or ends after it: the hosts' clocks disagree. The trace is complete; its timeline is shifted. The estimated delta is computed as Jaeger does: the child, shifted to sit in the middle of its parent."
causes = [
  "Hosts without NTP/chrony, or a VM whose clock drifted after a pause.",
  "Containers on different nodes with clocks a few milliseconds apart, visible on fast calls.",
]
fix = "Synchronise clocks (chrony, NTP); the trace is still usable: backends such as Jaeger can adjust the displayed times."
*/
SELECT c.trace_id, c.span_id, c.service_name AS service, c.name AS span_name, c.start_time AS time,
       'child on host ' || c.host || ' lies outside its parent on host ' || p.host || '; estimated skew ' ||
         CAST((CASE WHEN c.duration_nano <= p.duration_nano
                    THEN CAST(p.start_time AS BIGINT) + (p.duration_nano - c.duration_nano) / 2 - CAST(c.start_time AS BIGINT)
                    ELSE CAST(p.start_time AS BIGINT) - CAST(c.start_time AS BIGINT) END) / 1000 AS VARCHAR) || ' µs'
         AS explanation,
       NULL AS related_trace_id, p.span_id AS related_span_id
FROM span_processes c
JOIN span_processes p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
-- Under Zipkin's shared spans a parent id names the client and the server: the child's parent
-- is the one on its own host, else the server half, whose process the child's work continues.
-- (Written as outer joins, not EXISTS subqueries, so that the plan also runs on a cluster.)
LEFT JOIN (SELECT DISTINCT trace_id, span_id, host FROM span_processes) same_host
  ON same_host.trace_id = c.trace_id AND same_host.span_id = c.parent_span_id AND same_host.host = c.host
LEFT JOIN (SELECT DISTINCT trace_id, span_id FROM span_processes WHERE kind = 'SERVER') server_half
  ON server_half.trace_id = c.trace_id AND server_half.span_id = c.parent_span_id
WHERE c.host IS NOT NULL AND p.host IS NOT NULL AND c.host <> p.host
  AND c.kind NOT IN ('PRODUCER', 'CONSUMER') AND p.kind NOT IN ('PRODUCER')
  -- A parent without a duration (Zipkin's incomplete spans) has no known end.
  AND p.duration_nano <> 0
  AND (c.start_time < p.start_time OR c.end_time > p.end_time)
  AND same_host.span_id IS NULL
  AND NOT (p.kind = 'CLIENT' AND server_half.span_id IS NOT NULL)
