-- materialize
-- (links are few: unnested once here for `child_of_links` and `calls_without_callee`, which each
-- filtered and unnested every span's list before; on 10M spans the three views' steps took 0.85 s
-- against 1.15 s, session 29. Not filtered on `NOT empty(...)` first: `unnest` gives no row for an
-- empty list anyway, and the filter copied the lists kept before the unnest copied them again.)
-- One row per link of every span: the linking span's ids, kind and service, and the linked
-- span's ids and OpenTracing reference type (`opentracing.ref_type`, set by Jaeger and
-- OpenTracing bridges: `child_of` or `follows_from`). Read from `linked_spans`, the three values
-- of each link that ingest keeps apart from `links` (whose attribute maps made decoding `links`
-- cost as much as every other column the checks read; 0.5 s of the copy of 10M spans).
SELECT trace_id, span_id, parent_span_id, kind, service_name,
       link['trace_id'] AS link_trace_id, link['span_id'] AS link_span_id, link['ref_type'] AS ref_type
FROM (SELECT trace_id, span_id, parent_span_id, kind, service_name, unnest(linked_spans) AS link FROM spans)
