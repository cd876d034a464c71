"""The dashboard and the HTML report in a real browser (Debian's Chromium, driven by Playwright):
each page renders what the API says, the orphan is highlighted, the service map shows the broken
edge, hostile span contents stay text under the Content-Security-Policy, the token is enforced,
the report opens offline, and `serve --demo` fills the dashboard by itself. Screenshots go to
$TRACEGAP_ARTIFACTS/web/."""

import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from playwright.sync_api import sync_playwright

from conftest import ARTIFACTS, BINARY, Server

CHROMIUM = os.environ.get("TRACEGAP_CHROMIUM", "/usr/bin/chromium")
SHOTS = ARTIFACTS / "web"

# Markup and script in every field a producer controls. Each would set window.__xss if it ran.
PAYLOADS = [
    "<script>window.__xss='script'</script>",
    "\"><img src=x onerror=\"window.__xss='img'\">",
    "javascript:window.__xss='href'",
    "'><svg onload=\"window.__xss='svg'\">",
]
HOSTILE_SERVICE = PAYLOADS[1]

# Counts anything of the page that could run: handlers in attributes, scripts other than ours,
# links to javascript: URLs.
RUNNABLE = """() => {
  const all = [...document.querySelectorAll('*')];
  return {
    handlers: all.filter(e => [...e.attributes].some(a => a.name.toLowerCase().startsWith('on'))).length,
    scripts: document.querySelectorAll('script').length,
    javascriptLinks: [...document.querySelectorAll('[href]')].filter(e => /^\\s*javascript:/i.test(e.getAttribute('href'))).length,
    xss: window.__xss === undefined ? null : String(window.__xss),
  };
}"""


def http_json(url, data=None, headers=None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def wait_until(condition, timeout=90, interval=0.5, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = condition()
            if last:
                return last
        except (urllib.error.URLError, ConnectionError, KeyError) as error:
            last = error
        time.sleep(interval)
    raise AssertionError(f"{what} not met after {timeout}s (last: {last!r})")


def send_hostile_spans(endpoint):
    """A broken trace whose every field is a payload, sent by the Python SDK's OTLP exporter."""
    provider = TracerProvider(resource=Resource.create({
        "service.name": HOSTILE_SERVICE, "host.name": PAYLOADS[0], "deployment.environment": PAYLOADS[2],
    }))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    tracer = provider.get_tracer(PAYLOADS[3], PAYLOADS[0])
    # A parent that never arrives: the spans below are orphans, so they show up as findings.
    lost = NonRecordingSpan(SpanContext(trace_id=0x5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e, span_id=0x0bad0bad0bad0bad,
                                        is_remote=True, trace_flags=TraceFlags(1)))
    context = trace.set_span_in_context(lost)
    attributes = {PAYLOADS[0]: PAYLOADS[1], "http.route": PAYLOADS[2], "peer.service": PAYLOADS[3],
                  "payloads": PAYLOADS}
    link = Link(SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=True), {"why": PAYLOADS[0]})
    with tracer.start_as_current_span(PAYLOADS[0], context=context, kind=SpanKind.SERVER, attributes=attributes,
                                      links=[link]) as span:
        span.add_event(PAYLOADS[1], {PAYLOADS[2]: PAYLOADS[3]})
        span.set_status(Status(StatusCode.ERROR, PAYLOADS[1]))
        with tracer.start_as_current_span(PAYLOADS[2], kind=SpanKind.CLIENT, attributes={"peer.service": PAYLOADS[0]}):
            pass
    provider.shutdown()
    return "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e"


class Browser:
    """Chromium with a fresh profile; records dialogs, page errors and CSP reports."""

    def __init__(self, playwright, profile):
        self.context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, viewport={"width": 1400, "height": 900},
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        self.events = []
        self.context.on("dialog", lambda dialog: (self.events.append(f"dialog: {dialog.message}"), dialog.dismiss()))

    def page(self):
        page = self.context.new_page()
        page.on("pageerror", lambda error: self.events.append(f"pageerror: {error}"))
        page.on("console", lambda message: self.events.append(f"console {message.type}: {message.text}")
                if message.type == "error" else None)
        return page

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def playwright():
    """One Playwright driver for the module (the sync API allows one at a time)."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def site(playwright):
    """A server over a generated corpus plus the hostile trace, and a browser."""
    with tempfile.TemporaryDirectory(prefix="tracegap-web-") as directory:
        data = Path(directory) / "data"
        subprocess.run([str(BINARY), "generate", "--traces", "400", "--data", str(data)], check=True,
                       capture_output=True)
        server = Server(data, ["--settle", "2s", "--flush-interval", "1s", "--refresh", "1s"])
        hostile_trace = send_hostile_spans(server.http_endpoint)
        wait_until(lambda: http_json(f"{server.web_url}/api/traces/{hostile_trace}")["spans"]
                   and http_json(f"{server.web_url}/api/findings?trace_id={hostile_trace}")["total"] > 0,
                   what="the hostile trace judged")
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser = Browser(playwright, Path(directory) / "profile")
        yield {"server": server, "url": server.web_url, "data": data, "browser": browser,
               "hostile_trace": hostile_trace, "directory": Path(directory)}
        browser.close()
        server.stop()


def open_page(site, path, ready):
    page = site["browser"].page()
    response = page.goto(site["url"] + path)
    assert response.status == 200
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    page.wait_for_selector(ready, timeout=60_000)
    return page


def assert_inert(site, page, name):
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    runnable = page.evaluate(RUNNABLE)
    assert runnable == {"handlers": 0, "scripts": 1, "javascriptLinks": 0, "xss": None}, runnable
    problems = [event for event in site["browser"].events if "dialog" in event or "pageerror" in event
                or "Content Security Policy" in event]
    assert problems == [], problems


def test_overview_shows_completeness_and_findings_by_check(site):
    overview = http_json(f"{site['url']}/api/overview")
    page = open_page(site, "/", "#completeness")
    shown = page.inner_text("#completeness")
    assert shown == f"{100 * overview['completeness']:.2f}%"
    assert page.inner_text("#judged-traces").replace(",", "") == str(overview["judged_traces"])
    rows = page.locator("#findings-by-check tbody tr")
    assert rows.count() == len(overview["findings_by_check"])
    assert page.locator("svg.chart rect.bar").count() >= 1, "a completeness bar per minute"
    worst = page.inner_text("#worst-services")
    assert HOSTILE_SERVICE in worst, "the hostile service is listed, as text"
    assert_inert(site, page, "overview")


def test_findings_filter_by_check_and_link_to_traces(site):
    page = open_page(site, "/findings?check=orphaned_span", "#findings-table")
    rows = page.locator("#findings-table tbody tr")
    total = http_json(f"{site['url']}/api/findings?check=orphaned_span")["total"]
    assert rows.count() == min(50, total)
    assert set(page.eval_on_selector_all("#findings-table tbody tr", "rows => rows.map(r => r.dataset.check)")) == {"orphaned_span"}
    assert page.input_value("#filter-check") == "orphaned_span"
    page.locator("#findings-table tbody tr a.id").first.click()
    page.wait_for_selector("#waterfall")
    assert "/traces/" in page.url
    assert_inert(site, page, "findings-to-trace")


def test_trace_highlights_the_orphan_under_a_missing_parent(site):
    finding = http_json(f"{site['url']}/api/findings?check=orphaned_span&page_size=1")["findings"][0]
    page = open_page(site, f"/traces/{finding['trace_id']}", "#waterfall")
    missing_parent_rows = page.locator(".span-row.missing-parent-row")
    assert missing_parent_rows.count() >= 1
    assert "missing parent" in missing_parent_rows.first.inner_text()
    orphan = page.locator(f".span-row.broken[data-span-id='{finding['span_id']}']")
    assert orphan.count() == 1, "the orphan is highlighted"
    notes = page.inner_text("#waterfall")
    assert finding["explanation"] in notes and "Fix:" in notes
    orphan.click()
    page.wait_for_selector("#span-detail")
    assert finding["span_id"] in page.inner_text("#span-detail")
    assert_inert(site, page, "trace-orphan")


def test_trace_links_the_other_half_of_an_unpropagated_call(site):
    findings = http_json(f"{site['url']}/api/findings?check=unpropagated_call&page_size=500")["findings"]
    finding = next(f for f in findings if f["related_trace_id"])
    page = open_page(site, f"/traces/{finding['trace_id']}", "#waterfall")
    link = page.locator(f"#related a[href*='{finding['related_trace_id']}']")
    assert link.count() == 1
    link.click()
    page.wait_for_selector("#waterfall")
    assert finding["related_trace_id"] in page.inner_text("section.trace h2")
    assert page.locator(".span-row.broken").count() >= 1, "the callee's root is the missing_parent half"
    assert_inert(site, page, "trace-other-half")


def test_service_map_shows_the_broken_edge_and_its_dropped_calls(site):
    page = open_page(site, "/service-map", "#service-map-svg")
    edge = page.locator("path.edge[data-caller='frontend'][data-callee='checkout']")
    assert edge.count() == 1
    assert "good" not in edge.get_attribute("class"), "calls were dropped on this edge"
    expected = next(e for e in http_json(f"{site['url']}/api/service-map")["edges"]
                    if e["caller"] == "frontend" and e["callee"] == "checkout")
    page.locator("tr.edge-row[data-caller='frontend'][data-callee='checkout']").click()
    page.wait_for_selector("#dropped-calls")
    assert page.locator("#dropped-calls tbody tr").count() == expected["dropped"]
    assert_inert(site, page, "service-map")


def test_checks_page_lists_the_catalogue(site):
    checks = http_json(f"{site['url']}/api/checks")["checks"]
    page = open_page(site, "/checks", "#checks")
    for check in checks:
        article = page.locator(f"#check-{check['id']}")
        assert article.count() == 1
        assert check["fix"][:40] in article.inner_text()
    assert_inert(site, page, "checks")


def test_sql_box_shows_results_and_refuses_writes(site):
    page = open_page(site, "/sql", "#sql-query")
    page.fill("#sql-query", "SELECT name, service_name FROM all_spans WHERE name LIKE '%xss%' ORDER BY name")
    page.click("#sql-run")
    page.wait_for_selector("#sql-table")
    cells = page.inner_text("#sql-table")
    assert PAYLOADS[0] in cells and HOSTILE_SERVICE in cells, "hostile names come back as text"
    assert_inert(site, page, "sql")
    page.fill("#sql-query", "DROP TABLE spans")
    page.click("#sql-run")
    page.wait_for_selector("#sql-result .error")
    assert "refused" in page.inner_text("#sql-result")


def test_hostile_span_contents_never_run(site):
    trace_id = site["hostile_trace"]
    from urllib.parse import quote
    for path, ready, name in [
        (f"/traces/{trace_id}", "#waterfall", "hostile-trace"),
        (f"/findings?service={quote(HOSTILE_SERVICE)}", "#findings-table", "hostile-findings"),
        (f"/findings?trace_id={trace_id}", "#findings-table", "hostile-findings-by-trace"),
        ("/service-map", "#service-map-svg", "hostile-service-map"),
        ("/", "#completeness", "hostile-overview"),
        (f"/traces/{quote(PAYLOADS[1])}", ".error", "hostile-trace-id"),
    ]:
        page = open_page(site, path, ready)
        if path.startswith("/traces/5ca1"):
            # Click every span: the detail pane shows attributes, events, links, status.
            linked = 0
            for row in page.locator(".span-row[data-span-id]").all():
                row.click()
                detail = page.inner_text("#span-detail")
                assert PAYLOADS[0] in detail
                # The SDK's ids have their normal lengths and are stored once (raw columns null):
                # the ids as received are the normalised ids' bytes, in hex, never missing.
                span_id = row.get_attribute("data-span-id")
                assert f"{trace_id} / {span_id} / " in detail, detail
                if "why" in detail:
                    linked += 1
                    assert "span 0000000000005678" in detail, "the link's span id, in hex"
            assert linked == 1
            text = page.inner_text("main")
            for payload in PAYLOADS:
                assert payload in text, f"{payload!r} is shown as text"
        assert_inert(site, page, name)
        page.close()


def test_report_is_one_file_that_opens_offline(site):
    report = site["directory"] / "report.html"
    subprocess.run([str(BINARY), "report", "--data", str(site["data"]), "--settle", "0s", "--max-traces", "1000", "-o", str(report)],
                   check=True, capture_output=True)
    html = report.read_text()
    assert "Content-Security-Policy" in html and "<script src" not in html and "<link rel=\"stylesheet\"" not in html
    browser = site["browser"]
    page = browser.page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.as_uri())
    page.wait_for_selector("#broken-traces section.trace")
    assert [url for url in requests if not url.startswith(("file:", "data:"))] == [], "offline: nothing fetched"
    assert page.locator("#overview #completeness").count() == 1
    assert page.locator("#service-map path.edge.bad, #service-map path.edge.fair").count() >= 1
    assert page.locator("#findings-table tbody tr").count() > 0
    assert page.locator("#broken-traces .span-row.broken").count() > 0
    hostile = page.locator(f"#trace-{site['hostile_trace']}")
    assert hostile.count() == 1 and PAYLOADS[0] in hostile.inner_text()
    page.screenshot(path=str(SHOTS / "report.png"), full_page=False)
    runnable = page.evaluate(RUNNABLE)
    assert runnable["handlers"] == 0 and runnable["javascriptLinks"] == 0 and runnable["xss"] is None, runnable
    assert runnable["scripts"] == 2, "the data and the embedded script"
    problems = [e for e in browser.events if "dialog" in e or "pageerror" in e or "Content Security Policy" in e]
    assert problems == [], problems


def test_a_token_guards_the_dashboard(start_server, playwright):
    server = start_server("--web-token", "let me in")
    try:
        urllib.request.urlopen(f"{server.web_url}/api/overview", timeout=30)
        raise AssertionError("answered without the token")
    except urllib.error.HTTPError as error:
        assert error.code == 401
    overview = http_json(f"{server.web_url}/api/overview", headers={"Authorization": "Bearer let me in"})
    assert "completeness" in overview
    with tempfile.TemporaryDirectory() as profile:
        browser = Browser(playwright, Path(profile))
        page = browser.page()
        assert page.goto(f"{server.web_url}/").status == 401
        page.goto(f"{server.web_url}/?token=let%20me%20in")
        page.wait_for_selector("#completeness")
        assert "token" not in page.url, "the token leaves the address bar"
        page.goto(f"{server.web_url}/checks")
        page.wait_for_selector("#checks article")
        browser.close()


def test_demo_fills_the_dashboard(start_server, playwright):
    server = start_server("--demo", "--demo-rate", "10")
    overview = wait_until(lambda: (lambda o: o if o["judged_traces"] > 0 and o["broken_traces"] > 0 else None)(
        http_json(f"{server.web_url}/api/overview")), timeout=120, interval=2, what="demo traces judged")
    found = {row["check"] for row in overview["findings_by_check"] if row["findings"] > 0}
    assert {"orphaned_span", "missing_parent", "unpropagated_call"} <= found, found
    metrics = urllib.request.urlopen(f"{server.web_url}/metrics", timeout=60).read().decode()
    accepted = next(line for line in metrics.splitlines() if line.startswith('tracegap_ingest_spans_total{outcome="accepted"}'))
    assert int(accepted.split()[-1]) > 0
    SHOTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        browser = Browser(playwright, Path(profile))
        page = browser.page()
        page.goto(f"{server.web_url}/")
        page.wait_for_selector("#completeness")
        assert page.inner_text("#judged-traces") != "0"
        page.screenshot(path=str(SHOTS / "demo-overview.png"), full_page=True)
        browser.close()
