-- materialize
-- (a few rows, kept as a table of known size: `children_outside_parent` joins it with the spans)
-- The children whose time lies outside their parent's (`child_parent_matches`), one row per child
-- and parent with every value the condition read, so that a child and a parent that match a row
-- meet it. `children_outside_parent` adds names, hosts and processes to these few.
SELECT DISTINCT trace_id, span_id, parent_id AS parent_span_id, kind, start_time, end_time,
       parent_kind, parent_start_time, parent_end_time, parent_duration_nano
FROM child_parent_matches
WHERE parent_found
