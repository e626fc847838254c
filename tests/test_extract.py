"""Extract: discovery, front-matter splitting and safe parsing, one behaviour per test."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from newsetl.frontmatter import extract, extract_all, parse_front_matter, split_front_matter, split_record
from newsetl.sources import InputError, RejectedFile, SourceFile, discover

from .conftest import BAD_INPUT


def _ex(name: str):
    p = BAD_INPUT / name
    return extract(SourceFile(f"bad_input/{name}", str(p), name, p.stat().st_size, 0))


def test_discover_finds_md_and_markdown_and_ignores_other_files(tmp_path):
    (tmp_path / "a.md").write_text("---\ntitle: a\n---\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.markdown").write_text("---\ntitle: b\n---\n")
    (tmp_path / "notes.txt").write_text("not a record")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "c.md").write_text("---\ntitle: c\n---\n")
    files = discover([tmp_path])
    assert [f.source_path for f in files] == [f"{tmp_path.name}/a.md", f"{tmp_path.name}/sub/b.markdown"]
    assert files[1].rel_path == "sub/b.markdown"


def test_discover_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="input folder not found: .*nope"):
        discover([tmp_path / "nope"])


def test_discover_names_two_inputs_of_the_same_name_by_their_parents(tmp_path):
    for site in "ab":
        (tmp_path / site / "posts").mkdir(parents=True)
        (tmp_path / site / "posts" / "x.md").write_text("---\ntitle: t\n---\n")
    files = discover([tmp_path / "a" / "posts", tmp_path / "b" / "posts"])
    assert [f.source_path for f in files] == ["a/posts/x.md", "b/posts/x.md"]


def test_discover_rejects_two_inputs_given_the_same_name(tmp_path):
    (tmp_path / "a" / "posts").mkdir(parents=True)
    (tmp_path / "b" / "posts").mkdir(parents=True)
    with pytest.raises(InputError, match="both named 'posts'"):
        discover([f"posts={tmp_path / 'a' / 'posts'}", f"posts={tmp_path / 'b' / 'posts'}"])


def test_split_accepts_bom_and_crlf():
    fm, body = split_front_matter("\ufeff---\r\ntitle: x\r\n---\r\nbody\r\n".encode())
    assert fm == "title: x\n"
    assert body == "body\r\n"


@pytest.mark.parametrize("data, offset", [
    (b"---\ntitle: caf\xe9\n---\nbody\n", 14),  # in the front matter
    (b"---\ntitle: x\n---\nbody \xe9\n", 22),  # in the body
    (b"\xef\xbb\xbf---\ntitle: x\n---\n\xff\n", 20),  # after a BOM
])
def test_split_names_the_file_offset_of_a_byte_that_is_not_utf8(data, offset):
    assert data[offset] >= 0x80  # the offset is counted in the file's own bytes
    with pytest.raises(RejectedFile, match=f"not UTF-8: byte 0x{data[offset]:02x} at offset {offset} "):
        split_front_matter(data)


def test_split_gives_the_front_matter_bytes_the_fast_parser_reads():
    fm, fm_bytes, body = split_record("---\r\ntitle: café\r\n---\r\nbody\r\n".encode())
    assert fm_bytes == fm.encode() == "title: café\n".encode()


def test_split_accepts_dots_terminator():
    fm, body = split_front_matter(b"---\ntitle: x\n...\nthe body\n")
    assert fm == "title: x\n" and body == "the body\n"


def test_split_keeps_horizontal_rules_in_the_body():
    fm, body = split_front_matter((BAD_INPUT / "hr_in_body.md").read_bytes())
    assert "title:" in fm and "---" not in fm.replace("--- breaking", "")
    assert body.count("\n---\n") == 1 and "After a horizontal rule." in body and "The end." in body


def test_dashes_inside_quoted_values_do_not_close_the_front_matter():
    ex = _ex("dashes_in_quoted.md")
    assert ex.error is None
    assert ex.record["title"] == "--- breaking --- news"
    assert ex.record["related"][0]["title"] == "Quoted --- across lines"


@pytest.mark.parametrize(
    "name, message",
    [
        ("no_front_matter.md", "no front matter: the first line is not '---' (YAML) or '+++' (TOML), nor a '{' (JSON)"),
        ("unclosed.md", "front matter is not closed"),
        ("top_level_list.md", "front matter is a list, not a mapping"),
        ("empty.md", "empty file"),
        ("binary.md", "not UTF-8"),
        ("latin1.md", "not UTF-8: byte 0xe9 at offset {}".format((BAD_INPUT / "latin1.md").read_bytes().index(b"\xe9"))),
        ("alias_bomb.md", "alias bomb"),
    ],
)
def test_bad_files_are_rejected_with_a_reason(name, message):
    ex = _ex(name)
    assert ex.record is None
    assert message in ex.error


def test_invalid_yaml_names_line_and_column():
    ex = _ex("invalid_yaml.md")
    # the bad line is line 5 of the file: " domain: bad-indent.com" (column 2)
    assert ex.record is None
    assert ex.error.startswith("invalid YAML at line 5, column 2")


def test_alias_bomb_is_rejected_fast():
    t0 = time.perf_counter()
    ex = _ex("alias_bomb.md")
    assert time.perf_counter() - t0 < 1.0  # generous: it takes milliseconds, expanded it would not end
    assert "alias bomb" in ex.error


def test_self_referencing_alias_is_rejected():
    with pytest.raises(RejectedFile, match=r"line 2, column 11: the alias \*a refers to a node that contains it"):
        parse_front_matter("a: &a [1, *a]\n")


def test_small_aliases_are_fine():
    rec, _ = parse_front_matter("base: &b {name: X, domain: x.com}\nprovider: *b\n")
    assert rec["provider"] == {"name": "X", "domain": "x.com"}


def test_yaml_tags_never_construct_python_objects(tmp_path):
    marker = Path("/tmp/newsetl-pwned")
    marker.unlink(missing_ok=True)
    ex = _ex("python_tag.md")
    assert ex.record is None
    assert "invalid YAML" in ex.error and "python/object" in ex.error
    assert not marker.exists()


def test_sha256_and_size_are_of_the_raw_bytes():
    import hashlib

    p = BAD_INPUT / "bom_crlf.md"
    ex = _ex("bom_crlf.md")
    assert ex.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert ex.size == p.stat().st_size


def test_extract_all_gives_what_extract_gives_file_by_file():
    """A batch (where the fast parser's subset test runs once for all files) and
    single files agree on every field, for good, odd and rejected files alike."""
    files = discover([BAD_INPUT])
    one_by_one = [extract(f, split_related=True) for f in files]
    batch = extract_all([(f, Path(f.path).read_bytes()) for f in files], split_related=True)
    assert len(batch) == len(files) > 15
    for a, b in zip(one_by_one, batch):
        assert (a.file, a.sha256, a.error, a.record, a.fast, a.related_json, a.body) == \
               (b.file, b.sha256, b.error, b.record, b.fast, b.related_json, b.body), a.file.source_path
    assert any(b.fast for b in batch) and any(b.error for b in batch) and any(not b.fast and b.record for b in batch)


def test_a_batch_that_passes_the_subset_test_parses_without_the_per_record_regex(tmp_path):
    """extract_all tests a batch's front matter in one RE2 pass (fastyaml.precheck); a record that
    passes it is parsed without _DOC, whose compiling (0.15 s) a run's sample for preset detection
    paid in the main process. The records are PyYAML's all the same."""
    import yaml

    from newsetl import demo, fastyaml
    from newsetl.frontmatter import split_any

    demo.generate(tmp_path / "site", records=12, seed=3, malformed=False)
    paths = sorted((tmp_path / "site").glob("*.md"))
    items = [(SourceFile(f"site/{p.name}", str(p), p.name, p.stat().st_size, 0), p.read_bytes()) for p in paths]
    assert all(fastyaml.precheck([split_any(data)[2] for _, data in items]))
    # the batch, and a batch of one (a run that found one file changed: the schedule's usual run)
    for batch in (items, items[:1]):
        fastyaml._doc.cache_clear()
        got = extract_all(batch)
        assert fastyaml._doc.cache_info().currsize == 0
        assert all(ex.fast for ex in got)
        assert [ex.record for ex in got] == [yaml.load(split_any(data)[1], Loader=yaml.CSafeLoader)
                                             for _, data in batch]
