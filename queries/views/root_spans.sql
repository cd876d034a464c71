-- materialize
-- (2.7M of 10M spans: `missing_parent` reads them four times, to count them per trace, to find
-- those with evidence, and to fetch those)
-- The roots: spans without a parent id that no `child_of` link (nor a span of the same id with a
-- parent) makes a child. Such relations are few: a span with a parent id whose id is used more
-- than once (`repeated_span_ids`), or a `child_of` link. Only they are looked up, not every span's
-- parents.
WITH parented_ids AS (
  SELECT s.trace_id AS parented_trace_id, s.span_id AS parented_span_id
  FROM repeated_span_ids d JOIN spans s ON s.span_id = d.span_id
  WHERE s.trace_id IS NOT NULL AND s.parent_span_id IS NOT NULL AND s.parent_span_id <> 0
  UNION ALL
  SELECT trace_id, span_id FROM child_of_links
)
-- (The ids of `parented_ids` have names of their own: with both sides' `span_id`, DataFusion 55's
-- physical filter pushdown took the one in `c.span_id IS NULL` by name for the roots' own, below
-- the join, and found no root at all; apache/datafusion#21246, #25296.)
SELECT r.trace_id, r.span_id, r.service_name, r.name, r.kind, r.start_time, r.gts_global_tx_id, r.db_system,
       r.peer_service, r.server_address, r.rpc_system, r.messaging_system, r.header_traceparent, r.header_b3,
       r.header_x_b3_traceid, r.header_x_b3_spanid
FROM parented_ids c
RIGHT JOIN spans r ON c.parented_trace_id = r.trace_id AND c.parented_span_id = r.span_id
WHERE r.parent_span_id IS NULL AND r.trace_id IS NOT NULL AND c.parented_span_id IS NULL
