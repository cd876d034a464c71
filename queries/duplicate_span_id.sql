/* check
id = "duplicate_span_id"
title = "Duplicate span id in a trace"
severity = "error"
is_break = true
meaning = "Several spans of one trace share a span id, so their children cannot tell which is their parent. A B3 client and server sharing one id (Zipkin's `shared` spans: one CLIENT and one SERVER) is legitimate and not reported."
causes = [
  "A span exported twice (retry after a timeout that had in fact succeeded, two exporters on one pipeline).",
  "A non-random id generator: a seeded or time-based generator shared across goroutines or processes.",
  "A propagator that reuses the incoming span id for the new server span while the client also keeps it, in a non-Zipkin setup.",
]
fix = "Use the SDK's random id generator; make exports idempotent or deduplicate in the collector; with B3, let only Zipkin-style instrumentation share ids, and mark such spans SERVER and CLIENT."
*/
-- Only the spans whose id is used more than once (`repeated_span_ids`) are grouped by trace.
WITH duplicates AS (
  SELECT s.trace_id, s.span_id, count(*) AS copies, min(s.start_time) AS first_start
  FROM spans s JOIN repeated_span_ids r ON r.span_id = s.span_id
  WHERE s.trace_id IS NOT NULL
  GROUP BY s.trace_id, s.span_id
  HAVING count(*) > 1
     AND NOT (count(*) = 2 AND min(s.kind) = 'CLIENT' AND max(s.kind) = 'SERVER')
)
SELECT d.trace_id, d.span_id, min(s.service_name) AS service, min(s.name) AS span_name, d.first_start AS time,
       'span id used by ' || CAST(d.copies AS VARCHAR) || ' spans in this trace (' ||
         string_agg(coalesce(s.service_name, '?') || ' ' || s.kind || ' ' || s.name, ', ' ORDER BY s.start_time) || ')' AS explanation,
       NULL AS related_trace_id, NULL AS related_span_id
FROM duplicates d JOIN spans s ON s.trace_id = d.trace_id AND s.span_id = d.span_id
GROUP BY d.trace_id, d.span_id, d.copies, d.first_start
