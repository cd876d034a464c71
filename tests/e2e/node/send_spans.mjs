// Sends spans to tracegap with the OpenTelemetry JS SDK's OTLP/HTTP exporter (JSON encoding),
// then prints what the SDK recorded, as JSON, for the test to compare with the Parquet files.
// Usage: node send_spans.mjs http://127.0.0.1:4318
import * as api from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

const endpoint = process.argv[2];
const memory = new InMemorySpanExporter();
const exporter = new OTLPTraceExporter({ url: `${endpoint}/v1/traces` });
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'node-service', 'host.name': 'node-host' }),
  spanProcessors: [new SimpleSpanProcessor(memory), new BatchSpanProcessor(exporter)],
});
const tracer = provider.getTracer('node.scope', '4.5.6');

const root = tracer.startSpan('GET /cart', {
  kind: api.SpanKind.SERVER,
  attributes: {
    string: 'node text', bool: false, int: 42, double: 2.5,
    strings: ['x', 'y'], ints: [1, 2, 3], 'http.request.header.b3': ['80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1'],
  },
});
root.addEvent('retry', { attempt: 3, reason: 'timeout' });
const rootContext = api.trace.setSpan(api.ROOT_CONTEXT, root);
const child = tracer.startSpan('redis GET', { kind: api.SpanKind.CLIENT, attributes: { 'db.system': 'redis' } }, rootContext);
child.setStatus({ code: api.SpanStatusCode.ERROR, message: 'timeout' });
child.end();
const consumer = tracer.startSpan('process', {
  kind: api.SpanKind.CONSUMER,
  links: [{ context: root.spanContext(), attributes: { 'link.kind': 'follows' } }],
});
consumer.end();
root.end();
for (let i = 0; i < 50; i++) {
  tracer.startSpan(`bulk-${i}`, { attributes: { index: i } }).end();
}
await provider.forceFlush();
const finished = memory.getFinishedSpans();
await provider.shutdown();

const nanos = (hrtime) => (BigInt(hrtime[0]) * 1000000000n + BigInt(hrtime[1])).toString();
const recorded = finished.map((span) => ({
  traceId: span.spanContext().traceId,
  spanId: span.spanContext().spanId,
  parentSpanId: span.parentSpanContext ? span.parentSpanContext.spanId : '',
  name: span.name,
  kind: api.SpanKind[span.kind],
  startNs: nanos(span.startTime),
  endNs: nanos(span.endTime),
  attributes: span.attributes,
  events: span.events.map((event) => ({ name: event.name, timeNs: nanos(event.time), attributes: event.attributes || {} })),
  links: span.links.map((link) => ({ traceId: link.context.traceId, spanId: link.context.spanId, attributes: link.attributes || {} })),
  status: { code: ['UNSET', 'OK', 'ERROR'][span.status.code], message: span.status.message || '' },
}));
process.stdout.write(JSON.stringify(recorded));
