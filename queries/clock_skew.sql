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
  SELECT trace_id, span_id, service_name AS service, name AS span_name, start_time AS time,
         parent_span_id, host, parent_kind,
         'child on host ' || host || ' lies outside its parent on host ' || parent_host || '; estimated skew ' ||
           CAST((CASE WHEN duration_nano <= parent_duration_nano
                      THEN CAST(parent_start_time AS BIGINT) + (parent_duration_nano - duration_nano) / 2 - CAST(start_time AS BIGINT)
                      ELSE CAST(parent_start_time AS BIGINT) - CAST(start_time AS BIGINT) END) / 1000 AS VARCHAR) || ' µs'
           AS explanation,
         parent_span_id AS related_span_id
  FROM children_outside_parent
  WHERE host IS NOT NULL AND parent_host IS NOT NULL AND host <> parent_host
    AND (start_time < parent_start_time OR end_time > parent_end_time)
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
