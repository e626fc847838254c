"""Listing a prefix of S3 by key ranges (objectstore.find_all), against a real S3 API server
(moto, started by conftest): the same objects with the same details as one chain of LIST
requests (s3fs's find), each listed once, several ranges at once, and one request for a
prefix of less than a page."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from newsetl import objectstore

from .helpers import examples

pytestmark = pytest.mark.timeout(600)


def fresh_fs():
    """An S3 filesystem of the test's own (the process's shared one is left alone), reading the
    server's settings from the environment as newsetl's does."""
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)


class Counting:
    """Counts what a listing does on `fs`: LIST requests, the most in flight at once, and
    every object it takes into its result (s3fs's `_fill_info` fills each one's details)."""

    def __init__(self, fs, monkeypatch):
        self.lists, self.now, self.most, self.taken = [], 0, 0, []
        call, fill = fs._call_s3, fs._fill_info

        async def counted(method, *args, **kw):
            if method != "list_objects_v2":
                return await call(method, *args, **kw)
            self.lists.append(kw)
            self.now += 1
            self.most = max(self.most, self.now)
            try:
                return await call(method, *args, **kw)
            finally:
                self.now -= 1

        def filled(f, bucket, versions=False):
            fill(f, bucket, versions=versions)
            self.taken.append(f["name"])

        monkeypatch.setattr(fs, "_call_s3", counted)
        monkeypatch.setattr(fs, "_fill_info", filled)


def listed_by_ranges(fs, prefix: str, monkeypatch, page: int = objectstore.LIST_PAGE):
    """find_all's result, after checking it against s3fs's one chain; what it cost."""
    want = fs.find(prefix, detail=True)
    with monkeypatch.context() as m:
        seen = Counting(fs, m)
        got = objectstore.find_all(fs, prefix, page=page)
    assert list(got) == list(want)  # the same names in the same order ...
    assert got == want  # ... with the same details (size, ETag, LastModified, type ...)
    assert sorted(seen.taken) == sorted(got)  # each object listed once
    return got, seen


def mixed_names(n: int) -> list[str]:
    """Keys of the shapes a flat folder holds: dated records, numbers, hashes, and odd names."""
    r = random.Random(11)
    out = {f"{dt.date(2019, 1, 1) + dt.timedelta(days=r.randrange(900))}-news-{i}.md" for i in range(n // 2)}
    out |= {f"{i:06d}.md" for i in range(n // 5)}
    out |= {f"{r.getrandbits(64):016x}" for _ in range(n // 5)}
    odd = ["[abc].md", "*.md", "?.md", "a b.md", " lead", "é.md", "漢字.md", "😀", "ÿ", "~", "-", "_x", "Z.md",
           "", "marker/", "nested/", "nested/a.md", "nested//b.md", "nested/deep/c.md"]
    out |= set(odd)
    out |= {f"big/{r.getrandbits(40):010x}.md" for _ in range(n - len(out))}  # a sub-prefix of its own
    return sorted(out)


@pytest.fixture(scope="module")
def flat_prefix(s3_server) -> tuple[str, int]:
    """3,000 small objects under one prefix (putting them takes most of this module's time)."""
    fs = fresh_fs()
    fs.mkdir("listing-flat")
    names = mixed_names(3000)
    for i in range(0, len(names), 1000):
        fs.pipe({f"listing-flat/in/{k}": k.encode() for k in names[i:i + 1000]})
    return "listing-flat/in/", len(names)


def test_a_flat_prefix_is_listed_by_concurrent_ranges_as_one_chain_lists_it(flat_prefix, monkeypatch):
    prefix, n = flat_prefix
    fs = fresh_fs()
    got, seen = listed_by_ranges(fs, prefix, monkeypatch)
    assert len(got) == n
    chain = -(-n // objectstore.LIST_PAGE)  # one chain: a request a page, one after another
    # the first page, then ranges at once (each sub-prefix on its own chain as before)
    assert seen.most >= 4, (seen.most, len(seen.lists))
    assert len(seen.lists) <= 15 * chain, len(seen.lists)  # what the guesses cost (27 when written)
    # with 40 keys a page: many more ranges, still every object once
    got, seen = listed_by_ranges(fs, prefix, monkeypatch, page=40)
    assert seen.most >= 16 and len(got) == n
    started = {kw.get("StartAfter") for kw in seen.lists if "StartAfter" in kw}
    assert len(started) >= 40  # ranges begun at many places
    assert len(seen.lists) <= 6 * -(-n // 40), len(seen.lists)  # one chain: 75 requests (317 when written)


def test_a_prefix_of_less_than_a_page_costs_one_request(s3_server, bucket, monkeypatch):
    client = s3_server.client()
    for k in ["a.md", "[b].md", "c d.md", "é.md"]:
        client.put_object(Bucket=bucket, Key=f"small/{k}", Body=b"x")
    fs = fresh_fs()
    with s3_server.recording() as requests:
        got, seen = listed_by_ranges(fs, f"{bucket}/small/", monkeypatch)
    assert len(got) == 4 and len(seen.lists) == 1
    lists = [p for method, p in requests if method == "GET" and p.rstrip("/") == f"/{bucket}"]
    assert len(lists) == 2  # as the server saw them: s3fs's find, and find_all's one request
    # a folder of sub-folders: the first level, then each sub-folder, as before
    for k in ["n/2020/a.md", "n/2021/b.md", "n/top.md"]:
        client.put_object(Bucket=bucket, Key=k, Body=b"x")
    got, seen = listed_by_ranges(fs, f"{bucket}/n/", monkeypatch)
    assert len(got) == 3 and len(seen.lists) == 3
    # nothing under a prefix: not found, as s3fs's ls says
    with pytest.raises(FileNotFoundError):
        objectstore.find_all(fs, f"{bucket}/nothing/")


def test_a_failed_range_fails_the_listing_with_its_own_error(s3_server, bucket, monkeypatch):
    """One range's failure (access denied, say) is raised as itself, so errors_as can name it."""
    client = s3_server.client()
    for i in range(30):
        client.put_object(Bucket=bucket, Key=f"f/{i:03d}.md", Body=b"x")
    fs = fresh_fs()
    call, count = fs._call_s3, itertools.count()

    async def failing(method, *args, **kw):
        if method == "list_objects_v2" and next(count) == 3:
            raise PermissionError("AccessDenied: no LIST for you")
        return await call(method, *args, **kw)

    monkeypatch.setattr(fs, "_call_s3", failing)
    with pytest.raises(PermissionError, match="AccessDenied"):
        objectstore.find_all(fs, f"{bucket}/f/", page=4)
    assert objectstore.describe(PermissionError("AccessDenied"), "s3://x").startswith("access denied")


# keys of any characters S3 orders by their UTF-8 bytes (glob characters, spaces, separators,
# letters past ASCII), several sharing stems so that some ranges are crowded and others empty
_CHARS = st.sampled_from(list("0129aAzZ-_./ []*?!~") + ["é", "ÿ", "漢", "😀", "\u0100"])
_NAME = st.text(_CHARS, max_size=7)


@st.composite
def _names(draw):
    stems = draw(st.lists(_NAME, min_size=1, max_size=4))
    names = draw(st.lists(st.tuples(st.sampled_from(stems), _NAME).map("".join), min_size=1, max_size=40,
                          unique=True))
    # (a `.` or `..` segment would name another key once the URL is resolved)
    return [n for n in names if not {".", ".."} & set(n.split("/"))] or ["x"]


_example = itertools.count()


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=_names(), page=st.integers(2, 8))
@example(names=["a", "b", "c/", "c/d", "e"], page=3)  # the first page ends at a folder that has a marker object
def test_ranges_list_any_keys_as_one_chain_lists_them(s3_server, bucket, monkeypatch, names, page):
    client = s3_server.client()
    base = f"p{next(_example)}/"
    for n in names:
        client.put_object(Bucket=bucket, Key=base + n, Body=n.encode())
    got, _ = listed_by_ranges(fresh_fs(), f"{bucket}/{base}", monkeypatch, page=page)
    assert set(got) == {f"{bucket}/{base}{n}" for n in names}
