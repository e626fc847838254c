"""Fast front-matter YAML: PyYAML's exact values, or an explicit refusal.

`yaml.load(text, Loader=yaml.CSafeLoader)` is the whole cost of the ETL. This
module parses with rapidyaml (C++), emits JSON and decodes it with orjson,
which is several times faster, but only for texts where that gives *exactly*
what PyYAML gives (same values, same types, same key order). Anything else
raises `NeedsFallback` and `load` runs `safeyaml` (PyYAML's meaning, with
bounded resources).

How the meaning is guaranteed (tests/test_fastyaml.py holds the evidence):

1. One compiled regex (`_DOC`) must match the whole text. It accepts only
   simple block YAML: each line is blank, a comment, `key: scalar`, `key:`
   (a nested block follows, or null), or `- ` items of those. Scalars sit on
   one line and have a form where rapidyaml's JSON and PyYAML's YAML 1.1
   resolution agree:
     - double-quoted (whitelisted escapes) or single-quoted;
     - plain strings that start with a letter and are not a YAML 1.1
       bool/null word (yes/No/ON/True/NULL...) nor a word rapidyaml rewrites
       (inf, nan, infinity);
     - plain scalars that start with a digit (9to5Mac, 13newsnow.com, 5G,
       2021 in review, 017, 1_000, 1:30) unless JSON reads them as numbers
       (1e5, 1.): rapidyaml writes them as JSON strings;
     - plain decimal ints (<= 18 digits) and decimal floats (`-1.5`),
       `true`, `false`, `null`;
     - plain timestamps (PyYAML's resolver pattern) of dates that exist.
   Keys are simple plain words or short quoted strings. Every character is
   printable for PyYAML and no YAML 1.1-only line break (NEL, LS, PS), tab,
   BOM or lone CR appears. Everything else (anchors, aliases, tags, merge
   keys, flow collections, block scalars, multi-line quoted scalars, numbers
   led by a sign or a dot other than `-1.5`, `~`, `.inf`, directives, several
   documents, indentless sequences...) never reaches rapidyaml; nor does a
   quoted scalar whose text would be converted if it were plain (`"0123"`,
   see 3).
   For a batch, `precheck` tests a narrower language in one pass of RE2
   (Arrow's regex engine) and NumPy; only texts it cannot vouch for get `_DOC`.
2. rapidyaml parses, emits JSON, orjson loads it; any error on the way means
   fallback. Structural errors (bad indentation) are caught by rapidyaml as
   by libyaml within this subset, except indentless sequences, refused in 1.
3. JSON cannot say "datetime", nor "octal": plain timestamps, and the YAML
   1.1 ints and floats JSON has no form for (017, 1_000, 1:30, 0x1F), come
   back as strings. Quoted scalars whose text could be one are refused in 1,
   so after decoding, every string matching PyYAML's timestamp resolver, or
   its int or float resolver while led by a digit and not a plain decimal,
   came from a plain scalar; it is converted exactly as PyYAML's
   SafeConstructor does (`_convert_plain`).
4. The top level must be a mapping.
5. Where PyYAML's value is one the warehouse cannot hold as it is (a key
   given twice, a timestamp whose UTC value leaves the years 1-9999) or a
   record goes past a cap of `limits`, the text falls back, so that `safeyaml`
   says what happens, the same way for every record. A key given twice is
   seen by counting: rapidyaml's tree has one node more than the decoded
   value per dropped key.

`load_fast_split` gives the same guarantee but leaves one top-level key's
value undecoded, as rapidyaml's JSON, for a reader that types it without
Python objects (flatten's Arrow path). Its plain timestamps and YAML 1.1 numbers
are still strings there, which that reader must check (related_json).
"""

from __future__ import annotations

import datetime
import functools
import os
import re
import threading
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml
import yaml.constructor
import yaml.nodes
import yaml.resolver

from . import limits, safeyaml

try:  # the fast path is optional: without these, everything goes to PyYAML
    import orjson
    import ryml
except ImportError:  # pragma: no cover - exercised only on broken installs
    orjson = None
    ryml = None

__all__ = ["NeedsFallback", "load", "load_fast", "load_fast_split", "load_reference", "load_split", "precheck"]


class NeedsFallback(Exception):
    """The fast path cannot guarantee PyYAML's meaning for this text."""


# --- reference ----------------------------------------------------------------

_CLOADER = getattr(yaml, "CSafeLoader", None)


def load_reference(text: str) -> object:
    """PyYAML's safe loader: the C one (libyaml), else the pure one with a warning."""
    if _CLOADER is not None:
        return yaml.load(text, Loader=_CLOADER)
    warnings.warn(
        "PyYAML was built without libyaml: front matter is parsed by the slow pure-Python SafeLoader",
        RuntimeWarning,
        stacklevel=2,
    )
    return yaml.load(text, Loader=yaml.SafeLoader)


# --- the accepted subset of YAML ---------------------------------------------

# Characters PyYAML reads as printable, minus the YAML 1.1 line breaks NEL
# (\x85), LS (\u2028), PS (\u2029) that rapidyaml does not treat as breaks,
# minus the BOM, tab and CR (handled before). Surrogates are excluded too.
_NONASCII_RANGES = ((0xA0, 0x2027), (0x202A, 0xD7FF), (0xE000, 0xFEFE), (0xFF00, 0xFFFD), (0x10000, 0x10FFFF))
_NONASCII = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _NONASCII_RANGES)
_PRINT = f"[ -~{_NONASCII}]"
_DQ_CHAR = f'[ !#-\\[\\]-~{_NONASCII}]'  # printable except " and \
_SQ_CHAR = f"[ -&(-~{_NONASCII}]"  # printable except '
_STR_CHAR = f'[!-"$-9;-~{_NONASCII}]'  # printable except space, # and :

# Words YAML 1.1 resolves to bool or null (yes/No/ON/True/NULL...), and words
# rapidyaml's JSON emitter rewrites (inf -> ".inf", nan -> ".nan", infinity).
# Matched case-insensitively: a superset (yEs is a string) is only cautious.
_WORDS = (
    r"(?:[yY][eE][sS]|[nN](?:[oO]|[uU][lL][lL]|[aA][nN])|[tT][rR][uU][eE]|[fF][aA][lL][sS][eE]"
    r"|[oO](?:[nN]|[fF][fF])|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
)
# Decimal ints that fit orjson's int64 exactly, and plain decimal floats; both
# rapidyaml (is_number) and PyYAML (int/float resolvers) read them as numbers.
_NUM = r"-?(?:0|[1-9][0-9]{0,17}+)(?:\.[0-9]{1,17}+)?"


def _resolver(tag: str) -> re.Pattern:
    """The exact regexp PyYAML's resolver uses to give a plain scalar that starts with a digit `tag`."""
    return next(rx for t, rx in yaml.resolver.Resolver.yaml_implicit_resolvers["0"] if t == f"tag:yaml.org,2002:{tag}")


# YAML 1.1's other ints and floats (017 octal, 1_000, 1:30 sexagesimal, 0x1F, 0b101, 1.5e+3, 00.5...),
# as the text of PyYAML's own resolvers (verbose patterns, so without their spaces and anchors).
_YAML_NUM = "(?:" + "|".join(re.sub(r"\s+", "", _resolver(t).pattern)[1:-1] for t in ("int", "float")) + ")"
# A plain scalar that starts with a digit (9to5mac, 13newsnow.com, 5G, 2021 in review, 017) is a
# string, number or timestamp for PyYAML. rapidyaml writes it as a JSON string unless it reads as a
# JSON number, so the forms that read so are refused unless _NUM vouches for them (1e5 is a string
# for PyYAML but a number for JSON; rapidyaml writes 1. as 1.0): what passes decodes to a string,
# and the strings that are YAML ints, floats or timestamps are converted after decoding
# (`_convert_plain`), as quoted scalars that would convert are refused below.
_JSON_LIKE = r"(?:0|[1-9][0-9]*+)(?:\.[0-9]*+)?+(?:[eE][-+]?[0-9]++)?+"
# What `_convert_plain` converts: a string starting with a digit that is a YAML 1.1 int or float
# but not a decimal of _NUM (a plain one of those reaches orjson as a JSON number, not a string).
_CONVERTS = f"(?=[0-9])(?!{_NUM}(?:{{end}}))(?:{_YAML_NUM})(?:{{end}})"
# A quoted scalar that could decode to a timestamp: it would come back as a
# string indistinguishable from a plain timestamp, so such texts fall back.
# (No accepted escape decodes to an ASCII digit; `\ ` and `\t` could be the
# date-time separator, hence the backslash.)
_TS_LEAD = r"""[0-9]{4}-[0-9][0-9]?-[0-9][0-9]?[Tt "'\\]"""
# Escapes that rapidyaml and libyaml decode alike and that rapidyaml's JSON
# carries (it writes \0 \a \v \e raw, which orjson rejects). Not \L or \P:
# their UTF-8 is longer than the escape, and rapidyaml 0.15 garbles a string
# that grows while unescaping ("\\t\L\P" gives a TAB). \x \u \U are limited
# to non-ASCII code points, so no escape yields a digit (see _TS_LEAD).
_ESC = (
    r"""\\(?:["\\/ nrtbfN_]|x[89a-fA-F][0-9a-fA-F]"""
    r"|u(?!00[0-7]|[dD][89abAB])[0-9a-fA-F]{4}|U(?:000[1-9a-fA-F]|0010)[0-9a-fA-F]{4})"
)
# A quoted text that `_convert_plain` would convert: a string, which falls back.
_DQ = f'"(?!{_TS_LEAD})(?!{_CONVERTS.replace("{end}", chr(34))}){_DQ_CHAR}*+(?:{_ESC}{_DQ_CHAR}*+)*+"'
_SQ = f"'(?!{_TS_LEAD})(?!{_CONVERTS.replace('{end}', chr(39))}){_SQ_CHAR}*+(?:''{_SQ_CHAR}*+)*+'"
# PyYAML's timestamp resolver (tabs are refused earlier), narrowed to dates
# and times that exist: PyYAML builds every plain scalar, even one a
# duplicate key later overwrites, and raises on 2021-02-30 or 24:00:00, so
# those texts fall back.
_MD = r"(?:{m}-{d}|(?:{m13})-(?:29|30)|(?:{m31})-31)"
_MD12 = _MD.format(m="(?:0?[1-9]|1[0-2])", d="(?:0?[1-9]|1[0-9]|2[0-8])", m13="0?[13-9]|1[0-2]", m31="0?[13578]|1[02]")
_MD2 = _MD.format(m="(?:0[1-9]|1[0-2])", d="(?:0[1-9]|1[0-9]|2[0-8])", m13="0[13-9]|1[0-2]", m31="0[13578]|1[02]")
_LEAP = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_HOUR = r"(?:[01]?[0-9]|2[0-3])"
_TS = (
    f"(?!0000)(?:(?:[0-9]{{4}}-{_MD12}|{_LEAP}-0?2-29)(?:[Tt]| ++){_HOUR}:[0-5][0-9]:[0-5][0-9](?:\\.[0-9]*+)?"
    f"(?: *+(?:Z|[-+]{_HOUR}(?::[0-5][0-9])?))?|[0-9]{{4}}-{_MD2}|{_LEAP}-02-29)"
)
# A plain string: starts with a letter (so no indicator, number, timestamp,
# `~`, `<<` or `=`); stops before ` #` (comment) and `: ` (mapping value).
_STR = (
    f"(?!{_WORDS} *+(?:[#\\n]|\\Z))[A-Za-z{_NONASCII}]"
    f"(?:{_STR_CHAR}++|:(?=[^ \\n])| ++(?=[^ \\n#])|\\#)*+"
)
# A plain scalar that starts with a digit and is not read as a JSON number (see _JSON_LIKE).
_DSTR = (
    f"(?!{_JSON_LIKE} *+(?:[#\\n]|\\Z))[0-9]"
    f"(?:{_STR_CHAR}++|:(?=[^ \\n])| ++(?=[^ \\n#])|\\#)*+"
)
_SCALAR = f"(?:{_DQ}|{_SQ}|(?=[0-9]{{4}}-){_TS}|{_NUM}|true|false|null|{_STR}|{_DSTR})"
# End of a value: the line ends, maybe after spaces and a comment. (The
# bare end-of-line test goes first: it is most lines, and 8% faster.)
_TAIL = f"(?:(?![^\\n])| ++(?:#{_PRINT}*+)?(?![^\\n]))"
# libyaml refuses implicit keys longer than 1024 characters: stay far below.
_KEY = (
    f"(?:(?!{_WORDS}:)[A-Za-z_][A-Za-z0-9_.-]{{0,127}}+"
    f'|"{_DQ_CHAR}{{0,128}}+"|\'{_SQ_CHAR}{{0,128}}+\')'
)
_EMPTY = _TAIL  # after `key:`: nothing, or only a comment
# rapidyaml mis-parses some "indentless" sequences (`key:` then `- item` at
# the key's own column): after quoted items, a deeper line becomes a key with
# leading spaces where libyaml reports an error. The real records indent
# their sequences, so an empty `key:` must not be followed by `- ` at its
# column. `(?P=i)` is the line's indentation; after `- key:` the key sits two
# columns right of it (a `- - key:` opening a block falls back).
_NEXT = f"\\n(?: *+(?:#{_PRINT}*+)?\\n)*+(?P=i)"
# Bounded indentation and dashes bound the nesting depth (the timestamp
# walk recurses; rapidyaml's JSON emitter refuses more than 64 levels, which
# then falls back).
# (Empty keys get their own branch: capturing `i` on every line costs 20%.)
_LINE = (
    f" {{0,64}}+(?:{_KEY}: ++{_SCALAR}{_TAIL}"
    f"|(?:- ){{1,16}}+(?:{_KEY}: ++{_SCALAR}{_TAIL}|{_SCALAR}{_TAIL})"
    f"|#{_PRINT}*+)"
    f"|(?P<i> {{0,64}}+)(?:{_KEY}:{_EMPTY}(?!{_NEXT}- )|- {_KEY}:{_EMPTY}(?!{_NEXT}  - ))"
)
_DOC_PATTERN = f"(?:(?>(?:{_LINE})?+ *+)(?:\\n|\\Z))*+"  # used with fullmatch


@functools.cache
def _doc() -> re.Pattern:
    # compiled on first use: it takes 0.15 s, which every command that imports the parser but
    # parses nothing (a run with nothing changed, `newsetl status`) would pay
    return re.compile(_DOC_PATTERN)


def __getattr__(name: str):
    if name == "_DOC":  # the compiled regex, as `fastyaml._DOC`
        return _doc()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- the same test, a batch at a time -------------------------------------------
#
# _DOC costs about 150 µs on a 20 KB record: Python's backtracking engine
# spends half a microsecond on each line. RE2 (Arrow's regex engine, a DFA)
# reads a whole batch of texts in one call at a byte or so per nanosecond,
# but has no lookarounds, backreferences or possessive quantifiers. So
# `precheck` tests a narrower language, in two steps:
#
# 1. `_RE2_DOC`: _DOC with each lookahead spelled out as the strings it lets
#    through (a key or plain scalar that is not a bool/null word, a quoted
#    scalar that does not start like a date), and a little narrower where
#    that is simpler: plain keys only, `key:` with no comment after it, quoted
#    scalars not starting `YYYY-N`, \u escapes without low surrogates.
# 2. `_indentless`: _NEXT's backreference (an empty `key:` followed by `- ` at
#    its own column) compared with NumPy over the lines after `key:`.
#
# A text that passes both is one _DOC matches; any other text gets _DOC
# itself, so the narrowing costs only speed. tests/test_fastyaml.py checks
# that direction on the fuzz corpus, the tricky table and edge cases.
# (Leaving out the possessive quantifiers does not widen the language: each
# stops where nothing that may follow could match.)

_WORD_LIST = ("yes", "no", "null", "nan", "true", "false", "on", "off", "inf", "infinity")  # _WORDS, lowercased


def _re2_set(chars: set[str], nonascii: bool) -> str:
    """An RE2 character class: these ASCII characters, and _NONASCII if asked."""
    body = "".join("\\" + c if c in "\\]^-[" else c for c in sorted(chars))
    if nonascii:
        body += "".join(f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in _NONASCII_RANGES)
    return f"[{body}]"


def _ascii(lo: str, hi: str) -> set[str]:
    return {chr(c) for c in range(ord(lo), ord(hi) + 1)}


_LETTERS = _ascii("a", "z") | _ascii("A", "Z")
_DIGITS = _ascii("0", "9")
_PRINTABLE = _ascii(" ", "~")
_R_PRINT = _re2_set(_PRINTABLE, True)
_STR_ASCII = _PRINTABLE - {" ", "#", ":"}
_R_STR_CHAR = _re2_set(_STR_ASCII, True)
_R_C = _re2_set(_STR_ASCII | {"#"}, True)  # what may follow a `:` run inside a plain scalar
_R_BODY = f"(?:{_R_C}|:+{_R_C}| +{_R_STR_CHAR}| +:+{_R_C})"  # _STR's loop, lookaheads spelled out
_KEY_ASCII = _LETTERS | _DIGITS | {"_", ".", "-"}


def _without_words(first: set[str], first_other: str | None, item: set[str], leave: str | None, tail: str,
                   after_word: set[str]) -> str:
    """The tokens `first`-character, items..., minus the words of _WORDS in any case.

    A token starts with an ASCII character of `first` or with `first_other`,
    and goes on with single ASCII characters of `item` or items of `leave`,
    then `tail`. Walking the words' trie (a letter of the next word
    character, either case): the token may end inside it only at a node that
    is not a word, and leaving it after a whole word, the next character may
    not be one of `after_word`. Each part is written once, so RE2's program
    stays small."""

    def kids(prefix: str) -> list[str]:
        return sorted({w[len(prefix)] for w in _WORD_LIST if w.startswith(prefix) and len(w) > len(prefix)})

    def letter(k: str) -> str:
        return f"[{k}{k.upper()}]"

    def ended(prefix: str) -> str | None:  # nonempty tokens that are a prefix of a word, not a word
        alts = [] if prefix in _WORD_LIST or not prefix else [""]
        for k in kids(prefix):
            sub = ended(prefix + k)
            if sub is not None:
                alts.append(letter(k) + sub)
        return f"(?:{'|'.join(alts)})" if alts else None

    def path(prefix: str) -> str:  # any nonempty walk down from `prefix`
        return "(?:" + "|".join(letter(k) + (f"{path(prefix + k)}?" if kids(prefix + k) else "")
                                for k in kids(prefix)) + ")"

    def left(prefix: str) -> str:  # a walk, then an ASCII character that leaves the trie
        out = set(kids(prefix)) | {k.upper() for k in kids(prefix)}
        if prefix in _WORD_LIST:
            out |= after_word
        alts = [_re2_set(item - out, False)] if prefix else []
        alts += [letter(k) + left(prefix + k) for k in kids(prefix)]
        return "(?:" + "|".join(alts) + ")"

    initials = {w[0] for w in _WORD_LIST} | {w[0].upper() for w in _WORD_LIST}
    starts = [_re2_set(first - initials, False), left("")]
    if first_other is not None:
        starts.append(first_other)
    if leave is not None:
        starts.append(path("") + leave)
    return f"(?:{ended('')}|(?:{'|'.join(starts)}){tail})"


# a key that is not a bool/null word (_KEY's `(?!{_WORDS}:)`), 120 characters
# at most (_KEY allows 128; a word's walk is 8 at most)
_R_KEY = _without_words(_LETTERS | {"_"}, None, _KEY_ASCII, None, f"{_re2_set(_KEY_ASCII, False)}{{0,111}}", set())
# a plain scalar that is not such a word, alone or followed by `#` (_STR's
# lookahead; true, false and null are scalars of their own below)
_R_STR = _without_words(_LETTERS, _re2_set(set(), True), _STR_ASCII | {"#"},
                        f"(?:{_re2_set(set(), True)}|:+{_R_C}| +{_R_STR_CHAR}| +:+{_R_C})", f"{_R_BODY}*", {"#"})


# what numbers are written with (PyYAML's int and float forms that start with a digit)
_NUMBER_ASCII = _DIGITS | _ascii("a", "f") | _ascii("A", "F") | set("xX_:.+-")


def _quoted(quote: str, char_set: set[str], escape: str) -> str:
    """A quoted scalar (`char_set` plus `escape` inside) whose text neither starts like a
    date, `YYYY-N` (so never _TS_LEAD), nor is all a number's characters after a digit (so
    never one that _DQ and _SQ refuse as a number to convert)."""
    def one_of(chars: set[str]) -> str:  # one of these, a non-ASCII character or an escape
        return f"(?:{_re2_set(chars, True)}|{escape})"

    item = one_of(char_set)
    num = _re2_set(char_set & _NUMBER_ASCII, False)
    other = one_of(char_set - _NUMBER_ASCII)  # escapes decode to such characters too
    # after the digits: a character no number has, or number characters until there is one
    def leave(first: set[str]) -> str:
        return f"(?:{other}|{_re2_set(first & _NUMBER_ASCII, False)}{num}*{other}){item}*"

    digit_led = (f"[0-9]{{1,3}}{leave(char_set - _DIGITS)}|[0-9]{{4}}{leave(char_set - {'-'})}"
                 f"|[0-9]{{4}}-{leave(char_set - _DIGITS)}")
    decimal = "(?:0|[1-9][0-9]{0,17})(?:\\.[0-9]{1,17})?"  # _NUM: never converted
    return f"{quote}(?:{one_of(char_set - _DIGITS)}{item}*|{digit_led}|{decimal})?{quote}"


_R_DQ = _quoted('"', _PRINTABLE - {'"', "\\"},
                r"""\\(?:["\\/ nrtbfN_]|x[89a-fA-F][0-9a-fA-F]"""
                r"|u(?:[1-9a-cA-CeEfF][0-9a-fA-F]{3}|0[1-9a-fA-F][0-9a-fA-F]{2}|00[89a-fA-F][0-9a-fA-F]|[dD][0-7][0-9a-fA-F]{2})"
                r"|U(?:000[1-9a-fA-F]|0010)[0-9a-fA-F]{4})")
_R_SQ = _quoted("'", _PRINTABLE - {"'"}, "''")
_R_YEAR = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"  # _TS's (?!0000)
_R_TS = (
    f"(?:(?:{_R_YEAR}-{_MD12}|{_LEAP}-0?2-29)(?:[Tt]| +){_HOUR}:[0-5][0-9]:[0-5][0-9](?:\\.[0-9]*)?"
    f"(?: *(?:Z|[-+]{_HOUR}(?::[0-5][0-9])?))?|{_R_YEAR}-{_MD2}|{_LEAP}-02-29)"
)
# _DSTR, narrower: digits and dots, then a character that cannot go on a JSON number, or spaces
_R_DSTR = (f"[0-9][0-9.]*(?:{_re2_set(_STR_ASCII - _DIGITS - set('.eE+-'), True)}| +{_R_STR_CHAR})"
           f"{_R_BODY}*")
_R_SCALAR = f"(?:{_R_DQ}|{_R_SQ}|{_R_TS}|-?(?:0|[1-9][0-9]{{0,17}})(?:\\.[0-9]{{1,17}})?|true|false|null|{_R_STR}|{_R_DSTR})"
_R_TAIL = f"(?: +(?:#{_R_PRINT}*)?)?"
# _LINE, with the scalar written once. An empty `key:` is a line of its own,
# with nothing after the colon: `_indentless` looks for `:` ending a line.
_R_LINE = (
    f" {{0,64}}(?:(?:(?:- ){{1,16}}(?:{_R_KEY}: +)?|{_R_KEY}: +){_R_SCALAR}{_R_TAIL}|#{_R_PRINT}*)? *"
    f"| {{0,64}}(?:- )?{_R_KEY}:"
)
_RE2_DOC = f"\\A(?:(?:{_R_LINE})(?:\\n|\\z))*\\z"


_KEY_BYTES = np.zeros(256, bool)
_KEY_BYTES[[ord(c) for c in _KEY_ASCII]] = True


def _colon_newlines(joined: bytes) -> np.ndarray:
    """Where `:` is followed by a newline: compared two bytes at a time (as
    16-bit numbers at even, then odd offsets), twice as fast as byte by byte."""
    pair = int.from_bytes(b":\n", "little")
    found = []
    for offset in (0, 1):
        words = np.frombuffer(joined, "<u2", count=(len(joined) - offset) // 2, offset=offset)
        found.append(np.flatnonzero(words == pair) * 2 + offset)
    return np.sort(np.concatenate(found))


def _indentless(joined: bytes, starts: np.ndarray) -> np.ndarray:
    """Per text (each starting at `starts` in `joined`, each ending in a newline):
    True where a line ending in `:` may be followed by an indentless `- `
    (_NEXT's test), or by a blank or comment line (not worth skipping).

    Indentless means a `- ` at the column of that line's key: at its
    indentation after `key:`, two columns right of it after `- key:`. The
    key column is found walking back from the colon, which is exact for the
    empty-key lines `_RE2_DOC` accepts."""
    buf = np.frombuffer(joined, np.uint8)
    n = len(buf)
    colons = _colon_newlines(joined)
    hit = np.zeros(len(starts), bool)
    if not len(colons):
        return hit
    # back over the key, then `- ` and the indentation, to the line's start
    key = colons.copy()
    while True:
        more = _KEY_BYTES[buf.take(key - 1, mode="clip")] & (key > 0)
        if not more.any():
            break
        key -= more
    begin = key - 2 * ((buf.take(key - 2, mode="clip") == 45) & (buf.take(key - 1, mode="clip") == 32) & (key >= 2))
    while True:
        more = (buf.take(begin - 1, mode="clip") == 32) & (begin > 0)
        if not more.any():
            break
        begin -= more
    column = key - begin
    # the next line: its indentation and first characters
    nxt = colons + 2
    indent = np.zeros(len(nxt), np.int64)
    while True:
        more = buf.take(nxt + indent, mode="clip") == 32
        more &= nxt + indent < n
        if not more.any():
            break
        indent += more
    first = buf.take(nxt + indent, mode="clip")
    dash = (first == 45) & (buf.take(nxt + indent + 1, mode="clip") == 32)
    blank = (first == 10) | (first == 35)
    own = np.searchsorted(starts, colons, side="right") - 1
    last = nxt >= np.append(starts[1:], n)[own]  # the text's last line: nothing follows
    bad = ~last & (blank | (dash & (indent == column)))
    hit[own[bad]] = True
    return hit


def precheck(texts: list[bytes]) -> list[bool]:
    """For each UTF-8 text (decoded already), True if `_DOC` surely matches it;
    False if that is not known.

    One RE2 pass over the whole batch and a little NumPy: several times
    cheaper than `_DOC` text by text. (A text with a CR is never True: CRLF
    must be replaced first.)"""
    if not texts:
        return []
    # each text gets a newline (an empty last line, which changes nothing
    # for _DOC), so one buffer holds them all; Arrow reads it in place
    joined = b"\n".join([*texts, b""])
    offsets = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)) + 1, out=offsets[1:])
    arr = pa.LargeStringArray.from_buffers(len(texts), pa.py_buffer(offsets), pa.py_buffer(joined))
    try:
        ok = pc.match_substring_regex(arr, _RE2_DOC).to_numpy(zero_copy_only=False)
    except pa.ArrowException as e:  # an RE2 that refuses the pattern: slower, never wrong
        global _precheck_warned
        if not _precheck_warned:
            _precheck_warned = True
            warnings.warn(f"fastyaml.precheck is off ({e}): every record gets the slower per-record regex",
                          RuntimeWarning, stacklevel=2)
        return [False] * len(texts)
    return (ok & ~_indentless(joined, offsets[:-1])).tolist()


_precheck_warned = False

# --- timestamps -----------------------------------------------------------------

# The exact regexp PyYAML's resolver uses to call a plain scalar a timestamp.
_TS_RESOLVER = next(
    rx
    for tag, rx in yaml.resolver.Resolver.yaml_implicit_resolvers["0"]
    if tag == "tag:yaml.org,2002:timestamp"
)
_TS_TAG = "tag:yaml.org,2002:timestamp"
_SAFE_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_ts_match = _TS_RESOLVER.match
_fromisoformat = datetime.datetime.fromisoformat


def _timestamp(v: str) -> datetime.date:
    """The value PyYAML's SafeConstructor builds for the plain timestamp `v`."""
    # Fast path for the usual `2021-02-12T20:25:00Z`: PyYAML builds it with no
    # fraction and tz "Z" -> timezone.utc, as fromisoformat does (3.11+). The
    # `:` positions pin a two-digit hour, so no fraction or space hides in the
    # 20 characters; hour 24 goes the slow way (newer Pythons may accept it).
    if len(v) == 20 and v[19] == "Z" and v[10] == "T" and v[13] == ":" and v[16] == ":" and v[11:13] < "24":
        return _fromisoformat(v)
    out = _SAFE_CONSTRUCTOR.construct_yaml_timestamp(yaml.nodes.ScalarNode(_TS_TAG, v))
    if out.__class__ is datetime.datetime and out.tzinfo is not None and out.year in (1, 9999):
        out.astimezone(datetime.timezone.utc)  # OverflowError past the years 1-9999 in UTC: safeyaml decides
    return out


_convert_match = re.compile(_CONVERTS.replace("{end}", r"\Z")).match
_INT_MATCH = _resolver("int").match
_INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"


def _number(v: str) -> int | float:
    """The value PyYAML's SafeConstructor builds for the plain YAML 1.1 int or float `v`."""
    if _INT_MATCH(v):
        return _SAFE_CONSTRUCTOR.construct_yaml_int(yaml.nodes.ScalarNode(_INT_TAG, v))
    return _SAFE_CONSTRUCTOR.construct_yaml_float(yaml.nodes.ScalarNode(_FLOAT_TAG, v))


def _convert_plain(node: dict | list) -> None:
    """Replace, in place, every string that PyYAML would resolve as a timestamp, or as an int
    or float JSON could not carry (see _CONVERTS): only plain scalars decode to such strings."""
    # Recursion is fine: the accepted subset bounds the nesting depth.
    items = node.items() if node.__class__ is dict else enumerate(node)
    for k, v in items:
        c = v.__class__
        if c is str:
            # cheap filter first: both start with a digit
            if "0" <= v[:1] <= "9":
                if v[4:5] == "-" and _ts_match(v):
                    node[k] = _timestamp(v)  # same key: safe while iterating
                elif _convert_match(v):
                    node[k] = _number(v)
        elif c is dict or c is list:
            _convert_plain(v)


def _convert_known(record: dict) -> int:
    """Convert the timestamps where records keep them; return how many were converted."""
    n = 0
    v = record.get(_KNOWN_TS)
    if v.__class__ is str and v[4:5] == "-" and _ts_match(v):
        record[_KNOWN_TS] = _timestamp(v)
        n += 1
    related = record.get("related")
    if related.__class__ is list:
        for link in related:
            if link.__class__ is dict:
                v = link.get(_KNOWN_TS)
                if v.__class__ is str and v[4:5] == "-" and _ts_match(v):
                    link[_KNOWN_TS] = _timestamp(v)
                    n += 1
    return n


# --- API --------------------------------------------------------------------------

# Emitting JSON into a reused buffer is ~2.5x cheaper than emit_json_malloc
# (which sizes the output, then decodes it into a str). One buffer per
# thread, kept only while small; big texts get a temporary one.
_local = threading.local()
_KEEP = 1 << 20


def _json_buffer(size: int) -> bytearray:
    buf = getattr(_local, "buf", None)
    if buf is not None and len(buf) >= size:
        return buf
    buf = bytearray(max(size, 1 << 16))
    if len(buf) <= _KEEP:
        _local.buf = buf
    return buf


# Where plain timestamps can be without a walk of the whole record: the
# record's own and its related links' publishedDateTime. In rapidyaml's JSON
# a string value starting like a date reads `"YYYY-`; counting those (plain
# keys never start with a digit in the fast subset; an escaped quote inside a
# string can only add to the count) bounds the timestamps from above. A whole
# string of a digit and number characters may be a YAML 1.1 number to convert:
# any such string means a walk of the whole record.
_JSON_CANDIDATE = re.compile(rb'"[0-9](?:[0-9]{3}-|[0-9a-fA-FxX_:.+-]*")')
_KNOWN_TS = "publishedDateTime"


def _emit_json(tree, node: int, size: int) -> tuple[bytearray, int]:
    """rapidyaml's JSON of `node` into a reused buffer: (buffer, length)."""
    buf = _json_buffer(2 * size + 256)
    failed, n = ryml.emit_json_to_substr(tree, node, buf)
    if failed:  # deep nesting made the JSON bigger than the guess: retry, sized
        buf = _json_buffer(n + 256)
        failed, n = ryml.emit_json_to_substr(tree, node, buf)
        if failed:
            raise ValueError("rapidyaml JSON size changed")
    return buf, n


_fds: tuple[int, int, int] | None = None  # this process's (pid, /dev/null, a copy of its stderr)


def _parse_quietly(data: bytes, tree) -> None:
    """ryml.parse_csubstr, without the message its C++ error handler prints on the
    process's stderr before it raises: a text it refuses falls back to safeyaml,
    whose error (line and column of the file) is the one the user sees. The fd is
    redirected for the parse only, microseconds, so nothing else goes missing."""
    global _fds
    if _fds is None or _fds[0] != os.getpid():
        _fds = (os.getpid(), os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC), os.dup(2))
    os.dup2(_fds[1], 2)
    try:
        ryml.parse_csubstr(data, tree)
    finally:
        os.dup2(_fds[2], 2)


def _ryml_to_python(data: bytes, split: bytes | None = None) -> tuple[object, list, bytes | None, int]:
    """rapidyaml parse -> JSON bytes -> orjson: (value, the string values that may need
    `_convert_plain` (_JSON_CANDIDATE), JSON of the top-level key `split` or None, the tree's
    nodes without that key).

    With `split`, that key's value is not decoded: its JSON comes back as bytes
    (`"key": value`) and the key is left out of the value. Raises whatever
    rapidyaml and orjson raise, and NeedsFallback past the node cap."""
    # rapidyaml's tree and JSON take about 500 bytes a node: a huge record would
    # take gigabytes before it could be counted (limits.FAST_NODES). In the
    # subset every node but the root is an entry (`key:`) or an item (`- `), so
    # their count bounds the nodes; below 2 bytes a node, a short text cannot pass.
    if len(data) > 2 * limits.FAST_NODES and data.count(b":") + data.count(b"- ") >= limits.FAST_NODES:
        raise NeedsFallback("too many keys and items for the fast parser")
    tree = ryml.Tree()
    _parse_quietly(data, tree)
    root = tree.root_id()
    part = None
    if split is not None and tree.is_map(root):
        node = tree.find_child(root, split)
        if node != ryml.NONE:
            if tree.is_container(node):
                # on one line, without the indentation: Arrow's JSON reader takes a third less time
                tree.set_container_style(node, ryml.FLOW_SL)
            buf, n = _emit_json(tree, node, len(data))
            part = bytes(buf[:n])
            tree.remove(node)
            if tree.find_child(root, split) != ryml.NONE:
                raise ValueError("duplicate key")  # PyYAML keeps the last one: let it judge
    buf, size = _emit_json(tree, root, len(data))
    with memoryview(buf) as view:
        json = view[:size]
        return orjson.loads(json), _JSON_CANDIDATE.findall(json), part, tree.size()


def _nodes(value) -> int:
    """Values in `value`, itself included, counted as rapidyaml counts its nodes."""
    c = value.__class__
    if c is dict:
        return 1 + sum(map(_nodes, value.values()))
    if c is list:
        return 1 + sum(map(_nodes, value))
    return 1


def load_fast(text: str, utf8: bytes | None = None, checked: bool = False) -> object:
    """What `yaml.load(text, Loader=yaml.CSafeLoader)` returns, or raise NeedsFallback.

    `utf8`, if given, must be `text` encoded as UTF-8 (saves encoding it again);
    `checked=True` says `precheck` passed `utf8` (which must then be given)."""
    return _load_fast(text, utf8, None, checked)[0]


def load_fast_split(text: str, utf8: bytes | None = None, key: str = "related",
                    checked: bool = False) -> tuple[dict, bytes | None]:
    """Like `load_fast`, but the top-level `key` is not decoded into Python objects:
    (the mapping without `key`, rapidyaml's JSON `"key": value` or None if absent).

    The JSON is exactly what `load_fast` would decode for that key, except that
    plain timestamps are still strings in it (flatten checks them).
    `checked=True` says `precheck` passed `utf8` (which must then be given)."""
    return _load_fast(text, utf8, key.encode("utf-8"), checked)


def _load_fast(text: str, utf8: bytes | None, split: bytes | None, checked: bool = False) -> tuple[dict, bytes | None]:
    if ryml is None or orjson is None:
        raise NeedsFallback("rapidyaml or orjson is not installed")
    if text.__class__ is not str:
        raise NeedsFallback("not a str")
    if "\r" in text:
        # CRLF is an ordinary line break for both parsers; a lone CR (a break
        # for PyYAML only) stays and fails the regex below.
        text = text.replace("\r\n", "\n")
        utf8 = None
    if not (checked and utf8 is not None) and _doc().fullmatch(text) is None:
        raise NeedsFallback("outside the fast subset")
    try:
        value, candidates, part, nodes = _ryml_to_python(text.encode("utf-8") if utf8 is None else utf8, split)
    except Exception as e:  # any rapidyaml or orjson error: let PyYAML judge
        raise NeedsFallback(f"fast parser failed: {type(e).__name__}") from None
    if value.__class__ is not dict:  # also None: empty or comment-only text
        raise NeedsFallback("top level is not a mapping")
    if _nodes(value) != nodes:  # orjson kept the last of a key given twice
        raise NeedsFallback("a key is given twice")
    try:
        if candidates:
            dates = sum(c[-1:] == b"-" for c in candidates)
            if dates < len(candidates) or _convert_known(value) < dates:
                _convert_plain(value)  # some are elsewhere, or numbers: look everywhere
    except Exception as e:  # e.g. month 13: PyYAML raises its own error
        raise NeedsFallback(f"timestamp: {e}") from None
    return value, part


def load(text: str, utf8: bytes | None = None) -> tuple[object, bool]:
    """(value, used_fast): the fast path when it is sure, else `safeyaml.load`
    (which raises safeyaml.YAMLProblem for text it refuses)."""
    try:
        return load_fast(text, utf8), True
    except NeedsFallback:
        return safeyaml.load(text), False


def load_split(text: str, utf8: bytes | None = None, key: str = "related",
               checked: bool = False) -> tuple[object, bool, bytes | None]:
    """(value, used_fast, JSON of `key`): `load_fast_split` when it is sure, else
    `safeyaml.load`'s whole value (`key` included) and None."""
    try:
        value, part = load_fast_split(text, utf8, key, checked)
        return value, True, part
    except NeedsFallback:
        return safeyaml.load(text), False, None
