-- materialize
-- (about 1% of the spans' ids: as a table of known size, the joins with it hash it once and read
-- the spans where they are; as a subquery its size was unknown, and every span was repartitioned
-- by id to meet it)
-- The span ids used by more than one span, whatever their traces. Span ids are random 64-bit
-- numbers: grouping by the id alone (a plain integer key, fast) leaves few, and only their spans
-- need to be grouped by trace.
SELECT span_id FROM spans WHERE span_id IS NOT NULL GROUP BY span_id HAVING count(*) > 1
