-- materialize
-- (1.4% of the spans of the generated corpus: `premature_end` and `clock_skew` both judge these
-- pairs)
-- The children whose time lies outside their parent's (`children_outside_parent_ids`), with
-- their and their parent's names, hosts and processes (as `span_processes` defines them). The
-- spans are joined on every value the condition read, so a span id used twice in a trace pairs
-- only the spans that met it.
-- Child and parent are each fetched by a join of the pairs with the spans, then joined on the
-- pair. Each of those joins hashes the small table of pairs and reads the spans where they are;
-- a join with another join's result has no size estimate, and the planner repartitioned every
-- span to meet it.
WITH child AS (
  SELECT x.*, c.service_name, c.name, c.duration_nano, c.has_links, c.parent_is_remote, c.host,
         c.process
  FROM children_outside_parent_ids x
  JOIN span_processes c
    ON c.trace_id = x.trace_id AND c.span_id = x.span_id AND c.parent_span_id = x.parent_span_id
   AND c.kind = x.kind AND c.start_time = x.start_time AND c.end_time = x.end_time
),
parent AS (
  SELECT x.*, p.name AS parent_name, p.host AS parent_host, p.process AS parent_process
  FROM children_outside_parent_ids x
  JOIN span_processes p
    ON p.trace_id = x.trace_id AND p.span_id = x.parent_span_id AND p.kind = x.parent_kind
   AND p.start_time = x.parent_start_time AND p.end_time = x.parent_end_time
   AND p.duration_nano = x.parent_duration_nano
)
SELECT c.trace_id, c.span_id, c.parent_span_id, c.service_name, c.name, c.kind, c.start_time, c.end_time,
       c.duration_nano, c.has_links, c.parent_is_remote, c.host, c.process,
       p.parent_name, p.parent_kind, p.parent_start_time, p.parent_end_time, p.parent_duration_nano,
       p.parent_host, p.parent_process
FROM child c
JOIN parent p
  ON p.trace_id = c.trace_id AND p.span_id = c.span_id AND p.parent_span_id = c.parent_span_id
 AND p.kind = c.kind AND p.start_time = c.start_time AND p.end_time = c.end_time
 AND p.parent_kind = c.parent_kind AND p.parent_start_time = c.parent_start_time
 AND p.parent_end_time = c.parent_end_time AND p.parent_duration_nano = c.parent_duration_nano
