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
-- The filter compares lengths and the normalised ids: every span passes through it, and only the
-- few it keeps are written out in hex for the explanation. A raw id is null when the id came in
-- its normal length (16 bytes, 8 for a span); files of schema version 3 hold every raw id, which
-- reads the same here.
SELECT trace_id, span_id, service_name AS service, name AS span_name, start_time AS time,
       CASE
         WHEN byte_length(trace_id_raw) = 0 THEN 'empty trace id'
         WHEN byte_length(trace_id_raw) NOT IN (8, 16)
           THEN 'trace id ' || hex_id(trace_id_raw) || ' has ' || CAST(byte_length(trace_id_raw) AS VARCHAR) || ' bytes, not 16'
         WHEN trace_id = arrow_cast(X'00000000000000000000000000000000', 'FixedSizeBinary(16)') THEN 'trace id is all zeros'
         WHEN byte_length(span_id_raw) <> 8
           THEN 'span id ' || hex_id(span_id_raw) || ' has ' || CAST(byte_length(span_id_raw) AS VARCHAR) || ' bytes, not 8'
         WHEN span_id = 0 THEN 'span id is all zeros'
         WHEN byte_length(parent_span_id_raw) NOT IN (0, 8)
           THEN 'parent span id ' || hex_id(parent_span_id_raw) || ' has ' || CAST(byte_length(parent_span_id_raw) AS VARCHAR) || ' bytes, not 8'
         ELSE 'parent span id is all zeros (a root to Zipkin, a child to OTLP backends)'
       END AS explanation,
       NULL AS related_trace_id, NULL AS related_span_id
FROM spans
WHERE byte_length(trace_id_raw) NOT IN (8, 16)
   OR trace_id = arrow_cast(X'00000000000000000000000000000000', 'FixedSizeBinary(16)')
   OR byte_length(span_id_raw) <> 8
   OR span_id = 0
   OR byte_length(parent_span_id_raw) NOT IN (0, 8)
   OR parent_span_id = 0
