-- materialize
-- (a handful of rows: kept in memory, the joins of `call_destinations` look them up from a
-- table known to be small)
-- The instrumented services: those with spans in the data. Only they can be the callee of a call.
SELECT DISTINCT service_name FROM spans WHERE service_name IS NOT NULL
