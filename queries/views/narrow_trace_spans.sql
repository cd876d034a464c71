-- materialize
-- Spans of 64-bit trace ids (the high half zero): few, so that `broken_b3` looks for their 128-bit
-- forms among all spans with a small hash table.
SELECT trace_id, trace_id_low, span_id, service_name, name, start_time FROM spans
-- The high 64 bits all zero: compared as bytes, not as hex text (a tenth of the time).
WHERE trace_id < arrow_cast(X'00000000000000010000000000000000', 'FixedSizeBinary(16)')
