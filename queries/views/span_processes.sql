-- The host and the process of each span, as Jaeger identifies hosts: `host.id`, else `host.ip`
-- (Zipkin endpoints and Jaeger's `ip` tag import as it), else `host.name`.
-- The process is `service.instance.id`, else host and service.
SELECT trace_id, span_id, parent_span_id, name, kind, service_name, start_time, end_time, duration_nano,
       NOT empty(linked_spans) AS has_links, parent_is_remote, host,
       coalesce(service_instance_id, host || '/' || service_name) AS process
FROM (SELECT *, coalesce(host_id, host_ip, host_name) AS host FROM spans) s
WHERE trace_id IS NOT NULL
