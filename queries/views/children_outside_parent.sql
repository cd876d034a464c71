-- materialize
-- (1.4% of the spans of the generated corpus: `premature_end` and `clock_skew` both judge these
-- pairs)
-- The children whose time lies outside their parent's (`children_outside_parent_ids`), with
-- their and their parent's names, hosts and processes (as `span_processes` defines them). The
-- spans are joined on every value the condition read, so a span id used twice in a trace pairs
-- only the spans that met it.
SELECT c.trace_id, c.span_id, c.parent_span_id, c.service_name, c.name, c.kind, c.start_time, c.end_time,
       c.duration_nano, c.has_links, c.parent_is_remote, c.host, c.process,
       p.name AS parent_name, p.kind AS parent_kind, p.start_time AS parent_start_time,
       p.end_time AS parent_end_time, p.duration_nano AS parent_duration_nano, p.host AS parent_host,
       p.process AS parent_process
FROM children_outside_parent_ids x
JOIN span_processes c
  ON c.trace_id = x.trace_id AND c.span_id = x.span_id AND c.parent_span_id = x.parent_span_id
 AND c.kind = x.kind AND c.start_time = x.start_time AND c.end_time = x.end_time
JOIN span_processes p
  ON p.trace_id = x.trace_id AND p.span_id = x.parent_span_id AND p.kind = x.parent_kind
 AND p.start_time = x.parent_start_time AND p.end_time = x.parent_end_time
 AND p.duration_nano = x.parent_duration_nano
