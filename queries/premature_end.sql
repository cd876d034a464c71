/* check
id = "premature_end"
title = "Parent ended before its synchronous child"
severity = "warning"
is_break = true
meaning = "In one process, a parent span ended before a child ended, or a child started after its parent had ended. For synchronous work this means the parent's context was used after the parent returned: the child's time is not accounted for in the parent, and the trace misrepresents the call chain. Async work (PRODUCER/CONSUMER, linked spans) is excluded, and across hosts the same pattern is clock skew."
causes = [
  "A goroutine started with the request ctx keeps working after the handler returned (`go process(ctx)` without waiting): either it is async and should be a linked span, or the handler should wait for it.",
  "`defer span.End()` placed in the wrong function, or `span.End()` called before the work it measures.",
  "A context cancelled on return (`context.WithTimeout` + `defer cancel()`) still used by a background task.",
]
fix = "For fire-and-forget work, start the background span with a link to the request span (`trace.WithLinks`) instead of as its child, or detach with `context.WithoutCancel`. For synchronous work, end the parent only after waiting for its children (`sync.WaitGroup`, errgroup)."
*/
SELECT trace_id, span_id, service_name AS service, name AS span_name, start_time AS time,
       CASE WHEN start_time > parent_end_time
            THEN 'started ' || CAST((CAST(start_time AS BIGINT) - CAST(parent_end_time AS BIGINT)) / 1000 AS VARCHAR) ||
                 ' µs after its parent ' || parent_name || ' ended'
            ELSE 'ended ' || CAST((CAST(end_time AS BIGINT) - CAST(parent_end_time AS BIGINT)) / 1000 AS VARCHAR) ||
                 ' µs after its parent ' || parent_name || ' ended'
       END || ' (same process ' || process || ')' AS explanation,
       NULL AS related_trace_id, parent_span_id AS related_span_id
FROM children_outside_parent
CROSS JOIN settings
-- A SERVER child, or one whose parent is marked remote, was called over the network (a browser,
-- an uninstrumented client): not synchronous work inside the parent. (The view leaves out
-- messaging, and parents without a duration.)
WHERE process = parent_process AND kind <> 'SERVER'
  AND NOT coalesce(parent_is_remote, false)
  AND NOT has_links
  AND (CAST(end_time AS BIGINT) > CAST(parent_end_time AS BIGINT) + settings.premature_end_tolerance_nano
       OR CAST(start_time AS BIGINT) > CAST(parent_end_time AS BIGINT) + settings.premature_end_tolerance_nano)
