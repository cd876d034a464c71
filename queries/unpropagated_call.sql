/* check
id = "unpropagated_call"
title = "Call whose trace context did not reach the callee"
severity = "error"
is_break = true
meaning = "A CLIENT or PRODUCER span calls a service that is itself instrumented (it has spans in the data), but that service's SERVER or CONSUMER side of the call is not in the caller's trace. The context was not sent, or not read: the callee's work is in another trace (named, when the callee started a root during the call) or lost."
causes = [
  "The outgoing request was built without the context: Go `http.NewRequest` instead of `http.NewRequestWithContext(ctx, ...)`, a client without the otelhttp transport, or a gRPC client without the otelgrpc stats handler, so no header is injected.",
  "Propagator mismatch: the caller injects B3 and the callee only extracts W3C `traceparent` (or the reverse); both sides must register the same propagators (a composite W3C + B3 propagator is the usual fix).",
  "A gRPC server interceptor that builds a new context (`context.Background()`, or `metadata.NewIncomingContext` on a fresh context) and calls `handler(newCtx, req)` without the extracted span context.",
  "A proxy, API gateway or service mesh in between that strips or rewrites the propagation headers.",
  "Header lookup with the wrong case in a case-sensitive carrier (a map or message headers): `X-B3-Traceid` versus `x-b3-traceid`.",
]
fix = "On the caller, make the call with the request's ctx through an instrumented client (`otelhttp.NewTransport`, `otelgrpc.NewClientHandler`). On both sides, register the same propagators (`otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, b3.New()))`). Configure proxies to forward `traceparent`, `tracestate` and the B3 headers."
*/
SELECT trace_id, span_id, service_name AS service, name AS span_name, start_time AS time,
       'call to ' || callee || ' has no ' || callee || ' SERVER/CONSUMER span in this trace' ||
         CASE WHEN root_span_id IS NOT NULL
              THEN '; ' || callee || ' started trace ' || hex_id(root_trace_id) || ' (root ' || hex_id(root_span_id) ||
                   ' ''' || root_name || ''') during the call'
              ELSE '' END AS explanation,
       root_trace_id AS related_trace_id, root_span_id AS related_span_id
FROM unpropagated_calls
