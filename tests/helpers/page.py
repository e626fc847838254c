"""Reading the HTML report as a person reads it: tables by their column labels, tiles,
headlines, charts. Built on html.parser only (no code of newsetl's)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

VOID = {"meta", "br", "wbr", "img", "hr", "input", "link"}  # SVG shapes are written <x/> or closed


class Node:
    def __init__(self, tag: str, attrs: dict, parent: Node | None):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        """The text a reader sees (SVG <title> tooltips left out)."""
        out = []
        for c in self.children:
            if isinstance(c, str):
                out.append(c)
            elif c.tag != "title" or self.tag not in ("svg", "rect", "circle"):
                out.append(c.text())
        return "".join(out)

    def iter(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.iter()

    def find_all(self, tag: str | None = None, *, cls: str | None = None, id: str | None = None) -> list[Node]:
        return [n for n in self.iter()
                if (tag is None or n.tag == tag) and (cls is None or cls in n.classes)
                and (id is None or n.attrs.get("id") == id)]

    def find(self, tag: str | None = None, **kw) -> Node:
        found = self.find_all(tag, **kw)
        assert found, f"no <{tag}> {kw}"
        return found[0]

    def ancestors(self):
        n = self.parent
        while n is not None:
            yield n
            n = n.parent


class _Builder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, dict(attrs), self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


# bidirectional isolates (LRI, RLI, FSI, PDI): invisible, they only keep a value's direction to itself
_ISOLATES = dict.fromkeys(range(0x2066, 0x206A))


def squash(text: str) -> str:
    """Text as a reader sees it: white space collapsed, invisible isolate marks left out."""
    return " ".join(text.translate(_ISOLATES).split())


class Page:
    def __init__(self, html: str):
        b = _Builder()
        b.feed(html)
        self.html = html
        self.root = b.root

    def table(self, id: str) -> list[dict]:
        """Rows as {column label: cell text}, plus "_key" (the row's data-key) and "_class"."""
        t = self.root.find("table", id=id)
        labels = [squash(th.text()) for th in t.find_all("th")]
        rows = []
        for tr in t.find("tbody").find_all("tr"):
            cells = tr.find_all("td")
            if len(cells) == 1 and "null" in cells[0].classes and cells[0].attrs.get("colspan"):
                continue  # the "no rows" line
            row = {label: squash(td.text()) for label, td in zip(labels, cells)}
            row["_key"] = tr.attrs.get("data-key")
            row["_class"] = tr.attrs.get("class", "")
            row["_cells"] = cells
            rows.append(row)
        return rows

    def empty_text(self, id: str) -> str | None:
        t = self.root.find("table", id=id)
        cells = t.find("tbody").find_all("td")
        return squash(cells[0].text()) if len(cells) == 1 and cells[0].attrs.get("colspan") else None

    def labels(self, id: str) -> list[str]:
        return [squash(th.text()) for th in self.root.find("table", id=id).find_all("th")]

    def cards(self, within: str = "kpis") -> dict[str, tuple[str, str]]:
        """{label: (value, sub-line)} of the tiles."""
        out = {}
        for c in self.root.find(id=within).find_all("div", cls="card"):
            v, k = c.find("div", cls="v"), c.find("div", cls="k")
            s = c.find_all("div", cls="s")
            out[squash(k.text())] = (squash(v.text()), squash(s[0].text()) if s else "")
        return out

    def glance(self) -> list[str]:
        return [squash(li.text()) for li in self.root.find("ul", cls="glance").find_all("li")]

    def scope_lines(self) -> dict[str, str]:
        out = {}
        for p in self.root.find("header").find_all("p", cls="scope"):
            text = squash(p.text())
            head, _, rest = text.partition(":")
            out[head] = rest.strip()
        return out

    def section_text(self, id: str) -> str:
        return squash(self.root.find("section", id=id).text())

    def figure(self, id: str) -> Node:
        return self.root.find("figure", id=id)

    def charts(self) -> list[Node]:
        return self.root.find_all("svg")

    def visible_text(self) -> str:
        """Everything a reader sees, but text inside <code> (commands and field names)."""
        out = []

        def walk(n: Node):
            for c in n.children:
                if isinstance(c, str):
                    out.append(c)
                elif c.tag in ("code", "style", "title", "head"):
                    continue
                else:
                    walk(c)

        walk(self.root.find("body"))
        return squash(" ".join(out))


def num(text: str):
    """A figure as shown: "1,234", "39.4%", "−3", "+12", "±0", "—" (None)."""
    t = text.strip().replace(",", "").replace("%", "").replace("−", "-").replace("±", "").replace("+", "")
    if t in ("—", ""):
        return None
    return float(t) if "." in t else int(t)


_MOVE = re.compile(r"^(?P<a>[^→]+?)\s*→\s*(?P<b>[^(]+?)\s*\((?P<d>[^)]*)\)$|^(?P<new>\S+) \(new\)$")


def move(text: str) -> tuple:
    """"22 → 76 (+54)" -> (22, 76, "+54"); "3 (new)" -> (None, 3, "new")."""
    m = _MOVE.match(text)
    assert m, text
    if m.group("new"):
        return None, num(m.group("new")), "new"
    return num(m.group("a")), num(m.group("b")), m.group("d")
