"""The checks' SQL on DuckDB, for `tracegap bench check`.

Reads a plan written by tracegap (JSON: the span files, the settings, the shared views and each
check's finding query exactly as tracegap runs them) and runs it on DuckDB over the same Parquet.
Prints one JSON object: seconds and rows per step, total seconds, peak RSS.

Only what the two engines spell differently is bridged here, never the checks themselves:
- tracegap's helper functions (`hex_id`, `id_problem`, `b3_part`, `traceparent_part`) become
  DuckDB macros with the same results;
- span times are exposed as nanoseconds since the epoch (BIGINT): DataFusion casts a nanosecond
  timestamp to BIGINT, DuckDB does not;
- `/` on integers divides as integers (DataFusion's rule) through `SET integer_division`;
- `cardinality(list)` is DuckDB's `len(list)`, `empty(list)` its `len(list) = 0`.
"""

import json
import re
import sys
import time

import duckdb

MACROS = r"""
CREATE MACRO byte_length(x) AS octet_length(x);
CREATE MACRO hex_id(x) AS
  CASE WHEN typeof(x) = 'UBIGINT' THEN lpad(lower(hex(x)), 16, '0') ELSE lower(hex(x)) END;

CREATE MACRO id_problem(t, kind) AS
  CASE
    WHEN t = '' THEN 'empty'
    WHEN NOT regexp_full_match(t, '[0-9a-fA-F]+') THEN '"' || t || '" is not hex'
    WHEN (kind = 'trace' AND length(t) NOT IN (16, 32)) OR (kind <> 'trace' AND length(t) <> 16)
      THEN CAST(length(t) AS VARCHAR) || ' hex digits, expected ' || CASE WHEN kind = 'trace' THEN '16 or 32' ELSE '16' END
    WHEN regexp_full_match(t, '0+') THEN 'all zero'
    WHEN regexp_matches(t, '[A-F]') THEN 'upper-case hex (the formats require lower case)'
  END;

CREATE MACRO b3_problem(h, f) AS
  CASE
    WHEN len(f) = 1 THEN
      CASE WHEN trim(h) IN ('0', '1', 'd') THEN NULL
           ELSE '"' || trim(h) || '" is neither ids nor a sampling state (0, 1, d)' END
    WHEN len(f) > 4 THEN CAST(len(f) AS VARCHAR) || ' fields, expected at most 4 (trace-span-sampled-parent)'
    WHEN id_problem(f[1], 'trace') IS NOT NULL THEN 'trace id: ' || id_problem(f[1], 'trace')
    WHEN id_problem(f[2], 'span') IS NOT NULL THEN 'span id: ' || id_problem(f[2], 'span')
    WHEN len(f) >= 3 AND f[3] NOT IN ('0', '1', 'd') THEN 'sampling state "' || f[3] || '", expected 0, 1 or d'
    WHEN len(f) >= 4 AND id_problem(f[4], 'span') IS NOT NULL THEN 'parent span id: ' || id_problem(f[4], 'span')
  END;

CREATE MACRO b3_part_of(h, f, part) AS
  CASE part
    WHEN 'problem' THEN b3_problem(h, f)
    WHEN 'trace_id' THEN CASE WHEN len(f) >= 2 THEN f[1] END
    WHEN 'span_id' THEN CASE WHEN len(f) >= 2 THEN f[2] END
    WHEN 'sampled' THEN CASE WHEN len(f) = 1 THEN f[1] WHEN len(f) >= 3 THEN f[3] END
    WHEN 'parent_span_id' THEN CASE WHEN len(f) >= 4 THEN f[4] END
  END;

CREATE MACRO b3_part(h, part) AS b3_part_of(h, string_split(trim(h), '-'), part);

CREATE MACRO traceparent_hex(x, digits) AS length(x) = digits AND regexp_full_match(x, '[0-9a-f]+');

CREATE MACRO traceparent_problem(f) AS
  CASE
    WHEN len(f) < 4 THEN CAST(len(f) AS VARCHAR) || ' fields, expected 4 (version-trace-parent-flags)'
    WHEN NOT traceparent_hex(f[1], 2) OR f[1] = 'ff' THEN 'version "' || f[1] || '" is invalid'
    WHEN f[1] = '00' AND len(f) <> 4 THEN CAST(len(f) AS VARCHAR) || ' fields, version 00 has exactly 4'
    WHEN NOT traceparent_hex(f[2], 32) THEN 'trace id "' || f[2] || '" is not 32 lower-case hex digits'
    WHEN regexp_full_match(f[2], '0+') THEN 'trace id is all zero'
    WHEN NOT traceparent_hex(f[3], 16) THEN 'parent id "' || f[3] || '" is not 16 lower-case hex digits'
    WHEN regexp_full_match(f[3], '0+') THEN 'parent id is all zero'
    WHEN NOT traceparent_hex(f[4], 2) THEN 'flags "' || f[4] || '" are not 2 lower-case hex digits'
  END;

CREATE MACRO traceparent_part_of(f, part) AS
  CASE part
    WHEN 'problem' THEN traceparent_problem(f)
    WHEN 'version' THEN CASE WHEN len(f) >= 4 THEN f[1] END
    WHEN 'trace_id' THEN CASE WHEN len(f) >= 4 THEN f[2] END
    WHEN 'parent_id' THEN CASE WHEN len(f) >= 4 THEN f[3] END
    WHEN 'flags' THEN CASE WHEN len(f) >= 4 THEN f[4] END
  END;

CREATE MACRO traceparent_part(h, part) AS traceparent_part_of(string_split(trim(h), '-'), part);
"""


def dialect(sql):
    """DataFusion's spelling of what DuckDB names differently."""
    sql = re.sub(r"\bcardinality\(", "len(", sql)
    # A binary literal cast to a fixed-size id: DuckDB has one blob type, and no X'' literals.
    sql = re.sub(r"\barrow_cast\((X'[0-9a-fA-F]*'), '[A-Za-z]+\(\d+\)'\)", r"\1", sql)
    # A NULL typed as a dictionary of strings (the span table's naming columns): DuckDB's text.
    sql = re.sub(r"\barrow_cast\(NULL, 'Dictionary\(Int32, Utf8\)'\)", "CAST(NULL AS VARCHAR)", sql)
    sql = re.sub(r"\bX'([0-9a-fA-F]*)'", r"unhex('\1')", sql)
    sql = re.sub(r"\bLEFT (ANTI|SEMI) JOIN\b", r"\1 JOIN", sql)
    return re.sub(r"\bempty\((\w+)\)", r"(len(\1) = 0)", sql)


def peak_resident_bytes():
    """This process's own peak RSS (VmHWM). Not getrusage: Linux carries ru_maxrss over from the
    parent across fork and exec, so it would report tracegap's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def progress(step):
    """One line per step on stderr, so a crash says where it happened."""
    print(f"duckdb: {step['name']} {step['seconds']:.2f} s", file=sys.stderr, flush=True)


def main():
    plan = json.load(open(sys.argv[1]))
    started = time.perf_counter()
    connection = duckdb.connect()
    connection.execute(f"SET threads = {int(plan['threads'])}")
    connection.execute(f"SET memory_limit = '{int(plan['memory_limit_bytes'])}B'")
    connection.execute(f"SET temp_directory = '{plan['temp_directory']}'")
    connection.execute("SET integer_division = true")
    connection.execute(MACROS)
    files = plan["span_files"].replace("'", "''")
    connection.execute(
        "CREATE VIEW all_spans AS SELECT * REPLACE (epoch_ns(start_time) AS start_time, "
        "epoch_ns(end_time) AS end_time, epoch_ns(receive_time) AS receive_time) "
        f"FROM read_parquet('{files}', hive_partitioning = true)"
    )
    connection.execute("CREATE VIEW window_spans AS SELECT * FROM all_spans")
    connection.execute("CREATE VIEW pending_traces AS SELECT trace_id FROM window_spans WHERE FALSE")
    connection.execute(
        "CREATE VIEW settings AS SELECT CAST(%d AS BIGINT) AS premature_end_tolerance_nano"
        % int(plan["premature_end_tolerance_nano"])
    )
    steps = []
    if plan.get("span_columns"):
        # As tracegap did: the columns the checks read, once, into memory.
        step_started = time.perf_counter()
        columns = ", ".join('"%s"' % name.replace('"', '""') for name in plan["span_columns"])
        connection.execute(f"CREATE TEMP TABLE spans AS SELECT {columns} FROM window_spans")
        steps.append({"name": "spans in memory", "seconds": time.perf_counter() - step_started, "rows": None})
        progress(steps[-1])
    else:
        connection.execute("CREATE VIEW spans AS SELECT * FROM window_spans")
    for view in plan["views"]:
        step_started = time.perf_counter()
        kind = "TEMP TABLE" if view["materialize"] else "VIEW"
        connection.execute(f"CREATE {kind} {view['name']} AS {dialect(view['sql'])}")
        rows = None
        if view["materialize"]:
            rows = connection.execute(f"SELECT count(*) FROM {view['name']}").fetchone()[0]
        steps.append({"name": view["name"], "seconds": time.perf_counter() - step_started, "rows": rows})
        progress(steps[-1])
    for check in plan["checks"]:
        step_started = time.perf_counter()
        # Materialised whole, every column, as tracegap collects each check's findings.
        table = "findings_" + check["id"]
        connection.execute(f'CREATE TEMP TABLE "{table}" AS {dialect(check["sql"])}')
        rows = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        steps.append({"name": check["id"], "seconds": time.perf_counter() - step_started, "rows": rows})
        progress(steps[-1])
    seconds = time.perf_counter() - started
    peak_rss = peak_resident_bytes()
    print(json.dumps({"version": duckdb.__version__, "seconds": seconds, "peak_rss": peak_rss, "steps": steps}))


if __name__ == "__main__":
    main()
