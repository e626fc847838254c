"""The HTML page: self-contained, hostile values rendered as text, charts drawn; checked
as text and in a real headless Chromium (skipped where /usr/bin/chromium is absent)."""

from __future__ import annotations

import datetime as dt
import re
import struct
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

import newsetl
from newsetl import html_report

from .helpers.model import UTC

CHROMIUM = Path("/usr/bin/chromium")
GENERATED = dt.datetime(2021, 7, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def wh(reports_wh):
    return reports_wh


@pytest.fixture(scope="module")
def page(wh, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    html_report.write(wh, path, generated_at=GENERATED)
    return path


def _run_id(wh) -> str:
    con = newsetl.connect(wh)
    try:
        return con.sql("SELECT run_id FROM runs").fetchall()[0][0]
    finally:
        con.close()


# -- the page as text -----------------------------------------------------------------------------

def test_page_is_self_contained(page):
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"<script", html, re.I)
    assert not re.search(r"\ssrc\s*=", html, re.I)
    assert not re.search(r"<link|@import|url\(|<iframe|<object|<embed|<img", html, re.I)
    # the only links are article titles, to http(s) pages
    for href in re.findall(r'href="([^"]*)"', html):
        assert href.startswith(("https://", "http://")), href


def test_page_has_meta_charts_and_tables(page, wh):
    html = page.read_text(encoding="utf-8")
    assert "Generated 2021-07-01 09:30 UTC" in html
    assert f"<code>{_run_id(wh)}</code>" in html
    assert "scope: all articles" in html
    assert len(re.findall(r"<svg\b", html)) == 4  # providers, quality distribution, quality by month, articles by month
    for section in ("providers", "quality-distribution", "quality-by-month", "top-articles", "input"):
        assert f'<section id="{section}">' in html
    charts = re.findall(r"<svg\b.*?</svg>", html, re.S)
    bars = [len(re.findall(r'<rect class="bar', svg)) for svg in charts]
    # 6 provider rows (5 domains + no provider); buckets 0..180 (19) + no quality; 6 months
    assert bars == [6, 20, 0, 6]
    assert len(re.findall(r"<polyline", charts[2])) == 3  # avg, median, p90
    assert html.count("<table>") == 5


def test_hostile_values_are_text(page):
    html = page.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "@SUM(1+1)" in html  # the provider name, as text
    assert "<td class=\"title\"><a href=\"https://beta.org/b02\" rel=\"noopener noreferrer nofollow\">+cmd</a></td>" in html
    assert ">-2+3</a>" in html


def test_links_only_for_web_urls():
    t = pa.table({"title": ["<b>x</b>", "y", "z"], "url": ["javascript:alert(1)", "https://ok.example/a?b=1&c=\"2\"", None]})
    html = html_report._table(t, ["title"], link=("title", "url"))
    assert "javascript:" not in html
    assert 'href="https://ok.example/a?b=1&amp;c=&quot;2&quot;"' in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html


def test_filters_scope_the_page(wh, tmp_path):
    html = html_report.build(wh, topic="Security", generated_at=GENERATED)
    assert "scope: topic Security" in html
    charts = re.findall(r"<svg\b.*?</svg>", html, re.S)
    assert len(re.findall(r'<rect class="bar', charts[0])) == 2  # alpha (a04), gamma (g01, g02)


def test_ticks_are_round():
    assert html_report._ticks(339) == [0, 100, 200, 300, 400]
    assert html_report._ticks(7) == [0, 2, 4, 6, 8]
    assert html_report._ticks(0) == [0, 1]
    assert html_report._ticks(2, counts=True) == [0, 1, 2]  # no half articles
    assert html_report._ticks(2) == [0, 0.5, 1, 1.5, 2]
    assert html_report._ticks(190) == [0, 50, 100, 150, 200]


# -- in a real browser ------------------------------------------------------------------------------

def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if not CHROMIUM.exists():
        pytest.skip("no headless browser: /usr/bin/chromium is missing (`apt-get install chromium`; "
                    "`make test` installs it where it can)")
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def test_page_renders_in_headless_chromium(page, tmp_path):
    res = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert "<svg" in dom and len(re.findall(r"<rect class=\"bar", dom)) == 32
    # the hostile title is a text node, not an element: no script element in the rendered DOM
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert not re.search(r"<script", dom, re.I)
    assert "Top providers" in dom and "Quality by month" in dom


def test_screenshot(page, tmp_path):
    shot = tmp_path / "report.png"
    res = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars", page.as_uri())
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    assert len(data) > 50_000  # charts and tables, not a blank page
