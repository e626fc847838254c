"""Hostile input, one named case each: every case is a record (or a file-system
entry) beside a good record, run through the real `newsetl run` as a user would.

Every case must: exit 0, print no traceback, load the good record, and either
load the hostile record with the right NULLs and data issues (raw value as
written) or reject it with a one-line error that names the problem. The
property tests (test_properties.py) cover the space around these cases; every
failure they found is kept here as a named case.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import newsetl
from newsetl.parse import parse_batch
from newsetl.plan import BatchSpec
from newsetl.sources import RejectedFile, discover, os_name, read_file, rejected_size

from .helpers.cli import newsetl_cli
from .helpers.records import GOOD, record

NEWSETL = Path(sys.executable).with_name("newsetl")


def run_site(tmp_path: Path, files: dict[str, str | bytes], **env) -> tuple[subprocess.CompletedProcess, Path]:
    site = tmp_path / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "good.md").write_text(GOOD)
    for name, text in files.items():
        p = site / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text.encode() if isinstance(text, str) else text)
    wh = tmp_path / "wh"
    proc = newsetl_cli("run", str(site), "--warehouse", str(wh), "--no-prefect", "-q", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc, wh


def rows(wh: Path, sql: str, *params) -> list[tuple]:
    con = newsetl.connect(wh)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def good_loaded(wh: Path) -> bool:
    return rows(wh, "SELECT status FROM source_files WHERE source_path = 'site/good.md'") == [("loaded",)]


def issues(wh: Path, name: str = "bad.md") -> list[tuple]:
    return rows(wh, "SELECT field, raw_value, problem FROM data_issues WHERE source_path = ? ORDER BY field, raw_value",
                f"site/{name}")


def rejected(wh: Path, name: str = "bad.md") -> str | None:
    got = rows(wh, "SELECT status, error FROM source_files WHERE source_path = ?", f"site/{name}")
    assert len(got) == 1, got
    status, error = got[0]
    assert (status == "rejected") == (error is not None)
    assert error is None or "\n" not in error
    return error


# -- values the warehouse cannot hold load as NULL, the raw value kept -------------------------
# One site holds every named case of this part, run once (a run per case would take minutes).

VALUES = {  # name: (line, field, raw value, problem, column, value)
    "day-30-feb": ("publishedDateTime: 2021-02-30T00:00:00Z", "publishedDateTime", "2021-02-30T00:00:00Z",
                   "not a valid date: day is out of range for month", "published_at", None),
    "hour-24": ("publishedDateTime: 2021-01-01T24:00:00Z", "publishedDateTime", "2021-01-01T24:00:00Z",
                "not a valid date: hour must be in 0..23", "published_at", None),
    "int-70-bits": ("quality: 1180591620717411303424", "quality", "1180591620717411303424", "integer beyond 64 bits",
                    "quality", None),
    "nan": ("quality: .nan", "quality", ".nan", "not a finite number", "quality", None),
    "minus-inf": ("heat: -.Inf", "heat", "-.Inf", "not a finite number", "heat", None),
    "overflow-float": ("quality: 1.0e+999", "quality", "1.0e+999", "not a finite number", "quality", None),
    "past-9999-quoted": ('publishedDateTime: "9999-12-31T23:59:59-14:00"', "publishedDateTime",
                         "9999-12-31T23:59:59-14:00", "date outside the years 1-9999 in UTC", "published_at", None),
    "past-9999": ("publishedDateTime: 9999-12-31T23:59:59-14:00", "publishedDateTime", "9999-12-31T23:59:59-14:00",
                  "date outside the years 1-9999 in UTC", "published_at", None),
}

CAPS = {  # name: (line, the error starts with)
    "nested-300": ("x: " + "[" * 300 + "]" * 300, "nesting deeper than 100 levels (the cap per record), at line 4"),
    "nested-5000": ("x: " + "[" * 5000 + "]" * 5000,
                    "invalid YAML at line 4, column 1003: exceeded maximum nesting depth"),
    "alias-to-1MiB": ("s: &a " + "x" * (1 << 20) + "\nl: [" + ", ".join(["*a"] * 2000) + "]",
                      "alias bomb: with its aliases expanded, the record has more than 50,331,648 characters of text "
                      "(the cap per record)"),
    "alias-cycle": ("a: &a [1, *a]",
                    "invalid YAML at line 4, column 11: the alias *a refers to a node that contains it (a cycle)"),
    "nul-byte": ('x: "a\x00b"', "invalid YAML at line 4, column 6: unacceptable character #x0000"),
}


@pytest.fixture(scope="module")
def named(tmp_path_factory) -> Path:
    files = {f"{name}.md": record(name, case[0]) for name, case in {**VALUES, **CAPS}.items()}
    _, wh = run_site(tmp_path_factory.mktemp("named"), files)
    assert good_loaded(wh)
    return wh


@pytest.mark.parametrize("name", VALUES)
def test_a_value_that_cannot_be_held_loads_as_null_with_its_raw_text(named, name):
    _line, field, raw, problem, column, value = VALUES[name]
    assert rejected(named, f"{name}.md") is None
    assert issues(named, f"{name}.md") == [(field, raw, problem)]
    assert rows(named, f"SELECT {column} FROM articles WHERE source_path = ?", f"site/{name}.md") == [(value,)]


@pytest.mark.parametrize("name", CAPS)
def test_a_record_past_a_cap_is_rejected_with_the_cap_named(named, name):
    assert rejected(named, f"{name}.md").startswith(CAPS[name][1])


def test_the_same_at_any_depth_in_unknown_keys_and_related_links(tmp_path):
    bad = record("bad", "lastSeen: 2021-13-01\nseen:\n  - at: [1, 2021-02-30]\n    n: 99999999999999999999\n"
                        "related:\n  - webUrl: https://r.example/1\n    quality: 1180591620717411303424\n"
                        "    publishedDateTime: 2021-02-30T10:00:00Z\n    mood: .nan\n")
    _, wh = run_site(tmp_path, {"bad.md": bad})
    assert good_loaded(wh)
    assert issues(wh) == [
        ("lastSeen", "2021-13-01", "not a valid date: month must be in 1..12"),
        ("related[0].mood", ".nan", "not a finite number"),
        ("related[0].publishedDateTime", "2021-02-30T10:00:00Z", "not a valid date: day is out of range for month"),
        ("related[0].quality", "1180591620717411303424", "integer beyond 64 bits"),
        ("seen[0].at[1]", "2021-02-30", "not a valid date: day is out of range for month"),
        ("seen[0].n", "99999999999999999999", "integer beyond 64 bits"),
    ]
    extra = json.loads(rows(wh, "SELECT extra FROM articles WHERE source_path = 'site/bad.md'")[0][0])
    assert extra == {"lastSeen": None, "seen": [{"at": [1, None], "n": None}], "related": [{"mood": None}]}
    assert rows(wh, "SELECT url, quality, published_at FROM related_links") == [("https://r.example/1", None, None)]


@pytest.mark.slow
def test_values_without_a_json_form_get_one_deterministic_form(tmp_path):
    bad = record("bad", "tags: !!set {delta, beta, alpha, gamma}\nblob: !!binary |\n  aGVs\n  bG8=\n"
                        "steps: !!omap [one: 1, two: 2]")
    forms = set()
    for seed in ("1", "2", "3"):  # a set's order must not follow the hash seed
        _, wh = run_site(tmp_path / seed, {"bad.md": bad}, PYTHONHASHSEED=seed)
        forms.add(rows(wh, "SELECT extra FROM articles WHERE source_path = 'site/bad.md'")[0][0])
    assert len(forms) == 1
    assert json.loads(forms.pop()) == {"tags": ["alpha", "beta", "delta", "gamma"], "blob": "aGVsbG8=",
                                       "steps": [["one", 1], ["two", 2]]}


# -- extra loses nothing -------------------------------------------------------------------------

def test_keys_that_used_to_collide_are_all_kept(tmp_path):
    bad = record("bad", 'provider.x: 1\nprovider: {name: P, domain: p.example, x: 2}\n1: a\n"1": b\ntrue: c\n'
                        '"True": d\n1.0: e\n"!x": f\nnull: g')
    _, wh = run_site(tmp_path, {"bad.md": bad})
    extra = json.loads(rows(wh, "SELECT extra FROM articles WHERE source_path = 'site/bad.md'")[0][0])
    assert extra == {"provider.x": 1, "!!int 1": "a", "1": "b", "!!bool true": "c", "True": "d",
                     "!!float 1.0": "e", "!!str !x": "f", "!!null": "g", "provider": {"x": 2}}
    assert issues(wh) == []


def test_keys_that_are_not_strings_in_related_items_load(tmp_path):
    """Found by Hypothesis (test_incremental_runs_equal_a_rebuild): a related item with a key YAML
    reads as a bool was rejected with "could not flatten this file" (its list's digest)."""
    bad = record("bad", "related:\n  - webUrl: https://r.example/0\n    true: []\n    1: x\n    null: y\n"
                        "    images: [{url: https://r/i, 2021-01-01: z}]")
    _, wh = run_site(tmp_path, {"bad.md": bad})
    assert rows(wh, "SELECT status, error FROM source_files WHERE source_path = 'site/bad.md'") == [("loaded", None)]
    assert rows(wh, "SELECT url FROM related_links") == [("https://r.example/0",)]
    extra = json.loads(rows(wh, "SELECT extra FROM articles WHERE source_path = 'site/bad.md'")[0][0])
    assert extra == {"related": [{"!!bool true": [], "!!int 1": "x", "!!null": "y",
                                  "images": [{"!!timestamp 2021-01-01": "z"}]}]}


def test_unknown_keys_nest_as_in_the_record(tmp_path):
    bad = record("bad", "provider:\n  name: P\n  domain: p.example\n  images:\n    - url: https://l/1\n      alt: logo\n"
                        "images:\n  - url: https://i/1\n  - url: https://i/2\n    focus: top\n"
                        "related:\n  - webUrl: https://r/1\n    provider: {name: R, domain: r.example, tier: 2}\n"
                        "    images: [{url: https://r/i, crop: [1, 2]}]")
    _, wh = run_site(tmp_path, {"bad.md": bad})
    extra = json.loads(rows(wh, "SELECT extra FROM articles WHERE source_path = 'site/bad.md'")[0][0])
    assert extra == {"provider": {"images": [{"alt": "logo"}]}, "images": [None, {"focus": "top"}],
                     "related": [{"provider": {"tier": 2}, "images": [{"crop": [1, 2]}]}]}


def test_a_key_given_twice_and_null_items_are_issues(tmp_path):
    bad = record("bad", "heat: 3\nheat: 4\ntopics: [AI, null, ML]\nimages:\n  - null\n  - url: https://i/1\n"
                        "related:\n  - null\n  - webUrl: https://r/1\n    title: first\n    title: second\n"
                        "    images: [null]")
    _, wh = run_site(tmp_path, {"bad.md": bad})
    dup = "duplicate key: this value is dropped, a later one is kept"
    null = "empty list item (null): skipped"
    assert issues(wh) == [("heat", "3", dup), ("images[0]", "null", null), ("related[0]", "null", null),
                          ("related[1].images[0]", "null", null), ("related[1].title", "first", dup),
                          ("topics[1]", "null", null)]
    assert rows(wh, "SELECT heat, topics, image_count, related_count FROM articles "
                    "WHERE source_path = 'site/bad.md'") == [(4, ["AI", "ML"], 1, 1)]
    assert rows(wh, "SELECT position, title FROM related_links") == [(1, "second")]


# -- records past a cap are rejected with the cap named; real large ones load ---------------------

@pytest.mark.slow
def test_a_file_past_the_size_cap_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "site" / "big.md"
    big.parent.mkdir()
    with open(big, "wb") as fh:  # sparse: 49 MiB that take no disk
        fh.write(record("big", "").encode())
        fh.truncate(49 << 20)
    proc, wh = run_site(tmp_path, {})
    assert rejected(wh, "big.md") == "file too large: 51,380,224 bytes, the cap per record is 50,331,648"
    # what is known of it: its real size, and no hash of bytes that were never read (issue 20)
    assert rows(wh, "SELECT bytes, sha256 FROM source_files WHERE source_path = 'site/big.md'") == [(49 << 20, None)]
    # unchanged, it is not read again, nor counted as changed
    again = newsetl_cli("run", str(tmp_path / "site"), "--warehouse", str(wh), "--no-prefect")
    assert again.returncode == 0, again.stderr
    assert "2 files (0 new, 0 changed, 2 unchanged, 0 deleted" in again.stdout
    assert rows(wh, "SELECT files_parsed FROM runs ORDER BY started_at") == [(2,), (0,)]
    assert rows(wh, "SELECT bytes, sha256, error FROM source_files WHERE source_path = 'site/big.md'") == [
        (49 << 20, None, "file too large: 51,380,224 bytes, the cap per record is 50,331,648")]
    # grown, it is looked at again, and its new size recorded
    with open(tmp_path / "site" / "big.md", "r+b") as fh:
        fh.truncate(50 << 20)
    third = newsetl_cli("run", str(tmp_path / "site"), "--warehouse", str(wh), "--no-prefect")
    assert "(0 new, 1 changed, 1 unchanged" in third.stdout, third.stdout
    assert rows(wh, "SELECT bytes, sha256 FROM source_files WHERE source_path = 'site/big.md'") == [(50 << 20, None)]


@pytest.mark.slow
def test_every_rejection_before_reading_records_no_fake_hash(tmp_path):
    """Rejected before its bytes were read: sha256 NULL (never the empty file's hash), bytes the
    real size where known; rejected for its content: the hash and size of what was read. The
    same rejections again count as unchanged."""
    site = tmp_path / "site"
    site.mkdir()
    os.mkfifo(site / "fifo.md")
    os.symlink("nowhere.md", site / "dangling.md")
    _, wh = run_site(tmp_path, {"bad.md": "no front matter\n", "empty.md": ""})
    got = {p: (b, h) for p, b, h in rows(wh, "SELECT source_path, bytes, sha256 FROM source_files")}
    assert got["site/fifo.md"] == (None, None)
    assert got["site/dangling.md"] == (None, None)
    assert got["site/bad.md"] == (16, hashlib.sha256(b"no front matter\n").hexdigest())
    assert got["site/empty.md"] == (0, hashlib.sha256(b"").hexdigest())  # read, and empty: its true hash
    again = newsetl_cli("run", str(site), "--warehouse", str(wh), "--no-prefect")
    assert "5 files (0 new, 0 changed, 5 unchanged, 0 deleted" in again.stdout, again.stdout


def test_a_file_that_grew_past_the_cap_after_listing_keeps_its_real_size(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "grows.md").write_text(record("grows", ""))
    [listed] = discover([site])
    with open(site / "grows.md", "r+b") as fh:
        fh.truncate(1000)
    with pytest.raises(RejectedFile) as e:
        read_file(listed, cap=500)
    assert str(e.value) == "file too large: 1,000 bytes, the cap per record is 500"
    assert rejected_size(listed, e.value) == 1000


@pytest.mark.slow
def test_a_large_real_shaped_record_with_a_harmless_alias_loads(tmp_path):
    links = "".join(f"  - webUrl: https://r.example/{i}\n    title: Link {i}\n    quality: {i % 190}\n"
                     for i in range(50_000))
    bad = record("bad", "src: &s shared\ncopy: *s\nrelated:\n" + links)
    _, wh = run_site(tmp_path, {"bad.md": bad})
    assert rejected(wh) is None
    assert rows(wh, "SELECT related_count, extra FROM articles WHERE source_path = 'site/bad.md'") == [
        (50_000, '{"src":"shared","copy":"shared"}')]
    assert rows(wh, "SELECT count(*), sum(quality) FROM related_links") == [(50_000, sum(i % 190 for i in range(50_000)))]


# -- the file system ----------------------------------------------------------------------------------

def test_links_special_files_and_odd_names(tmp_path):
    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "out.md").write_text(record("out", ""))
    (site / "sub" / "inner.md").write_text(record("inner", ""))
    os.symlink("self.md", site / "self.md")
    os.symlink("nowhere.md", site / "dangling.md")
    os.symlink("../outside/out.md", site / "leaves.md")
    os.symlink("../outside", site / "outdir")
    os.symlink("good.md", site / "alias.md")  # inside: followed, a duplicate of good.md
    os.symlink("sub", site / "subagain")  # a folder reached twice is read once, under its own path
    os.symlink("..", site / "sub" / "up")  # a loop back to the root
    os.mkfifo(site / "fifo.md")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(site / "sock.md"))
    odd = os.fsdecode(b"caf\xe9-\xff.md")  # not UTF-8
    (site / odd).write_text(record("latin", ""))
    (site / "back\\slash.md").write_text(record("backslash", ""))
    try:
        _, wh = run_site(tmp_path, {})
    finally:
        sock.close()
    got = dict(rows(wh, "SELECT source_path, coalesce(error, status) FROM source_files"))
    assert got == {
        "site/good.md": "loaded",
        "site/alias.md": "duplicate",
        "site/sub/inner.md": "loaded",
        "site/caf\\xe9-\\xff.md": "loaded",
        "site/back\\\\slash.md": "loaded",
        "site/self.md": "symbolic link not followed: a loop",
        "site/dangling.md": "symbolic link not followed: dangling",
        "site/leaves.md": "symbolic link not followed: its target is outside the input folder",
        "site/outdir/": "symbolic link not followed: its target is outside the input folder",
        "site/fifo.md": "not a regular file: a FIFO",
        "site/sock.md": "not a regular file: a socket",
    }
    assert os_name("caf\\xe9-\\xff.md") == odd and os_name("back\\\\slash.md") == "back\\slash.md"


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_a_device_is_listed_not_read(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    os.mknod(site / "zero.md", stat.S_IFCHR | 0o644, os.makedev(1, 5))  # /dev/zero: reading would never end
    _, wh = run_site(tmp_path, {})
    assert rejected(wh, "zero.md") == "not a regular file: a character device"


@pytest.mark.timeout(60)
def test_a_file_that_becomes_a_fifo_after_listing_is_rejected_not_waited_for(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "turns.md").write_text(record("turns", ""))
    (site / "good.md").write_text(GOOD)
    files = discover([site])
    (site / "turns.md").unlink()
    os.mkfifo(site / "turns.md")  # nobody will ever write to it
    spec = BatchSpec("b", "r", str(tmp_path / "staging"), [(f, None) for f in files])
    result = parse_batch(spec)
    got = dict(zip(result.files.column("source_path").to_pylist(), result.files.column("error").to_pylist()))
    assert got == {"site/good.md": None, "site/turns.md": "not a regular file: a FIFO"}


SETPRIV = shutil.which("setpriv")


def run_as_a_user(site, wh) -> subprocess.CompletedProcess:
    """`newsetl run` as root without the capabilities that bypass file permissions: a user's view."""
    return subprocess.run([SETPRIV, "--bounding-set=-dac_override,-dac_read_search", str(NEWSETL), "run",
                           str(site), "--warehouse", str(wh), "--no-prefect", "-q"],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(os.geteuid() != 0 or SETPRIV is None,
                    reason="needs root and setpriv to run newsetl without the power to read anything")
def test_unreadable_folders_and_files_as_a_user_without_privileges(tmp_path):
    site = tmp_path / "site"
    (site / "locked").mkdir(parents=True)
    (site / "locked" / "x.md").write_text(record("x", ""))
    (site / "good.md").write_text(GOOD)
    (site / "secret.md").write_text(record("secret", ""))
    (site / "secret.md").chmod(0)
    (site / "locked").chmod(0)
    wh = tmp_path / "wh"
    try:
        proc = run_as_a_user(site, wh)
    finally:
        (site / "locked").chmod(0o755)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert dict(rows(wh, "SELECT source_path, coalesce(error, status) FROM source_files")) == {
        "site/good.md": "loaded",
        "site/locked/": "cannot list folder: Permission denied",
        "site/secret.md": "cannot read file: Permission denied",
    }


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or SETPRIV is None,
                    reason="needs root and setpriv to run newsetl without the power to read anything")
def test_a_folder_that_is_listed_but_cannot_be_entered_is_reported_not_dropped(tmp_path):
    """A folder readable but not searchable (r, no x) lists its entries' names, but nothing in it
    can be looked at: its subfolder's records were dropped without a word (issue 20)."""
    site = tmp_path / "site"
    (site / "noexec" / "inner").mkdir(parents=True)
    (site / "noexec" / "inner" / "x.md").write_text(record("x", ""))
    (site / "noexec" / "y.md").write_text(record("y", ""))
    (site / "good.md").write_text(GOOD)
    (site / "noexec").chmod(0o644)
    wh = tmp_path / "wh"
    try:
        proc = run_as_a_user(site, wh)
    finally:
        (site / "noexec").chmod(0o755)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert dict(rows(wh, "SELECT source_path, coalesce(error, status) FROM source_files")) == {
        "site/good.md": "loaded",
        "site/noexec/inner/": "cannot list folder: Permission denied",
        "site/noexec/y.md": "cannot read file: Permission denied",
    }


def _deep_file(root: Path, depth: int, name: str, data: bytes) -> str:
    """A file `depth` folders below `root`, made relative to each folder's descriptor (its
    path is longer than the OS takes); its path inside `root`."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("dddd", dir_fd=fd)
            inner = os.open("dddd", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        out = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, data)
        os.close(out)
    finally:
        os.close(fd)
    return "dddd/" * depth + name


def _remove_deep(root: Path) -> None:
    """Remove `root/dddd/...` one level at a time, each path short: pytest's own clean-up of old
    temporary folders recurses a level per folder and would fail on it (RecursionError)."""
    top, nxt = root / "dddd", root / "next"
    while top.exists():
        if (top / "dddd").exists():
            os.rename(top / "dddd", nxt)
        for f in top.iterdir():
            f.unlink()
        top.rmdir()
        if nxt.exists():
            os.rename(nxt, top)


@pytest.fixture
def deep_site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    yield site
    _remove_deep(site)


@pytest.mark.slow
def test_a_record_deeper_than_path_max_loads(tmp_path, deep_site):
    """1,300 folders deep, its path past 4,096 characters: it was missing from source_files and
    the run said 0 rejected (issue 20). Listed and read relative to folder descriptors."""
    site = deep_site
    rel = _deep_file(site, 1300, "deep.md", record("deep", "quality: 3", url="https://site.example/deep").encode())
    assert len(str(site / rel)) > 4096
    _, wh = run_site(tmp_path, {})
    assert rows(wh, "SELECT status, bytes FROM source_files WHERE source_path = ?", f"site/{rel}") == [
        ("loaded", len(record("deep", "quality: 3", url="https://site.example/deep")))]
    assert rows(wh, "SELECT title, quality FROM articles WHERE source_path = ?", f"site/{rel}") == [("deep", 3)]
    assert rows(wh, "SELECT files_rejected FROM runs") == [(0,)]


def test_a_folder_that_cannot_be_opened_is_reported_with_every_record_accounted_for(tmp_path):
    """Out of file descriptors (a real failure of os.open, as root too): each record is listed,
    or a folder above it is listed as rejected with the reason; nothing is dropped unseen."""
    site = tmp_path / "site"
    for i in range(6):
        (site / f"a{i}" / "b" / "c").mkdir(parents=True)
        (site / f"a{i}" / "b" / "c" / "x.md").write_text(record(f"x{i}", ""))
        (site / f"a{i}" / "y.md").write_text(record(f"y{i}", ""))
    # each limit on descriptors from what the process holds up: from the root that cannot be
    # opened, through folders some of which cannot, to none
    code = f"""
import json, os, resource
from newsetl.sources import _walk
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
start = len(os.listdir("/proc/self/fd"))
out = []
for n in range(start - 1, start + 6):
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))
    out.append([[rel, problem] for rel, _path, _st, problem in _walk({str(site)!r})])
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    records = [p.relative_to(site).as_posix() for p in site.rglob("*.md")]
    partly = 0
    for walk in json.loads(proc.stdout):
        listed = dict(walk)
        failed = [rel for rel, problem in listed.items() if problem]
        assert all(listed[rel] == "cannot list folder: Too many open files" and rel.endswith("/") or rel == ""
                   for rel in failed), failed
        for rel in records:  # listed, or below a folder listed as not read
            assert rel in listed or any(rel.startswith(f) for f in failed), rel
        partly += bool(failed) and any(listed[r] is None for r in records if r in listed)
    assert partly  # some limit let the walk open some folders and not others
