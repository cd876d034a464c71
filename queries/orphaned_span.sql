/* check
id = "orphaned_span"
title = "Orphaned span"
severity = "error"
is_break = true
meaning = "The span names a parent span id (or a `child_of` link), but no span with that id is in its trace: the parent was never received, or was exported under another trace id. Backends show the span under a stand-in 'missing parent' node and flag the trace as incomplete."
causes = [
  "The parent's service does not export (sampling decision not propagated, exporter misconfigured or failing), or exported to another backend.",
  "The parent span was never ended (a Go `span.End()` missing on an error path), so it was never exported.",
  "A proxy or middleware forwarded the incoming traceparent/B3 headers without creating or exporting its own span.",
  "The parent was dropped: exporter queue full, batch rejected, collector tail sampling kept the child but not the parent.",
]
fix = "Find the service that owns the missing parent id (the related span) and make sure it exports every span it starts: end spans with `defer span.End()`, propagate the sampling decision (parent-based sampler), and keep proxies either transparent (forward headers without spans) or fully instrumented."
*/
-- The orphans are the view `orphaned_spans` (computed once: this query reads them twice).
WITH trace_sizes AS (
  SELECT s.trace_id, count(*) AS span_count
  FROM (SELECT DISTINCT trace_id FROM orphaned_spans) o JOIN spans s ON s.trace_id = o.trace_id
  GROUP BY s.trace_id
)
SELECT s.trace_id, s.span_id, s.service_name AS service, s.name AS span_name, s.start_time AS time,
       CASE WHEN u.missing_parent IS NOT NULL
            THEN 'parent ' || hex_id(u.missing_parent) || ' not in trace of ' || CAST(t.span_count AS VARCHAR) || ' spans'
            ELSE 'child_of link to ' || hex_id(u.missing_link) || ' not in trace of ' || CAST(t.span_count AS VARCHAR) || ' spans'
       END AS explanation,
       NULL AS related_trace_id, coalesce(u.missing_parent, u.missing_link) AS related_span_id
FROM orphaned_spans u
JOIN spans s ON s.trace_id = u.trace_id AND s.span_id = u.span_id
JOIN trace_sizes t ON t.trace_id = s.trace_id
