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
SELECT c.trace_id, c.span_id, c.service_name AS service, c.name AS span_name, c.start_time AS time,
       CASE WHEN c.start_time > p.end_time
            THEN 'started ' || CAST((CAST(c.start_time AS BIGINT) - CAST(p.end_time AS BIGINT)) / 1000 AS VARCHAR) ||
                 ' µs after its parent ' || p.name || ' ended'
            ELSE 'ended ' || CAST((CAST(c.end_time AS BIGINT) - CAST(p.end_time AS BIGINT)) / 1000 AS VARCHAR) ||
                 ' µs after its parent ' || p.name || ' ended'
       END || ' (same process ' || c.process || ')' AS explanation,
       NULL AS related_trace_id, p.span_id AS related_span_id
FROM span_processes c
JOIN span_processes p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id AND p.process = c.process
CROSS JOIN settings
-- A SERVER or CONSUMER child, or one whose parent is marked remote, was called over the network
-- (a browser, an uninstrumented client): not synchronous work inside the parent.
WHERE c.kind NOT IN ('PRODUCER', 'CONSUMER', 'SERVER') AND p.kind NOT IN ('PRODUCER')
  AND NOT coalesce(c.parent_is_remote, false)
  -- A parent without a duration (Zipkin's incomplete spans) has no known end.
  AND p.duration_nano <> 0
  AND NOT c.has_links
  AND (CAST(c.end_time AS BIGINT) > CAST(p.end_time AS BIGINT) + settings.premature_end_tolerance_nano
       OR CAST(c.start_time AS BIGINT) > CAST(p.end_time AS BIGINT) + settings.premature_end_tolerance_nano)
