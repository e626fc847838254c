"""Related lists from JSON: a batch's `related` lists flattened by Arrow, without Python objects.

The related links and their images are most of a record (about 30 links and
20 images in a 20 KB file): decoding them into Python objects and walking
them cost more than parsing the YAML. For fast-parsed records the parser
hands the list over as JSON (fastyaml.load_fast_split) and Arrow's JSON
reader types a whole batch of them in C++.

The rows are the Python path's: the reader is strict (explicit schema: an
unknown key, a key given twice or a value of another JSON type is an error),
and what it cannot vouch for is checked after reading: a timestamp not in the
plain `2021-02-12T20:25:00Z` form, any other string that may have been a plain
timestamp or YAML 1.1 number (PyYAML makes it a datetime, an int or a float), an integer
past int32. A record that
fails anything is parsed again by fastyaml.load and goes through `_related`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from . import schema as S
from .clean import INT32_MAX, INT32_MIN
from .columns import IMAGE_RAW, KNOWN_IMAGE, KNOWN_RELATED, LINK_RAW, clean_strings

NULL_ITEM = "empty list item (null): skipped"
NO_WEB_URL = "missing: the related link has no webUrl"

_JSON_TYPE = {"str": pa.string(), "text": pa.string(), "name": pa.string(), "domain": pa.string(),
              "int": pa.int64(), "bool": pa.bool_(), "ts": pa.string()}


_JSON_IMAGE = pa.struct([(key, _JSON_TYPE[kind]) for kind, key in IMAGE_RAW.values()])


_JSON_LINK = pa.struct(
    [(key, _JSON_TYPE[kind]) for kind, key in LINK_RAW.values() if "." not in key]
    + [("provider", pa.struct([(key.split(".", 1)[1], _JSON_TYPE[kind]) for kind, key in LINK_RAW.values() if "." in key])),
       ("images", pa.list_(_JSON_IMAGE))]
)
assert {f.name for f in _JSON_LINK} == KNOWN_RELATED and {f.name for f in _JSON_IMAGE} == KNOWN_IMAGE
_JSON_PARSE = pj.ParseOptions(explicit_schema=pa.schema([("related", pa.list_(_JSON_LINK))]),
                              unexpected_field_behavior="error", newlines_in_values=True)


_PLAIN_TS = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"  # what PyYAML gives a UTC datetime


# A string that may have been a plain timestamp (they all start `YYYY-`) or a YAML 1.1 number
# JSON cannot carry (0123, 1_000, 1:30: fastyaml._CONVERTS), which PyYAML would not make a str.
_MAYBE_CONVERTED = "^[0-9](?:[0-9]{3}-|[0-9a-fA-FxX_:.+-]*$)"


_NOT_BLANK = "[!-~]"  # a visible ASCII character: surely not blank for str.strip()


def _read_json_lists(parts: list[bytes]) -> tuple[pa.ListArray, list[int]]:
    """Arrow's strict reading of `"related": ...` JSON texts: (the lists it read, in
    order, and the indices of the parts it refused)."""

    def read(chunk: list[bytes]) -> pa.ListArray:
        data = b"\n".join([b"{" + p + b"}" for p in chunk])
        opts = pj.ReadOptions(use_threads=False, block_size=len(data) + 1)  # one block: one chunk
        return pj.read_json(pa.BufferReader(data), read_options=opts, parse_options=_JSON_PARSE).column(0).combine_chunks()

    try:
        return read(parts), []
    except (pa.ArrowException, OverflowError):
        pass  # some part is odd: find which, one by one
    arrays, refused = [], []
    for i, p in enumerate(parts):
        try:
            arrays.append(read([p]))
        except (pa.ArrowException, OverflowError):
            refused.append(i)
    return (pa.concat_arrays(arrays) if arrays else pa.array([], pa.list_(_JSON_LINK))), refused


def _children(lists: pa.ListArray) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray]:
    """Items of non-null lists: (items, the index of each item's list, its position
    in that list, whether the item is not null)."""
    items = pc.list_flatten(lists)
    parent = pc.list_parent_indices(lists).to_numpy()
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy()
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    position = np.arange(len(items)) - starts[parent]
    return items, parent, position, items.is_valid().to_numpy(zero_copy_only=False)


def _suspect(struct: pa.StructArray, kinds: dict[str, str]) -> np.ndarray:
    """Rows of `struct` that the JSON path cannot vouch for (see above)."""
    bad = None
    for key, kind in kinds.items():
        arr = struct.field(key)
        if kind == "int":
            hit = pc.or_(pc.less(arr, INT32_MIN), pc.greater(arr, INT32_MAX))
        elif kind == "ts":
            hit = pc.invert(pc.match_substring_regex(arr, _PLAIN_TS))
        elif kind == "bool":
            continue
        else:
            hit = pc.match_substring_regex(arr, _MAYBE_CONVERTED)
        bad = hit if bad is None else pc.or_kleene(bad, hit)
    return pc.fill_null(bad, False).to_numpy(zero_copy_only=False)


def _typed_json(arr: pa.Array, kind: str) -> pa.Array:
    """A column read from JSON, typed as type_column types the same values."""
    if kind == "int":
        return arr.cast(pa.int32())  # in range: checked by _suspect
    if kind == "bool":
        return arr
    if kind == "ts":
        return pc.strptime(arr, format="%Y-%m-%dT%H:%M:%SZ", unit="us").cast(S.arrow(S.TS))
    return clean_strings(arr, kind)


_LINK_KINDS = {key: kind for kind, key in LINK_RAW.values() if "." not in key}


_LINK_PROVIDER_KINDS = {key.split(".", 1)[1]: kind for kind, key in LINK_RAW.values() if "." in key}


_IMAGE_KINDS = {key: kind for kind, key in IMAGE_RAW.values()}


class JsonRows(NamedTuple):
    """What the JSON path made of a batch's related lists (indices are into its `parts`)."""

    counts: dict[int, int]  # related_count of each list it flattened
    links: pa.Table  # stg_related_links rows
    images: pa.Table  # stg_related_images rows
    issues: list[tuple[int, str, str, str]]  # (index, field, raw value, problem)
    fallback: list[int]  # the lists to flatten the Python way: refused, or with a value it cannot vouch for


def flatten_lists(parts: list[bytes], article_ids: list[str], source_paths: list[str]) -> JsonRows:
    """The rows of many `"related": [...]` JSON texts at once, as flatten's Python walk makes them."""
    lists, refused = _read_json_lists(parts)
    refused_set = set(refused)
    read = [i for i in range(len(parts)) if i not in refused_set]  # list position -> index into parts
    links, link_rec, link_pos, link_ok = _children(lists)
    provider = links.field("provider")
    images, img_link, img_pos, img_ok = _children(links.field("images"))
    img_ok &= link_ok[img_link]  # the images of a null link are no images (never happens: belt and braces)

    # lists with anything the JSON path cannot vouch for go the Python way
    suspect = np.zeros(len(read), dtype=bool)
    bad = (_suspect(links, _LINK_KINDS) | _suspect(provider, _LINK_PROVIDER_KINDS)) & link_ok
    suspect[link_rec[bad]] = True
    suspect[link_rec[img_link[_suspect(images, _IMAGE_KINDS) & img_ok]]] = True
    link_keep = link_ok & ~suspect[link_rec]
    img_keep = img_ok & ~suspect[link_rec[img_link]]

    # (a null item is skipped, as the Python walk skips it, keeping the others' positions)
    counts = {read[r]: n for r, n in enumerate(np.bincount(link_rec[link_keep], minlength=len(read)).tolist())
              if not suspect[r]}
    image_count = np.bincount(img_link[img_keep], minlength=len(links))
    ids = pa.array([article_ids[i] for i in read], pa.string())
    paths = pa.array([source_paths[i] for i in read], pa.string())

    keep = pa.array(link_keep)
    rec = pa.array(link_rec[link_keep])
    cols = {"article_id": ids.take(rec), "source_path": paths.take(rec),
            "position": pa.array(link_pos[link_keep], pa.int32()),
            "image_count": pa.array(image_count[link_keep], pa.int32())}
    for col, (kind, key) in LINK_RAW.items():
        src = provider.field(key.split(".", 1)[1]) if "." in key else links.field(key)
        cols[col] = _typed_json(src.filter(keep), kind)
    link_rows = pa.Table.from_arrays([cols[n] for n in S.STG_RELATED_LINKS.names], schema=S.STG_RELATED_LINKS.schema)

    keep = pa.array(img_keep)
    rec = pa.array(link_rec[img_link[img_keep]])
    cols = {"article_id": ids.take(rec), "source_path": paths.take(rec),
            "related_position": pa.array(link_pos[img_link[img_keep]], pa.int32()),
            "position": pa.array(img_pos[img_keep], pa.int32())}
    for col, (kind, key) in IMAGE_RAW.items():
        cols[col] = _typed_json(images.field(key).filter(keep), kind)
    image_rows = pa.Table.from_arrays([cols[n] for n in S.STG_RELATED_IMAGES.names], schema=S.STG_RELATED_IMAGES.schema)

    issues = []
    # a link without a webUrl is an issue, as in the Python walk
    web = links.field("webUrl")
    visible = pc.fill_null(pc.match_substring_regex(web, _NOT_BLANK), False)
    for i in pc.indices_nonzero(pc.and_(pa.array(link_keep), pc.invert(visible))).to_pylist():
        w = web[i].as_py()
        if w is None or not w.strip():
            issues.append((read[link_rec[i]], f"related[{link_pos[i]}].webUrl", w or "", NO_WEB_URL))
    # a null link or image is skipped, and an issue
    for i in np.flatnonzero(~link_ok & ~suspect[link_rec]).tolist():
        issues.append((read[link_rec[i]], f"related[{link_pos[i]}]", "null", NULL_ITEM))
    null_img = ~images.is_valid().to_numpy(zero_copy_only=False) & link_ok[img_link] & ~suspect[link_rec[img_link]]
    for i in np.flatnonzero(null_img).tolist():
        link = img_link[i]
        issues.append((read[link_rec[link]], f"related[{link_pos[link]}].images[{img_pos[i]}]", "null", NULL_ITEM))

    fallback = list(refused) + [read[r] for r in np.flatnonzero(suspect).tolist()]
    return JsonRows(counts, link_rows, image_rows, issues, fallback)
