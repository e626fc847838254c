"""Reports: the registry, filters, errors, SQL injection, the CLI and the Prefect flow,
on the fixture corpus tests/fixtures/reports (expected figures from tests.test_views.Corpus)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

import newsetl
from newsetl import bundle, cli, reports
from newsetl.store import Warehouse

from .helpers.cli import newsetl_cli
from .helpers.model import UTC, Corpus, expected_provider_stats

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wh(reports_wh):
    return reports_wh


@pytest.fixture(scope="module")
def corpus():
    return Corpus()


def ids(table: pa.Table) -> list[str]:
    return table.column("article_id").to_pylist()


# -- registry ---------------------------------------------------------------------------------

def test_every_report_binds_exactly_the_filters_it_declares():
    for r in reports.REPORTS.values():
        assert set(r.parameters) == set(r.filters), r.name
        assert set(r.filters) <= set(reports.FILTER_NAMES)


def test_every_report_runs(wh):
    for name in reports.REPORTS:
        t = reports.run(wh, name)
        assert isinstance(t, pa.Table) and t.num_columns > 0, name
        # the news corpus names no author (the news format has no such key): tests/test_authors.py
        assert t.num_rows > 0 or name == "top_authors", name


def test_top_providers_keeps_its_signature(wh):
    t = reports.top_providers(wh, 2)
    assert isinstance(t, pa.Table)
    assert t.to_pylist()[0]["provider_domain"] == "alpha.com" and t.num_rows == 2
    assert None not in reports.top_providers(wh, 100).column("provider_domain").to_pylist()


def test_default_limits(wh):
    assert reports.run(wh, "top_providers").num_rows == 5  # every provider but the NULL one (< 10)
    assert reports.run(wh, "top_articles").num_rows == 13  # < 50


# -- filters ------------------------------------------------------------------------------------

def test_until_a_date_includes_that_whole_day(wh):
    b03 = hashlib.sha256(b"https://beta.org/b03").hexdigest()[:16]  # 2021-06-01T00:00:00Z
    assert b03 not in ids(reports.run(wh, "top_articles", until="2021-05-31"))
    assert b03 in ids(reports.run(wh, "top_articles", until="2021-06-01"))
    assert b03 in ids(reports.run(wh, "top_articles", since="2021-06-01"))


def test_date_times_and_offsets(wh):
    a05 = hashlib.sha256(b"https://alpha.com/a05").hexdigest()[:16]  # 2021-06-30T12:00:00Z, the newest
    assert a05 not in ids(reports.run(wh, "top_articles", until="2021-06-30T11:59:59Z"))
    assert a05 in ids(reports.run(wh, "top_articles", until="2021-06-30T12:00:00Z"))
    assert ids(reports.run(wh, "top_articles", since="2021-06-30T14:00:00+02:00")) == [a05]
    assert ids(reports.run(wh, "top_articles", since="2021-06-30 12:00")) == [a05]
    assert ids(reports.run(wh, "top_articles", since=dt.datetime(2021, 6, 30, 12, tzinfo=UTC))) == [a05]
    assert reports.run(wh, "top_articles", since=dt.date(2021, 7, 1)).num_rows == 0


def test_provider_stats_filtered_by_period(wh, corpus):
    since, until = dt.datetime(2021, 2, 1, tzinfo=UTC), dt.datetime(2021, 4, 30, 23, 59, 59, 999999, tzinfo=UTC)
    got = {r["provider_domain"]: r for r in reports.run(wh, "provider_stats", since="2021-02-01",
                                                        until="2021-04-30").to_pylist()}
    want = expected_provider_stats(corpus.where(since, until))
    assert {k: r["articles"] for k, r in got.items()} == {k: w["articles"] for k, w in want.items()}
    assert {k: r["citations_received"] for k, r in got.items()} == {k: w["citations_received"] for k, w in want.items()}


def test_provider_and_topic_are_case_insensitive(wh, corpus):
    assert reports.run(wh, "top_articles", provider="ALPHA.com").num_rows == 5
    assert reports.run(wh, "top_articles", provider=" alpha.com ").num_rows == 5
    assert reports.run(wh, "top_articles", topic="ai").num_rows == len(corpus.where(topic="AI")) == 7
    (row,) = reports.run(wh, "provider_stats", provider="beta.org").to_pylist()
    assert row["articles"] == 3 and row["articles_share_pct"] == round(100 * 3 / 13, 1)


def test_min_articles_and_limit(wh):
    got = reports.run(wh, "provider_stats", min_articles=2).column("provider_domain").to_pylist()
    assert got == ["alpha.com", "beta.org", "gamma.net"]
    assert reports.run(wh, "provider_stats", min_articles="2", limit="1").column("provider_domain").to_pylist() == ["alpha.com"]
    assert reports.run(wh, "topic_stats", min_articles=4).column("topic").to_pylist() == ["AI"]
    assert reports.run(wh, "provider_citations", min_articles=2).num_rows == 1  # alpha -> alpha (a01, a02)


def test_quality_by_month_for_a_topic(wh, corpus):
    got = {r["month"]: r["articles"] for r in reports.run(wh, "quality_by_month", topic="Security").to_pylist()}
    assert got == {dt.date(2021, 3, 1): 1, dt.date(2021, 4, 1): 0, dt.date(2021, 5, 1): 2}


@pytest.mark.parametrize("name, filters, message", [
    ("no_such_report", {}, "unknown report 'no_such_report'"),
    ("top_articles", {"since": "2021-02-30"}, "--since '2021-02-30' is not a date"),
    ("top_articles", {"until": "yesterday"}, "--until 'yesterday' is not a date"),
    ("top_articles", {"since": "2021-03-01' OR 1=1 --"}, "is not a date"),
    ("top_articles", {"since": "2021-05-01", "until": "2021-04-01"}, "--since 2021-05-01 is after --until 2021-04-01"),
    ("top_articles", {"limit": "0"}, "--limit '0' is not a whole number of at least 1"),
    ("top_articles", {"limit": "1; DROP TABLE articles"}, "--limit '1; DROP TABLE articles' is not a whole number"),
    ("provider_stats", {"min_articles": "-1"}, "--min-articles '-1' is not a whole number"),
    ("provider_stats", {"provider": "  "}, "--provider needs a non-empty value"),
    ("quality_distribution", {"limit": 5}, "report quality_distribution does not take --limit"),
    ("data_quality", {"since": "2021-01-01"}, "report data_quality does not take --since (it takes no filters)"),
    ("top_providers", {"provider": "alpha.com"}, "does not take --provider"),
    ("top_articles", {"colour": "red"}, "unknown filter 'colour'"),
])
def test_bad_values_are_one_line_errors(wh, name, filters, message):
    with pytest.raises(reports.ReportError) as e:
        reports.run(wh, name, **filters)
    assert message in str(e.value) and "\n" not in str(e.value)


# -- SQL injection --------------------------------------------------------------------------------

HOSTILE = {
    "provider": ["x' OR 1=1 --", "alpha.com' OR '1'='1", "'; DROP VIEW provider_stats; --", "alpha.com\"; --"],
    "topic": ["AI' OR '1'='1", "AI'); DROP TABLE articles; --", "%", "*"],
    "since": ["2021-01-01' OR 1=1 --", "2021-01-01; DROP TABLE articles"],
    "until": ["2021-12-31') OR TRUE --"],
    "min_articles": ["0 OR 1=1", "1; DROP TABLE articles"],
    "limit": ["1 UNION SELECT * FROM source_files", "10; DROP TABLE articles"],
}


def _state(wh) -> dict:
    con = newsetl.connect(wh)
    try:
        counts = {t: con.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                  for t in ("articles", "images", "related_links", "providers", "source_files", "data_issues",
                            "provider_stats", "top_articles")}
    finally:
        con.close()
    files = {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(Path(wh).rglob("*")) if p.is_file() and p.suffix in (".parquet", ".duckdb")}
    return {"counts": counts, "files": files}


def test_sql_injection_through_every_filter_changes_nothing(wh):
    before = _state(wh)
    con = newsetl.connect(wh)
    try:
        for name, report in reports.REPORTS.items():
            for key in report.filters:
                for value in HOSTILE[key]:
                    if key in ("provider", "topic"):
                        # bound as a value: matches nothing, exactly like an unknown provider or topic
                        got = reports.run(con, name, **{key: value})
                        nothing = reports.run(con, name, **{key: "no-such-value.example"})
                        assert got.equals(nothing), (name, key, value)
                    else:
                        with pytest.raises(reports.ReportError):
                            reports.run(con, name, **{key: value})
        assert con.sql("SELECT count(*) FROM provider_stats").fetchall() == [(6,)]
    finally:
        con.close()
    assert _state(wh) == before


def test_hostile_provider_returns_nothing_and_drops_nothing(wh):
    assert reports.run(wh, "provider_stats", provider="x' OR 1=1 --").num_rows == 0
    assert reports.run(wh, "top_articles", provider="x' OR 1=1 --").num_rows == 0
    assert reports.run(wh, "top_articles").num_rows == 13


# -- exports ------------------------------------------------------------------------------------

def test_export_all(wh, tmp_path):
    out = bundle.export_all(wh, tmp_path / "out")
    assert set(out) == set(reports.REPORTS) | {"report.html"}
    for name, w in out.items():
        assert Path(w["path"]).exists()
        if name != "report.html":
            assert w["rows"] == reports.run(wh, name).num_rows
            assert Path(w["path"]).name == f"{name}.csv"
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_export_all_parquet_with_filters(wh, tmp_path):
    out = bundle.export_all(wh, tmp_path, "parquet", html=False, provider="gamma.net")
    import pyarrow.parquet as pq

    assert pq.read_table(out["top_articles"]["path"]).num_rows == 2  # filtered
    assert pq.read_table(out["top_providers"]["path"]).num_rows == 5  # takes no --provider: everything
    with pytest.raises(reports.ReportError):
        bundle.export_all(wh, tmp_path, "xlsx")


# -- the CLI ------------------------------------------------------------------------------------

def report_cli(capsys, *argv):
    code = cli.main(["report", *(str(a) for a in argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_list(capsys):
    code, out, _ = report_cli(capsys, "--list")
    assert code == 0
    for name, r in reports.REPORTS.items():
        assert name in out
    assert "filters: --since --until --provider --topic --min-articles --limit" in out


def test_cli_table_on_the_terminal(capsys, wh):
    code, out, _ = report_cli(capsys, "top_providers", "--warehouse", wh, "--limit", "2")
    assert code == 0 and "alpha.com" in out and "beta.org" in out and "gamma.net" not in out


def test_cli_out_csv_and_json(capsys, wh, tmp_path):
    code, _, err = report_cli(capsys, "provider_stats", "--warehouse", wh, "--since", "2021-01-01", "--out", tmp_path / "p.csv")
    assert code == 0 and "wrote 5 rows" in err  # epsilon (undated) drops out with a date bound
    assert (tmp_path / "p.csv").read_bytes().startswith(b"provider_domain,provider_name,articles,")
    code, out, _ = report_cli(capsys, "top_articles", "--warehouse", wh, "--provider", "delta.io", "--format", "json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["quality"] == 189 and row["published_at"] == "2021-02-28T23:30:00Z"


@pytest.mark.parametrize("argv, code, message", [
    (["nope"], 2, "unknown report 'nope'"),
    (["top_articles", "--since", "2021-13-01"], 2, "--since '2021-13-01' is not a date"),
    (["top_articles", "--until", "not a date"], 2, "--until 'not a date' is not a date"),
    (["top_articles", "--limit", "ten"], 2, "--limit 'ten' is not a whole number"),
    (["quality_distribution", "--min-articles", "3"], 2, "does not take --min-articles"),
    ([], 2, "name a report, or use --list, --all or --html"),
    (["top_articles", "--all"], 2, "use one of NAME, --list, --all, --html"),
    (["--all"], 2, "--all needs --out-dir DIR"),
    (["top_articles", "--out", "x.txt"], 2, "cannot tell the format of x.txt"),
])
def test_cli_errors_are_one_line(capsys, wh, argv, code, message):
    got, out, err = report_cli(capsys, *argv, "--warehouse", wh)
    assert got == code
    assert err.count("\n") == 1 and err.startswith("newsetl report: error: ") and message in err, err
    assert out == ""


def test_cli_without_a_warehouse(capsys, tmp_path):
    code, _, err = report_cli(capsys, "top_providers", "--warehouse", tmp_path / "none")
    assert code == 1 and err.count("\n") == 1 and "no warehouse at" in err


def test_cli_all_out_dir(capsys, wh, tmp_path):
    code, _, err = report_cli(capsys, "--all", "--out-dir", tmp_path / "all", "--warehouse", wh, "--provider", "alpha.com")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(
        [f"{n}.csv" for n in reports.REPORTS] + ["report.html"])
    assert "note: top_providers does not take --provider" in err
    assert f"wrote {len(reports.REPORTS) + 1} files" in err


def test_cli_html(capsys, wh, tmp_path):
    code, _, err = report_cli(capsys, "--html", tmp_path / "r.html", "--warehouse", wh, "--topic", "AI")
    assert code == 0 and (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_cli_in_a_real_process(wh, tmp_path):
    ok = newsetl_cli("report", "top_articles", "--warehouse", str(wh), "--topic", "Security",
                     "--out", str(tmp_path / "t.csv"))
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "t.csv").read_text().count("\n") == 1 + 3
    bad = newsetl_cli("report", "top_articles", "--warehouse", str(wh), "--since", "last week")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "is not a date" in bad.stderr


# -- the Prefect flow ---------------------------------------------------------------------------

FLOW_SCRIPT = """
import json, sys
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
from newsetl.flows import news_reports
state = news_reports(warehouse=sys.argv[1], out_dir=sys.argv[2], return_state=True)
out = state.result()

def artifact(key):  # this flow run's (the server is shared)
    with get_client(sync_client=True) as client:
        (art,) = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    return art

art, summary = artifact("news-reports-top-providers"), artifact("news-reports-summary")
print(json.dumps({"out": out, "type": art.type, "data": art.data, "summary": summary.data}))
"""


@pytest.mark.integration
def test_news_reports_flow(wh, tmp_path, prefect_server):
    # in its own process, with a throwaway Prefect home, on the session's Prefect server: Prefect's
    # logging stays out of the test process
    url, _home = prefect_server
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_API_URL=url, PREFECT_LOGGING_LEVEL="WARNING")
    res = subprocess.run([sys.executable, "-c", FLOW_SCRIPT, str(wh), str(tmp_path / "flow")],
                         capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    out = got["out"]
    assert set(out) == set(reports.REPORTS) | {"report.html"}
    assert out["top_articles"]["rows"] == 13 and Path(out["report.html"]["path"]).exists()
    assert Path(out["provider_stats"]["path"]).read_text().startswith("provider_domain,")
    assert got["type"] == "markdown"
    assert "| 1 | alpha.com | Alpha News | 5 |" in got["data"]
    assert "| 3 | gamma.net | @SUM(1+1) | 2 |" in got["data"]
    # the page's headline, counted from the fixture: 13 articles from 5 providers
    assert "**13 articles** from **5 providers**" in got["summary"]


def test_markdown_artifact_escapes_hostile_names():
    from newsetl.flows import top_providers_markdown

    md = top_providers_markdown(
        [{"provider_domain": "x.com", "provider_name": "a|b <script>\n# h", "articles": 1, "avg_quality": 1.5,
          "median_quality": None, "avg_heat_rated": None, "published_pct": 100.0}], {}, "out")
    row = [line for line in md.splitlines() if line.startswith("| 1 |")][0]
    assert len(re.findall(r"(?<!\\)\|", row)) == 9 and "<script>" not in md and "a\\|b \\<script\\> \\# h" in row


def test_reports_never_open_the_catalog_file_for_writing(wh):
    # reports read through an in-memory connection: a shell holding news.duckdb does not block them
    import duckdb

    held = duckdb.connect(str(Warehouse(wh).catalog))
    try:
        assert reports.run(wh, "top_providers").num_rows == 5
    finally:
        held.close()
