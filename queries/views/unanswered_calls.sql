-- materialize
-- (one row per unanswered call: small; read three times by `unpropagated_calls`, which would
-- otherwise compute it three times, since DataFusion inlines each use of a CTE)
-- The unanswered calls: the calls without their callee side (`calls_without_callee`), except
-- those during which an orphan of the callee started in the same trace. The context arrived there
-- through a hop that was lost: that is `orphaned_span`'s finding, not a dropped call.
--
-- Only the callee's spans under such calls are looked at, so no join over all spans is needed.
WITH callee_spans AS (
  SELECT c.trace_id, c.span_id AS call_span_id, c.callee, c.start_time, c.end_time, s.parent_span_id
  FROM calls_without_callee c
  JOIN spans s ON s.trace_id = c.trace_id AND s.service_name = c.callee
   AND s.start_time >= c.start_time AND s.start_time <= c.end_time
  WHERE s.parent_span_id IS NOT NULL
),
-- (A join and an anti join rather than a NOT EXISTS subquery, so that the plan also runs on a
-- cluster.)
answered_by_orphan AS (
  SELECT DISTINCT o.trace_id, o.call_span_id, o.callee, o.start_time, o.end_time FROM callee_spans o
  LEFT JOIN spans parent ON parent.trace_id = o.trace_id AND parent.span_id = o.parent_span_id
  WHERE parent.span_id IS NULL
)
SELECT c.* FROM calls_without_callee c
LEFT JOIN answered_by_orphan a
  ON a.trace_id = c.trace_id AND a.call_span_id = c.span_id AND a.callee = c.callee
 AND a.start_time = c.start_time AND a.end_time = c.end_time
WHERE a.call_span_id IS NULL
