-- The traces that have no root (no span without a parent), with their size.
SELECT trace_id, span_count FROM traces_without_one_root WHERE root_count = 0
