-- materialize
-- (one span in 65 on the generated corpus: `broken_b3` reads these spans in eight places; kept in
-- memory, its header parsing runs over them, not over every span eight times)
-- The spans that recorded B3 headers, with the single `b3` header taken apart: its parts win over
-- the multi-header form when it is well-formed.
SELECT trace_id, span_id, parent_span_id, service_name, name, start_time, header_b3, header_x_b3_traceid,
       header_x_b3_spanid, header_x_b3_parentspanid, header_x_b3_sampled, header_x_b3_flags,
       CASE WHEN header_b3 IS NOT NULL AND b3_part(header_b3, 'problem') IS NULL AND b3_part(header_b3, 'trace_id') IS NOT NULL
            THEN b3_part(header_b3, 'trace_id') ELSE header_x_b3_traceid END AS b3_trace_id,
       CASE WHEN header_b3 IS NOT NULL AND b3_part(header_b3, 'problem') IS NULL AND b3_part(header_b3, 'span_id') IS NOT NULL
            THEN b3_part(header_b3, 'span_id') ELSE header_x_b3_spanid END AS b3_span_id,
       CASE WHEN header_b3 IS NOT NULL AND b3_part(header_b3, 'problem') IS NULL AND b3_part(header_b3, 'sampled') IS NOT NULL
            THEN b3_part(header_b3, 'sampled') ELSE lower(header_x_b3_sampled) END AS b3_sampled
FROM spans
WHERE trace_id IS NOT NULL
  AND (header_b3 IS NOT NULL OR header_x_b3_traceid IS NOT NULL OR header_x_b3_spanid IS NOT NULL
       OR header_x_b3_parentspanid IS NOT NULL OR header_x_b3_sampled IS NOT NULL OR header_x_b3_flags IS NOT NULL)
