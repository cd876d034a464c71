// tracegap dashboard and report. Renders what the JSON API (or, in a report, the embedded JSON)
// returns. Every value from spans is attacker-controlled: it only ever becomes a text node or a
// checked attribute, never markup, and links are built from our own paths only.
'use strict';
(function () {
  const reportElement = document.getElementById('tracegap-report');
  const REPORT = reportElement ? JSON.parse(reportElement.textContent) : null;
  const main = document.getElementById('main');
  const SVG = 'http://www.w3.org/2000/svg';

  // ---- building blocks -------------------------------------------------------------------

  function safeHref(value) {
    const text = String(value);
    if ((text.startsWith('/') && !text.startsWith('//')) || text.startsWith('#') || text.startsWith('?')) return text;
    return '#';
  }

  function append(element, ...children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      element.appendChild(typeof child === 'object' && child.nodeType ? child : document.createTextNode(String(child)));
    }
    return element;
  }

  function h(tag, attributes, ...children) {
    const element = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') element.className = value;
      else if (key === 'href') element.setAttribute('href', safeHref(value));
      else if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
      else if (key === 'style') Object.assign(element.style, value);
      else element.setAttribute(key, String(value));
    }
    return append(element, children);
  }

  function s(tag, attributes, ...children) {
    const element = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined) continue;
      if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
      else element.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      element.appendChild(typeof child === 'object' && child.nodeType ? child : document.createTextNode(String(child)));
    }
    return element;
  }

  function clear(element) {
    while (element.firstChild) element.removeChild(element.firstChild);
    return element;
  }

  function percent(ratio) {
    return (100 * ratio).toFixed(ratio === 1 || ratio === 0 ? 0 : 2) + '%';
  }

  function number(value) {
    return Number(value || 0).toLocaleString('en');
  }

  function time(nanos) {
    if (nanos === null || nanos === undefined || nanos === '') return '-';
    if (typeof nanos === 'string' && !/^-?\d+$/.test(nanos)) return nanos.replace('T', ' ').replace('Z', '');
    const date = new Date(Number(nanos) / 1e6);
    if (isNaN(date.getTime())) return String(nanos);
    return date.toISOString().replace('T', ' ').replace('Z', '');
  }

  function duration(nanos) {
    const value = Number(nanos);
    const magnitude = Math.abs(value);
    if (magnitude >= 1e9) return (value / 1e9).toFixed(3) + ' s';
    if (magnitude >= 1e6) return (value / 1e6).toFixed(2) + ' ms';
    if (magnitude >= 1e3) return (value / 1e3).toFixed(1) + ' µs';
    return value + ' ns';
  }

  function hue(text) {
    let hash = 0;
    for (const character of String(text)) hash = (hash * 31 + character.codePointAt(0)) >>> 0;
    return hash % 360;
  }

  function serviceColour(service) {
    return 'hsl(' + hue(service || '') + ', 55%, 52%)';
  }

  function rateClass(rate) {
    return rate >= 0.99 ? 'good' : rate >= 0.9 ? 'fair' : 'bad';
  }

  // ---- where data comes from ----------------------------------------------------------------

  const params = new URLSearchParams(location.search);

  function windowQuery() {
    const query = new URLSearchParams();
    for (const key of ['window', 'since', 'until']) if (params.get(key)) query.set(key, params.get(key));
    return query;
  }

  function withWindow(path, extra) {
    const query = windowQuery();
    for (const [key, value] of Object.entries(extra || {})) if (value !== null && value !== undefined && value !== '') query.set(key, value);
    const text = query.toString();
    return path + (text ? '?' + text : '');
  }

  async function api(path, extra, options) {
    const response = await fetch(withWindow(path, extra), Object.assign({ headers: { Accept: 'application/json' } }, options || {}));
    let body = null;
    try { body = await response.json(); } catch (error) { body = { error: 'the answer was not JSON (' + response.status + ')' }; }
    if (!response.ok) throw new Error(body && body.error ? body.error : 'HTTP ' + response.status);
    return body;
  }

  function traceLink(traceId, text) {
    if (!traceId) return '-';
    if (REPORT) {
      return REPORT.traces[traceId] ? h('a', { href: '#trace-' + traceId, class: 'id' }, text || traceId) : h('span', { class: 'id' }, text || traceId);
    }
    return h('a', { href: withWindow('/traces/' + encodeURIComponent(traceId)), class: 'id' }, text || traceId);
  }

  function showError(container, error) {
    append(clear(container), h('p', { class: 'error', role: 'alert' }, String(error.message || error)));
  }

  // ---- header ---------------------------------------------------------------------------------

  function header() {
    const nav = document.getElementById('nav');
    const controls = document.getElementById('controls');
    if (REPORT) {
      append(nav, h('span', { class: 'muted' }, 'report generated ' + time(REPORT.generated_at_nano) + ' UTC'));
      return;
    }
    const pages = [['/', 'Overview'], ['/findings', 'Findings'], ['/service-map', 'Service map'], ['/checks', 'Checks'], ['/sql', 'SQL']];
    for (const [path, label] of pages) {
      const current = location.pathname === path;
      append(nav, h('a', { href: withWindow(path), class: current ? 'current' : null }, label));
    }
    const chosen = params.get('since') || params.get('until') ? 'custom' : params.get('window') || '';
    const select = h('select', { id: 'window', 'aria-label': 'time window' },
      [['', 'default window'], ['15m', 'last 15 min'], ['1h', 'last hour'], ['24h', 'last 24 h'], ['all', 'all data'], ['custom', 'custom…']]
        .map(([value, label]) => h('option', { value: value, selected: value === chosen ? 'selected' : null }, label)));
    const since = h('input', { type: 'datetime-local', id: 'since', step: '1', 'aria-label': 'from (UTC)' });
    const until = h('input', { type: 'datetime-local', id: 'until', step: '1', 'aria-label': 'to (UTC)' });
    if (params.get('since')) since.value = params.get('since').replace(/Z$/, '').slice(0, 19);
    if (params.get('until')) until.value = params.get('until').replace(/Z$/, '').slice(0, 19);
    const custom = h('span', { class: chosen === 'custom' ? 'custom' : 'custom hidden' }, since, until,
      h('button', { type: 'button', onclick: () => {
        const next = new URLSearchParams();
        if (since.value) next.set('since', since.value + (since.value.length === 16 ? ':00' : '') + 'Z');
        if (until.value) next.set('until', until.value + (until.value.length === 16 ? ':00' : '') + 'Z');
        location.search = next.toString();
      } }, 'apply'));
    select.addEventListener('change', () => {
      if (select.value === 'custom') { custom.className = 'custom'; return; }
      const next = new URLSearchParams();
      if (select.value) next.set('window', select.value);
      location.search = next.toString();
    });
    const traceInput = h('input', { type: 'search', id: 'open-trace', placeholder: 'trace id', 'aria-label': 'open trace by id', maxlength: '32' });
    const open = h('form', { class: 'open-trace', onsubmit: (event) => {
      event.preventDefault();
      const id = traceInput.value.trim();
      if (id) location.href = withWindow('/traces/' + encodeURIComponent(id));
    } }, traceInput, h('button', { type: 'submit' }, 'open'));
    append(controls, select, custom, open);
  }

  function windowNote(info) {
    if (!info) return null;
    return h('p', { class: 'muted window-note' },
      'Window: ' + info.label + (info.since_nano ? ' (from ' + time(info.since_nano) + ')' : '') +
      ' · analysed ' + time(info.computed_at_nano) + ' UTC in ' + number(info.analysis_millis) + ' ms');
  }

  // ---- overview ------------------------------------------------------------------------------

  function card(label, value, id, tone) {
    return h('div', { class: 'card' + (tone ? ' ' + tone : '') }, h('div', { class: 'card-label' }, label), h('div', { class: 'card-value', id: id }, value));
  }

  function minuteChart(title, points, options) {
    const width = 640, height = 150, pad = 28;
    const chart = s('svg', { viewBox: '0 0 ' + width + ' ' + height, class: 'chart', role: 'img', 'aria-label': title });
    if (points.length === 0) {
      chart.appendChild(s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'axis' }, 'no data in this window'));
      return h('figure', {}, h('figcaption', {}, title), chart);
    }
    const top = options.max !== undefined ? options.max : Math.max(1, ...points.map((p) => p.value));
    const step = (width - 2 * pad) / points.length;
    chart.appendChild(s('line', { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: 'axis-line' }));
    chart.appendChild(s('text', { x: 2, y: pad, class: 'axis' }, options.format(top)));
    chart.appendChild(s('text', { x: 2, y: height - pad, class: 'axis' }, options.format(options.min || 0)));
    points.forEach((point, index) => {
      const low = options.min || 0;
      const value = Math.max(low, point.value);
      const barHeight = ((value - low) / (top - low || 1)) * (height - 2 * pad);
      const bar = s('rect', { x: pad + index * step + 1, y: height - pad - barHeight, width: Math.max(1, step - 2), height: Math.max(1, barHeight), class: 'bar ' + (options.tone ? options.tone(point) : '') },
        s('title', {}, point.label + ': ' + point.text));
      chart.appendChild(bar);
    });
    chart.appendChild(s('text', { x: pad, y: height - 8, class: 'axis' }, points[0].label));
    chart.appendChild(s('text', { x: width - pad, y: height - 8, 'text-anchor': 'end', class: 'axis' }, points[points.length - 1].label));
    return h('figure', {}, h('figcaption', {}, title), chart);
  }

  function table(headers, rows, attributes) {
    return h('table', attributes || {}, h('thead', {}, h('tr', {}, headers.map((text) => h('th', {}, text)))), h('tbody', {}, rows));
  }

  function overviewView(data) {
    const tone = data.completeness >= 0.99 ? 'good' : data.completeness >= 0.9 ? 'fair' : 'bad';
    const lastMinute = data.ingest_by_minute.length ? data.ingest_by_minute[data.ingest_by_minute.length - 1] : null;
    const rate = data.ingest_by_minute.length > 1 ? data.ingest_by_minute[data.ingest_by_minute.length - 2].spans / 60 : lastMinute ? lastMinute.spans / 60 : 0;
    const cards = h('div', { class: 'cards' },
      card('completeness', percent(data.completeness), 'completeness', tone),
      card('judged traces', number(data.judged_traces), 'judged-traces'),
      card('broken traces', number(data.broken_traces), 'broken-traces', data.broken_traces ? 'bad' : 'good'),
      card('pending traces', number(data.pending_traces), 'pending-traces'),
      card('spans in window', number(data.window_spans), 'window-spans'),
      REPORT ? null : card('ingest', number(Math.round(data.ingest_rate !== undefined ? data.ingest_rate : rate)) + ' spans/s', 'ingest-rate'));
    const completenessPoints = data.by_minute.map((row) => ({ label: row.key, value: row.completeness, text: percent(row.completeness) + ' of ' + number(row.traces) + ' traces', ratio: row.completeness }));
    // Spans written by `tracegap generate --data` carry no receive time (the epoch): left out.
    const ingestPoints = data.ingest_by_minute.filter((row) => row.minute >= '1971').map((row) => ({ label: row.minute, value: row.spans, text: number(row.spans) + ' spans' }));
    const charts = h('div', { class: 'charts' },
      minuteChart('Completeness per minute (UTC)', completenessPoints, { max: 1, min: Math.min(0.5, ...completenessPoints.map((p) => p.value)), format: percent, tone: (p) => rateClass(p.ratio) }),
      minuteChart('Spans stored per minute (UTC)', ingestPoints, { format: number }));
    const findingLink = (extra, text) => REPORT ? text : h('a', { href: withWindow('/findings', extra) }, text);
    const byCheck = table(['check', 'title', 'severity', 'findings'], data.findings_by_check.map((row) =>
      h('tr', { class: row.findings && row.is_break ? 'has-findings' : null }, h('td', {}, findingLink({ check: row.check }, row.check)), h('td', {}, row.title), h('td', {}, h('span', { class: 'severity ' + row.severity }, row.severity)), h('td', { class: 'num' }, number(row.findings)))),
    { id: 'findings-by-check' });
    const worstRows = (rows, label, link) => rows.length === 0 ? h('p', { class: 'muted' }, 'none broken') :
      table([label, 'traces', 'broken', 'complete'], rows.map((row) => h('tr', {}, h('td', {}, link(row)), h('td', { class: 'num' }, number(row.traces)), h('td', { class: 'num' }, number(row.broken)), h('td', { class: 'num ' + rateClass(row.completeness) }, percent(row.completeness)))));
    const edgeRows = data.worst_edges.length === 0 ? h('p', { class: 'muted' }, 'no dropped call') :
      table(['caller → callee', 'calls', 'dropped', 'propagated'], data.worst_edges.map((edge) => h('tr', {},
        h('td', {}, REPORT ? edge.caller + ' → ' + edge.callee : h('a', { href: withWindow('/service-map', { caller: edge.caller, callee: edge.callee }) }, edge.caller + ' → ' + edge.callee)),
        h('td', { class: 'num' }, number(edge.calls)), h('td', { class: 'num' }, number(edge.dropped)), h('td', { class: 'num ' + rateClass(edge.propagation_rate) }, percent(edge.propagation_rate)))));
    return h('section', { id: 'overview' },
      h('h1', {}, 'Trace completeness'), windowNote(data.window), cards, charts,
      h('div', { class: 'columns' },
        h('div', {}, h('h2', {}, 'Findings by check'), byCheck),
        h('div', {},
          h('h2', {}, 'Worst services'), h('div', { id: 'worst-services' }, worstRows(data.worst_services, 'service', (row) => findingLink({ service: row.key }, row.key))),
          h('h2', {}, 'Worst entry points'), h('div', { id: 'worst-entry-points' }, worstRows(data.worst_entry_points, 'entry point', (row) => row.key)),
          h('h2', {}, 'Worst edges'), h('div', { id: 'worst-edges' }, edgeRows))));
  }

  async function overviewPage() {
    try { append(clear(main), overviewView(await api('/api/overview'))); } catch (error) { showError(main, error); }
  }

  // ---- findings --------------------------------------------------------------------------------

  function findingRows(findings) {
    return findings.map((finding) => h('tr', { class: 'finding severity-' + finding.severity, 'data-check': finding.check },
      h('td', { class: 'nowrap' }, time(finding.time_nano)),
      h('td', {}, finding.check),
      h('td', {}, h('span', { class: 'severity ' + finding.severity }, finding.severity)),
      h('td', {}, finding.service || '-'),
      h('td', { class: 'clip' }, finding.span_name || '-'),
      h('td', {}, traceLink(finding.trace_id)),
      h('td', { class: 'explanation' }, finding.explanation),
      h('td', {}, finding.related_trace_id ? traceLink(finding.related_trace_id, 'other half') : '')));
  }

  const FINDING_HEADERS = ['time (UTC)', 'check', 'severity', 'service', 'span', 'trace', 'explanation', 'related'];

  async function findingsPage() {
    const container = clear(main);
    try {
      const [catalog, data] = await Promise.all([api('/api/checks'), api('/api/findings', {
        check: params.get('check'), service: params.get('service'), trace_id: params.get('trace_id'), page: params.get('page'), page_size: params.get('page_size') })]);
      const go = (changes) => { for (const [key, value] of Object.entries(changes)) { if (value) params.set(key, value); else params.delete(key); } location.search = params.toString(); };
      const checkSelect = h('select', { id: 'filter-check', 'aria-label': 'check' }, h('option', { value: '' }, 'every check'),
        catalog.checks.map((check) => h('option', { value: check.id, selected: params.get('check') === check.id ? 'selected' : null }, check.id)));
      checkSelect.addEventListener('change', () => go({ check: checkSelect.value, page: null }));
      const serviceSelect = h('select', { id: 'filter-service', 'aria-label': 'service' }, h('option', { value: '' }, 'every service'),
        data.services.map((service) => h('option', { value: service, selected: params.get('service') === service ? 'selected' : null }, service)));
      serviceSelect.addEventListener('change', () => go({ service: serviceSelect.value, page: null }));
      const pager = h('div', { class: 'pager' },
        h('button', { type: 'button', disabled: data.page <= 1 ? 'disabled' : null, onclick: () => go({ page: String(data.page - 1) }) }, '← previous'),
        h('span', { id: 'page-info' }, ' page ' + data.page + ' of ' + data.pages + ' · ' + number(data.total) + ' findings '),
        h('button', { type: 'button', disabled: data.page >= data.pages ? 'disabled' : null, onclick: () => go({ page: String(data.page + 1) }) }, 'next →'));
      append(container, h('section', { id: 'findings' }, h('h1', {}, 'Findings'), windowNote(data.window),
        h('div', { class: 'filters' }, checkSelect, serviceSelect), pager,
        data.findings.length ? table(FINDING_HEADERS, findingRows(data.findings), { id: 'findings-table' }) : h('p', { class: 'muted' }, 'No finding matches.')));
    } catch (error) { showError(container, error); }
  }

  // ---- trace waterfall ---------------------------------------------------------------------------

  function attributeValue(value) {
    if (value === null || value === undefined) return '';
    if (typeof value !== 'object') return String(value);
    for (const key of ['string', 'int', 'double', 'bool', 'bytes', 'json']) {
      if (value[key] !== undefined && value[key] !== null) return typeof value[key] === 'object' ? JSON.stringify(value[key]) : String(value[key]);
    }
    return JSON.stringify(value);
  }

  function attributeTable(title, attributes) {
    const entries = Object.entries(attributes || {});
    if (entries.length === 0) return null;
    return h('div', {}, h('h4', {}, title), table(['key', 'value'], entries.map(([key, value]) => h('tr', {}, h('td', { class: 'key' }, key), h('td', { class: 'value' }, attributeValue(value))))));
  }

  function spanDetail(span, findings) {
    const fields = [['trace id', span.trace_id], ['span id', span.span_id], ['parent span id', span.parent_span_id || '(root)'],
      ['ids as received', [span.trace_id_raw, span.span_id_raw, span.parent_span_id_raw].map((v) => v || '∅').join(' / ')],
      ['service', span.service_name], ['instance', span.service_instance_id], ['host', span.host_name || span.host_id || span.host_ip], ['kind', span.kind],
      ['start (UTC)', time(span.start_time_nano)], ['duration', duration(span.duration_nano)], ['status', (span.status_code || '') + (span.status_message ? ': ' + span.status_message : '')],
      ['parent is remote', span.parent_is_remote === undefined ? 'not said' : String(span.parent_is_remote)], ['flags', span.flags], ['trace state', span.trace_state],
      ['scope', [span.scope_name, span.scope_version].filter(Boolean).join(' ')], ['received', time(span.receive_time_nano) + ' via ' + span.source],
      ['dropped', 'attributes ' + (span.dropped_attributes_count || 0) + ', events ' + (span.dropped_events_count || 0) + ', links ' + (span.dropped_links_count || 0)]];
    const events = (span.events || []).map((event) => h('li', {}, time(event.time) + ' ' + (event.name || ''), attributeTable('attributes', event.attributes)));
    const links = (span.links || []).map((link) => h('li', {}, 'trace ', traceLink(link.trace_id), ' span ', h('span', { class: 'id' }, link.span_id_raw || String(link.span_id || '')), attributeTable('attributes', link.attributes)));
    return h('div', { class: 'span-detail', id: 'span-detail' },
      h('h3', {}, span.name || '(no name)'),
      findings.map((finding) => h('p', { class: 'finding-note' }, h('strong', {}, finding.check + ': '), finding.explanation)),
      h('dl', {}, fields.filter(([, value]) => value !== undefined && value !== null && value !== '').map(([key, value]) => [h('dt', {}, key), h('dd', {}, String(value))])),
      attributeTable('span attributes', span.attributes), attributeTable('resource attributes', span.resource_attributes), attributeTable('scope attributes', span.scope_attributes),
      events.length ? h('div', {}, h('h4', {}, 'events'), h('ul', {}, events)) : null,
      links.length ? h('div', {}, h('h4', {}, 'links'), h('ul', {}, links)) : null);
  }

  function traceView(data) {
    const spans = data.spans;
    const byId = new Map();
    for (const span of spans) if (span.span_id && !byId.has(span.span_id)) byId.set(span.span_id, span);
    const children = new Map();
    const roots = [];
    const orphansByParent = new Map();
    for (const span of spans) {
      if (!span.parent_span_id) roots.push(span);
      else if (byId.has(span.parent_span_id) && span.parent_span_id !== span.span_id) {
        if (!children.has(span.parent_span_id)) children.set(span.parent_span_id, []);
        children.get(span.parent_span_id).push(span);
      } else {
        if (!orphansByParent.has(span.parent_span_id)) orphansByParent.set(span.parent_span_id, []);
        orphansByParent.get(span.parent_span_id).push(span);
      }
    }
    const findingsBySpan = new Map();
    const traceFindings = [];
    for (const finding of data.findings) {
      if (finding.span_id) {
        if (!findingsBySpan.has(finding.span_id)) findingsBySpan.set(finding.span_id, []);
        findingsBySpan.get(finding.span_id).push(finding);
      } else traceFindings.push(finding);
    }
    const checks = new Map(data.checks.map((check) => [check.id, check]));
    const starts = spans.map((span) => Number(span.start_time_nano));
    const ends = spans.map((span) => Math.max(Number(span.end_time_nano), Number(span.start_time_nano)));
    const first = Math.min(...starts), last = Math.max(...ends);
    const total = Math.max(1, last - first);

    const rows = h('div', { class: 'waterfall', id: 'waterfall' });
    const detail = h('div', { class: 'detail-pane' }, h('p', { class: 'muted' }, 'Select a span to see its attributes, events and links.'));
    const visited = new Set();
    function row(span, depth) {
      if (visited.has(span)) return;
      visited.add(span);
      const spanFindings = findingsBySpan.get(span.span_id) || [];
      const broken = spanFindings.some((finding) => finding.is_break);
      const left = ((Number(span.start_time_nano) - first) / total) * 100;
      const width = Math.max(0.4, (Math.max(0, Number(span.duration_nano)) / total) * 100);
      const element = h('div', { class: 'span-row' + (broken ? ' broken' : spanFindings.length ? ' noted' : ''), 'data-span-id': span.span_id || '', tabindex: '0', role: 'button' },
        h('div', { class: 'span-label', style: { paddingLeft: (depth * 14 + 4) + 'px' } },
          h('span', { class: 'service-chip', style: { background: serviceColour(span.service_name) } }),
          h('span', { class: 'service' }, span.service_name || '<no service>'), ' ',
          h('span', { class: 'kind kind-' + String(span.kind || '').toLowerCase() }, span.kind || ''), ' ',
          h('span', { class: 'span-name' }, span.name || '')),
        h('div', { class: 'span-bar-track' },
          h('div', { class: 'span-bar', style: { left: Math.min(99.6, left) + '%', width: Math.min(100 - Math.min(99.6, left), width) + '%', background: serviceColour(span.service_name) }, title: duration(span.duration_nano) }),
          h('span', { class: 'span-duration' }, duration(span.duration_nano))));
      const select = () => {
        for (const other of rows.querySelectorAll('.selected')) other.classList.remove('selected');
        element.classList.add('selected');
        append(clear(detail), spanDetail(span, spanFindings));
      };
      element.addEventListener('click', select);
      element.addEventListener('keydown', (event) => { if (event.key === 'Enter') select(); });
      rows.appendChild(element);
      for (const finding of spanFindings) {
        const check = checks.get(finding.check);
        rows.appendChild(h('div', { class: 'finding-note' + (finding.is_break ? ' break' : ''), style: { marginLeft: (depth * 14 + 18) + 'px' } },
          h('strong', {}, (check ? check.title : finding.check) + ': '), finding.explanation,
          finding.related_trace_id ? [' ', traceLink(finding.related_trace_id, 'open the other half')] : null,
          check ? h('div', { class: 'fix' }, 'Fix: ' + check.fix) : null));
      }
      for (const child of (children.get(span.span_id) || []).sort((a, b) => Number(a.start_time_nano) - Number(b.start_time_nano))) row(child, depth + 1);
    }
    for (const root of roots.sort((a, b) => Number(a.start_time_nano) - Number(b.start_time_nano))) row(root, 0);
    for (const [parent, orphans] of orphansByParent) {
      rows.appendChild(h('div', { class: 'span-row missing-parent-row', 'data-missing-parent': parent || '' },
        h('div', { class: 'span-label' }, h('span', { class: 'missing' }, 'missing parent ' + (parent || ''))), h('div', { class: 'span-bar-track' })));
      for (const orphan of orphans) row(orphan, 1);
    }
    for (const span of spans) row(span, 0); // spans only reachable through a cycle
    const related = data.related.length === 0 ? null : h('div', { class: 'related', id: 'related' }, h('h2', {}, 'Related traces'),
      h('ul', {}, data.related.map((item) => h('li', {}, traceLink(item.trace_id), ' — ', item.checks.join(', ')))));
    const services = [...new Set(spans.map((span) => span.service_name || '<no service>'))];
    return h('section', { class: 'trace', id: REPORT ? 'trace-' + data.trace_id : 'trace' },
      h('h2', {}, 'Trace ', h('span', { class: 'id' }, data.trace_id)),
      h('p', { class: 'muted' }, number(spans.length) + ' spans · ' + services.length + ' services · ' + duration(total) + (data.truncated ? ' · only the first spans are shown' : '')),
      h('div', { class: 'legend' }, services.map((service) => h('span', { class: 'legend-item' }, h('span', { class: 'service-chip', style: { background: serviceColour(service) } }), service))),
      traceFindings.map((finding) => h('p', { class: 'finding-note break' }, h('strong', {}, finding.check + ': '), finding.explanation)),
      related,
      h('div', { class: 'trace-body' }, rows, detail));
  }

  async function tracePage(traceId) {
    const container = clear(main);
    try { append(container, traceView(await api('/api/traces/' + encodeURIComponent(traceId)))); } catch (error) { showError(container, error); }
  }

  // ---- service map -----------------------------------------------------------------------------

  function droppedCallsTable(calls) {
    if (calls.length === 0) return h('p', { class: 'muted' }, 'No dropped call on this edge.');
    return table(['time (UTC)', 'trace', 'span', 'call', 'callee started'], calls.map((call) => h('tr', {},
      h('td', { class: 'nowrap' }, time(call.time_nano)), h('td', {}, traceLink(call.trace_id)), h('td', { class: 'id' }, call.span_id || ''),
      h('td', {}, call.span_name || ''), h('td', {}, call.callee_trace_id ? traceLink(call.callee_trace_id) : 'no root found'))), { id: 'dropped-calls' });
  }

  function serviceMapView(data, onEdge) {
    const nodes = data.nodes.map((node) => node.service);
    const rank = new Map(nodes.map((name) => [name, 0]));
    for (let round = 0; round < nodes.length; round++) {
      for (const edge of data.edges) if (edge.caller !== edge.callee && rank.get(edge.callee) <= rank.get(edge.caller)) rank.set(edge.callee, Math.min(nodes.length, rank.get(edge.caller) + 1));
    }
    const columns = new Map();
    for (const name of nodes) { const r = rank.get(name); if (!columns.has(r)) columns.set(r, []); columns.get(r).push(name); }
    const columnCount = Math.max(1, ...[...columns.keys()].map((r) => r + 1));
    const tallest = Math.max(1, ...[...columns.values()].map((c) => c.length));
    const width = Math.max(600, columnCount * 220), height = Math.max(220, tallest * 70 + 40);
    const position = new Map();
    for (const [r, names] of columns) names.forEach((name, index) => position.set(name, { x: 90 + r * ((width - 180) / Math.max(1, columnCount - 1)), y: (height / (names.length + 1)) * (index + 1) }));
    const map = s('svg', { viewBox: '0 0 ' + width + ' ' + height, width: width, height: height, class: 'service-map', id: 'service-map-svg', role: 'img', 'aria-label': 'service map' });
    map.appendChild(s('defs', {}, ['good', 'fair', 'bad'].map((tone) => s('marker', { id: 'arrow-' + tone, viewBox: '0 0 10 10', refX: '10', refY: '5', markerWidth: '9', markerHeight: '9', markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' }, s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow ' + tone })))));
    for (const edge of data.edges) {
      const from = position.get(edge.caller), to = position.get(edge.callee);
      if (!from || !to) continue;
      const tone = rateClass(edge.propagation_rate);
      const bend = from.y === to.y && from.x === to.x ? 40 : 0;
      const path = s('path', { d: 'M ' + (from.x + 45) + ' ' + from.y + ' C ' + (from.x + 110) + ' ' + (from.y - bend) + ', ' + (to.x - 110) + ' ' + (to.y - bend) + ', ' + (to.x - 47) + ' ' + to.y,
        class: 'edge ' + tone, 'stroke-width': Math.min(8, 1.5 + Math.log10(1 + edge.calls)), 'marker-end': 'url(#arrow-' + tone + ')', 'data-caller': edge.caller, 'data-callee': edge.callee, tabindex: '0',
        onclick: () => onEdge(edge) }, s('title', {}, edge.caller + ' → ' + edge.callee + ': ' + edge.calls + ' calls, ' + edge.dropped + ' dropped (' + percent(edge.propagation_rate) + ' propagated)'));
      map.appendChild(path);
    }
    for (const node of data.nodes) {
      const at = position.get(node.service);
      const instrumented = node.traces > 0;
      map.appendChild(s('g', { class: 'node ' + (instrumented ? rateClass(node.completeness) : 'uninstrumented'), 'data-service': node.service, transform: 'translate(' + at.x + ',' + at.y + ')' },
        s('rect', { x: -45, y: -18, width: 90, height: 36, rx: 6 }),
        s('text', { 'text-anchor': 'middle', y: -2 }, node.service.length > 14 ? node.service.slice(0, 13) + '…' : node.service),
        s('text', { 'text-anchor': 'middle', y: 12, class: 'node-figure' }, instrumented ? percent(node.completeness) : 'no spans'),
        s('title', {}, instrumented ? node.service + ': ' + node.traces + ' traces, ' + node.broken + ' broken' : node.service + ': called, but has no spans of its own (not instrumented)')));
    }
    const edgeTable = table(['caller', 'callee', 'calls', 'propagated', 'dropped', 'propagation'], data.edges.map((edge) =>
      h('tr', { class: 'edge-row ' + (edge.dropped ? 'broken' : ''), 'data-caller': edge.caller, 'data-callee': edge.callee, tabindex: '0', onclick: () => onEdge(edge) },
        h('td', {}, edge.caller), h('td', {}, edge.callee), h('td', { class: 'num' }, number(edge.calls)), h('td', { class: 'num' }, number(edge.propagated)),
        h('td', { class: 'num' }, number(edge.dropped)), h('td', { class: 'num ' + rateClass(edge.propagation_rate) }, percent(edge.propagation_rate)))), { id: 'edges-table' });
    return [h('div', { class: 'map-box' }, map), h('p', { class: 'muted' }, 'Edges are coloured by the share of calls whose callee side is in the same trace: green ≥ 99%, amber ≥ 90%, red below. Select an edge for its dropped calls.'), edgeTable];
  }

  async function serviceMapPage() {
    const container = clear(main);
    try {
      const data = await api('/api/service-map');
      const dropped = h('div', { id: 'edge-detail' });
      const onEdge = async (edge) => {
        append(clear(dropped), h('p', { class: 'muted' }, 'Loading…'));
        try {
          const detail = await api('/api/edges', { caller: edge.caller, callee: edge.callee });
          append(clear(dropped), h('h2', {}, 'Dropped calls ' + edge.caller + ' → ' + edge.callee), droppedCallsTable(detail.dropped_calls));
        } catch (error) { showError(dropped, error); }
      };
      append(container, h('section', { id: 'service-map' }, h('h1', {}, 'Service map'), windowNote(data.window), serviceMapView(data, onEdge), dropped));
      const caller = params.get('caller'), callee = params.get('callee');
      if (caller && callee) onEdge({ caller: caller, callee: callee });
    } catch (error) { showError(container, error); }
  }

  // ---- checks and SQL --------------------------------------------------------------------------

  function checksView(checks) {
    return h('section', { id: 'checks' }, h('h1', {}, 'Checks'),
      checks.map((check) => h('article', { class: 'check', id: 'check-' + check.id },
        h('h2', {}, check.title, ' ', h('code', {}, check.id), ' ', h('span', { class: 'severity ' + check.severity }, check.severity), check.is_break ? ' ' : null, check.is_break ? h('span', { class: 'tag' }, 'breaks completeness') : null),
        h('p', {}, check.meaning),
        h('h3', {}, 'Typical causes'), h('ul', {}, check.causes.map((cause) => h('li', {}, cause))),
        h('h3', {}, 'Fix'), h('p', {}, check.fix))));
  }

  async function checksPage() {
    try { append(clear(main), checksView((await api('/api/checks')).checks)); } catch (error) { showError(main, error); }
  }

  function sqlPage() {
    const box = h('textarea', { id: 'sql-query', rows: '6', spellcheck: 'false', 'aria-label': 'SQL query' });
    box.value = params.get('q') || 'SELECT service_name, kind, count(*) AS spans\nFROM spans\nGROUP BY service_name, kind\nORDER BY spans DESC';
    const result = h('div', { id: 'sql-result' });
    const run = async () => {
      append(clear(result), h('p', { class: 'muted' }, 'Running…'));
      try {
        const data = await api('/api/sql', {}, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify({ query: box.value }) });
        append(clear(result), h('p', { class: 'muted' }, number(data.rows.length) + ' rows in ' + data.elapsed_millis + ' ms' + (data.truncated ? ' (row limit reached)' : '')),
          table(data.columns, data.rows.map((cells) => h('tr', {}, cells.map((cell) => h('td', { class: cell === null ? 'null' : null }, cell === null ? 'NULL' : cell)))), { id: 'sql-table' }));
      } catch (error) { showError(result, error); }
    };
    append(clear(main), h('section', { id: 'sql' }, h('h1', {}, 'SQL'),
      h('p', { class: 'muted' }, 'One read-only SELECT over spans (judged traces in the window), window_spans, all_spans and findings; time- and row-limited. Columns are in docs/schema.md.'),
      box, h('div', {}, h('button', { type: 'button', id: 'sql-run', onclick: run }, 'Run')), result));
  }

  // ---- the report ------------------------------------------------------------------------------

  function reportView() {
    const byEdge = (edge) => REPORT.dropped_calls.filter((call) => call.caller === edge.caller && call.callee === edge.callee);
    const edgeDetail = h('div', { id: 'edge-detail' });
    const onEdge = (edge) => append(clear(edgeDetail), h('h2', {}, 'Dropped calls ' + edge.caller + ' → ' + edge.callee), droppedCallsTable(byEdge(edge)));
    const traces = Object.values(REPORT.traces);
    return [
      overviewView(REPORT.overview),
      h('section', { id: 'service-map' }, h('h1', {}, 'Service map'), serviceMapView(REPORT.service_map, onEdge), edgeDetail),
      h('section', { id: 'findings' }, h('h1', {}, 'Findings'),
        h('p', { class: 'muted' }, number(REPORT.findings_total) + ' findings' + (REPORT.findings.length < REPORT.findings_total ? ', the first ' + number(REPORT.findings.length) + ' listed' : '')),
        REPORT.findings.length ? table(FINDING_HEADERS, findingRows(REPORT.findings), { id: 'findings-table' }) : h('p', { class: 'muted' }, 'No finding.')),
      h('section', { id: 'broken-traces' }, h('h1', {}, 'Broken traces'), traces.length ? traces.map(traceView) : h('p', { class: 'muted' }, 'No broken trace.')),
      checksView(REPORT.checks),
    ];
  }

  // ---- routing ---------------------------------------------------------------------------------

  header();
  if (REPORT) {
    append(clear(main), reportView());
  } else {
    const path = location.pathname;
    if (path === '/') overviewPage();
    else if (path === '/findings') findingsPage();
    else if (path.startsWith('/traces/')) tracePage(decodeURIComponent(path.slice('/traces/'.length)));
    else if (path === '/service-map') serviceMapPage();
    else if (path === '/checks') checksPage();
    else if (path === '/sql') sqlPage();
    else append(clear(main), h('p', {}, 'Open a trace by its id above.'));
  }
})();
