/* check
id = "broken_b3"
title = "B3 propagation headers that disagree with the trace"
severity = "error"
is_break = true
meaning = "The B3 headers recorded on a span (`b3`, `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-ParentSpanId`, `X-B3-Sampled`, `X-B3-Flags`) do not match what the span became: the span was put in another trace, under another parent, or started a new trace although it received B3 context; or the headers themselves are malformed, invalid, or contradict each other; or one trace id arrived in its 64-bit and 128-bit forms and the trace split in two."
causes = [
  "Propagator mismatch: the caller sends B3 and the callee extracts only W3C `traceparent`, so the headers are received (and recorded) but ignored.",
  "Header lookup with the wrong case in a case-sensitive carrier (Go map, Kafka headers): `X-B3-Traceid` is looked up but `x-b3-traceid` was written.",
  "A hand-written propagator or proxy that rewrites ids: truncates a 128-bit trace id to 64 bits, writes upper-case hex, sends all-zero ids, or drops `X-B3-ParentSpanId`.",
  "Mixed 64-bit and 128-bit trace ids (old Zipkin/Brave clients with `traceId128Bit=false` next to OpenTelemetry): Jaeger and Tempo then show one request as two traces.",
  "Sampling decided again downstream (a non parent-based sampler), so `X-B3-Sampled: 0` and `1` meet in one trace, or a debug flag comes with sampled 0.",
]
fix = "Register the B3 propagator on every service that talks to B3 callers (`b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader|b3.B3SingleHeader))` next to `propagation.TraceContext{}`), use lower-case header keys in custom carriers, send 128-bit trace ids everywhere (`traceId128Bit=true` in Brave), and use a parent-based sampler so the decision travels with the trace."
*/
WITH judged AS (
  SELECT r.*,
         b3_trace_id IS NOT NULL AND id_problem(b3_trace_id, 'trace') IS NULL AS trace_valid,
         b3_span_id IS NOT NULL AND id_problem(b3_span_id, 'span') IS NULL AS span_valid,
         CASE WHEN b3_sampled IN ('1', 'true', 'd') OR header_x_b3_flags = '1' THEN 1
              WHEN b3_sampled IN ('0', 'false') THEN 0 END AS sampled
  FROM b3_received r
),
trace_sampling AS (
  SELECT trace_id, max(sampled) AS any_sampled, min(sampled) AS any_unsampled,
         min(CASE WHEN sampled = 1 THEN span_id END) AS sampled_span_id
  FROM judged WHERE sampled IS NOT NULL GROUP BY trace_id
),
-- A 64-bit trace id whose 128-bit form (same low half) is in the data too: one trace split in two.
split_traces AS (
  SELECT DISTINCT n.trace_id, s.trace_id AS wide_trace_id
  FROM (SELECT DISTINCT trace_id, trace_id_low FROM narrow_trace_spans) n
  JOIN spans s ON s.trace_id_low = n.trace_id_low AND s.trace_id <> n.trace_id
),
first_spans AS (
  SELECT trace_id, span_id, service_name, name, start_time,
         row_number() OVER (PARTITION BY trace_id ORDER BY start_time, span_id) AS position
  FROM narrow_trace_spans
),
problems AS (
  SELECT trace_id, span_id, service_name, name, start_time, 1 AS rank,
         'malformed b3 header ''' || header_b3 || ''': ' || b3_part(header_b3, 'problem') AS reason,
         NULL AS related_trace_id, NULL AS related_span_id
  FROM judged WHERE header_b3 IS NOT NULL AND b3_part(header_b3, 'problem') IS NOT NULL
  UNION ALL
  SELECT trace_id, span_id, service_name, name, start_time, 2 AS rank,
         concat_ws(', ',
           'X-B3-TraceId ' || header_x_b3_traceid || ': ' || id_problem(header_x_b3_traceid, 'trace'),
           'X-B3-SpanId ' || header_x_b3_spanid || ': ' || id_problem(header_x_b3_spanid, 'span'),
           'X-B3-ParentSpanId ' || header_x_b3_parentspanid || ': ' || id_problem(header_x_b3_parentspanid, 'span'),
           CASE WHEN lower(header_x_b3_sampled) NOT IN ('0', '1', 'true', 'false')
                THEN 'X-B3-Sampled ' || header_x_b3_sampled || ': expected 0 or 1' END,
           CASE WHEN header_x_b3_flags NOT IN ('0', '1') THEN 'X-B3-Flags ' || header_x_b3_flags || ': expected 1' END
         ) AS reason,
         NULL AS related_trace_id, NULL AS related_span_id
  FROM judged
  WHERE id_problem(header_x_b3_traceid, 'trace') IS NOT NULL OR id_problem(header_x_b3_spanid, 'span') IS NOT NULL
     OR id_problem(header_x_b3_parentspanid, 'span') IS NOT NULL
     OR lower(header_x_b3_sampled) NOT IN ('0', '1', 'true', 'false') OR header_x_b3_flags NOT IN ('0', '1')
  UNION ALL
  SELECT trace_id, span_id, service_name, name, start_time, 3 AS rank,
         'B3 context received but not extracted: the span started trace ' || hex_id(trace_id) ||
           ' instead of continuing ' || lpad(lower(b3_trace_id), 32, '0') || ' under ' || lower(b3_span_id) AS reason,
         NULL AS related_trace_id, NULL AS related_span_id
  FROM judged WHERE parent_span_id IS NULL AND trace_valid AND span_valid
  UNION ALL
  SELECT trace_id, span_id, service_name, name, start_time, 4 AS rank,
         'received trace id ' || b3_trace_id || ' but the span is in trace ' || hex_id(trace_id) AS reason,
         NULL AS related_trace_id, NULL AS related_span_id
  FROM judged WHERE parent_span_id IS NOT NULL AND trace_valid AND lpad(lower(b3_trace_id), 32, '0') <> hex_id(trace_id)
  UNION ALL
  SELECT trace_id, span_id, service_name, name, start_time, 5 AS rank,
         'parent ' || hex_id(parent_span_id) || ' is neither the received span id ' || lower(b3_span_id) ||
           ' (OpenTelemetry) nor the span''s own id (Zipkin shared span)' AS reason,
         NULL AS related_trace_id, NULL AS related_span_id
  FROM judged
  WHERE parent_span_id IS NOT NULL AND trace_valid AND span_valid AND lpad(lower(b3_trace_id), 32, '0') = hex_id(trace_id)
    AND hex_id(parent_span_id) <> lower(b3_span_id) AND hex_id(span_id) <> lower(b3_span_id)
  UNION ALL
  SELECT trace_id, span_id, service_name, name, start_time, 6 AS rank,
         'X-B3-Flags: 1 (debug) with sampled ' || b3_sampled || ': debug implies sampled' AS reason,
         NULL AS related_trace_id, NULL AS related_span_id
  FROM judged WHERE header_x_b3_flags = '1' AND b3_sampled IN ('0', 'false')
  UNION ALL
  SELECT j.trace_id, j.span_id, j.service_name, j.name, j.start_time, 7 AS rank,
         'received sampled=0 while span ' || hex_id(t.sampled_span_id) || ' of this trace received sampled=1' AS reason,
         NULL AS related_trace_id, t.sampled_span_id AS related_span_id
  FROM judged j JOIN trace_sampling t ON t.trace_id = j.trace_id
  WHERE j.sampled = 0 AND t.any_sampled = 1
  UNION ALL
  SELECT f.trace_id, f.span_id, f.service_name, f.name, f.start_time, 8 AS rank,
         'trace id is the 64-bit form of trace ' || hex_id(x.wide_trace_id) || ': one trace split in two' AS reason,
         x.wide_trace_id AS related_trace_id, NULL AS related_span_id
  FROM split_traces x
  JOIN first_spans f ON f.trace_id = x.trace_id AND f.position = 1
)
-- The problems carry the columns of their span, and are gathered per span: a join back to all
-- spans was planned with every span in its hash table.
SELECT trace_id, span_id, service_name AS service, name AS span_name, start_time AS time,
       explanation, related_trace_id, related_span_id
FROM (
  SELECT trace_id, span_id, service_name, name, start_time,
         concat_ws('; ', max(CASE WHEN rank = 1 THEN reason END), max(CASE WHEN rank = 2 THEN reason END),
                   max(CASE WHEN rank = 3 THEN reason END), max(CASE WHEN rank = 4 THEN reason END),
                   max(CASE WHEN rank = 5 THEN reason END), max(CASE WHEN rank = 6 THEN reason END),
                   max(CASE WHEN rank = 7 THEN reason END), min(CASE WHEN rank = 8 THEN reason END)) AS explanation,
         min(related_trace_id) AS related_trace_id, min(related_span_id) AS related_span_id
  FROM problems
  GROUP BY trace_id, span_id, service_name, name, start_time
) p
