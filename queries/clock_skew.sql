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
-- The pairs outside their parent are found first (few); only for them is it looked up whether the
-- parent id also names a span on the child's host, or a SERVER half. (Looking that up for every
-- span, with a DISTINCT over all spans each, took most of this check's time.)
WITH outside AS (
  SELECT c.trace_id, c.span_id, c.service_name AS service, c.name AS span_name, c.start_time AS time,
         c.parent_span_id, c.host, p.kind AS parent_kind,
         'child on host ' || c.host || ' lies outside its parent on host ' || p.host || '; estimated skew ' ||
           CAST((CASE WHEN c.duration_nano <= p.duration_nano
                      THEN CAST(p.start_time AS BIGINT) + (p.duration_nano - c.duration_nano) / 2 - CAST(c.start_time AS BIGINT)
                      ELSE CAST(p.start_time AS BIGINT) - CAST(c.start_time AS BIGINT) END) / 1000 AS VARCHAR) || ' µs'
           AS explanation,
         p.span_id AS related_span_id
  FROM span_processes c
  JOIN span_processes p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
  WHERE c.host IS NOT NULL AND p.host IS NOT NULL AND c.host <> p.host
    AND c.kind NOT IN ('PRODUCER', 'CONSUMER') AND p.kind NOT IN ('PRODUCER')
    -- A parent without a duration (Zipkin's incomplete spans) has no known end.
    AND p.duration_nano <> 0
    AND (c.start_time < p.start_time OR c.end_time > p.end_time)
),
-- Under Zipkin's shared spans a parent id names the client and the server: the child's parent
-- is the one on its own host, else the server half, whose process the child's work continues.
-- (An outer join and a grouping, not EXISTS subqueries, so that the plan also runs on a cluster.)
named AS (
  SELECT o.trace_id, o.span_id, o.service, o.span_name, o.time, o.explanation, o.related_span_id, o.parent_kind,
         max(CASE WHEN x.host = o.host THEN 1 ELSE 0 END) AS on_own_host,
         max(CASE WHEN x.kind = 'SERVER' THEN 1 ELSE 0 END) AS has_server_half
  FROM outside o
  LEFT JOIN span_processes x ON x.trace_id = o.trace_id AND x.span_id = o.parent_span_id
  GROUP BY o.trace_id, o.span_id, o.service, o.span_name, o.time, o.explanation, o.related_span_id, o.parent_kind
)
SELECT trace_id, span_id, service, span_name, time, explanation, NULL AS related_trace_id, related_span_id
FROM named
WHERE on_own_host = 0 AND NOT (parent_kind = 'CLIENT' AND has_server_half = 1)
