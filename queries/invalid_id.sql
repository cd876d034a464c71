/* check
id = "invalid_id"
title = "Invalid trace or span id"
severity = "error"
is_break = true
meaning = "A trace, span or parent span id is all zeros, empty, or of a length no propagation format produces (trace ids are 16 bytes, or 8 in 64-bit B3; span ids 8 bytes). W3C and B3 receivers must ignore such ids, so the trace breaks at this span."
causes = [
  "A span created from an empty `SpanContext` (Go: `trace.SpanContext{}` or a context without a span), then exported anyway.",
  "A hand-written propagator or header parser that fills ids with zeros when the header is missing or malformed.",
  "Ids truncated or padded wrongly when converting between formats (hex vs base64 in JSON, 64- vs 128-bit B3).",
]
fix = "Generate ids only with the SDK's id generator and never export a span whose context is invalid (`span.SpanContext().IsValid()` in Go). Fix the header parser to reject malformed ids and start a new trace instead of inventing zero ids."
*/
SELECT trace_id, span_id, service_name AS service, name AS span_name, start_time AS time,
       CASE
         WHEN (length(hex_id(trace_id_raw)) / 2) = 0 THEN 'empty trace id'
         WHEN (length(hex_id(trace_id_raw)) / 2) NOT IN (8, 16)
           THEN 'trace id ' || hex_id(trace_id_raw) || ' has ' || CAST((length(hex_id(trace_id_raw)) / 2) AS VARCHAR) || ' bytes, not 16'
         WHEN trim(hex_id(trace_id_raw), '0') = '' THEN 'trace id is all zeros'
         WHEN (length(hex_id(span_id_raw)) / 2) <> 8
           THEN 'span id ' || hex_id(span_id_raw) || ' has ' || CAST((length(hex_id(span_id_raw)) / 2) AS VARCHAR) || ' bytes, not 8'
         WHEN trim(hex_id(span_id_raw), '0') = '' THEN 'span id is all zeros'
         WHEN (length(hex_id(parent_span_id_raw)) / 2) NOT IN (0, 8)
           THEN 'parent span id ' || hex_id(parent_span_id_raw) || ' has ' || CAST((length(hex_id(parent_span_id_raw)) / 2) AS VARCHAR) || ' bytes, not 8'
         ELSE 'parent span id is all zeros (a root to Zipkin, a child to OTLP backends)'
       END AS explanation,
       NULL AS related_trace_id, NULL AS related_span_id
FROM spans
WHERE (length(hex_id(trace_id_raw)) / 2) NOT IN (8, 16)
   OR trim(hex_id(trace_id_raw), '0') = ''
   OR (length(hex_id(span_id_raw)) / 2) <> 8
   OR trim(hex_id(span_id_raw), '0') = ''
   OR (length(hex_id(parent_span_id_raw)) / 2) NOT IN (0, 8)
   OR ((length(hex_id(parent_span_id_raw)) / 2) = 8 AND parent_span_id = 0)
