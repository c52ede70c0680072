"""The lxml engine of `extract`: the text `extract_soup` makes, without building a soup.

BeautifulSoup builds its tree from libxml2's parser events, then the renderer walks
bs4 objects; both cost far more than the parse. This engine lets libxml2 build the
tree (from the same parser, fed the same way), selects with XPath translated from CSS
by cssselect, and renders from `.text`/`.tail`, following `extract_soup` rule for
rule, so that the text is byte-identical (`tests/test_extract_lxml.py` compares them).

Where that equality cannot be had cheaply, `Unsupported` says why and `extract` runs
the BeautifulSoup engine instead:
- a selector cssselect cannot translate, or may match differently from soupsieve
  (`lxml_select._usage` lets through only what matches alike);
- a structural pseudo-class (:first-child, :nth-child()...) on a page with several
  top-level elements (text after </html>): soupsieve counts those differently;
- a hidden or removed top-level element;
- a <!DOCTYPE> after the first tag (`lxml_parse._late_doctype`);
- a page nested deeper than the 256 levels libxml2 builds a tree for;
- an input lxml builds no tree from, or a string lxml will not write back (a control
  character in the class attribute or the text of a flattened subtree).

Two details keep the trees alike. Elements that bs4 would delete (dropped, hidden,
removed) are replaced by an empty comment that keeps their tail: selectors never
see a comment, and the text before and after stays two strings, as in bs4 (a list
renders each loose string as its own item). And the class attribute is normalised
the way bs4 splits it before a selector reads it.

Parsing lives in `lxml_parse`, selector translation in `lxml_select`; this module
drops what bs4 would not render and renders the rest.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence

from lxml import etree
from lxml.etree import _Element as Element
from lxml.etree import _ElementTree as Document

from tracker.extract.lxml_parse import Unsupported, parse
from tracker.extract.lxml_select import compiled
from tracker.extract.rules import (
    BLOCK_TAGS,
    BREAK,
    CF_EMAIL_ATTRIBUTE,
    CONTROL,
    DROPPED_TAGS,
    HEADINGS,
    LINK_BLOCKS,
    MAX_DEPTH,
    TABLE_PARTS,
    cf_decode,
    finish_inline,
    finish_plain,
    has_odd,
    is_hidden,
    link,
    list_item,
    list_number,
    list_start,
    quote,
)


def render(
    body: bytes | str, encoding: str | None, select: Sequence[str], remove: Sequence[str]
) -> list[str] | None:
    """The page's text blocks, or None when `select` is given and matches nothing.

    Raises `Unsupported` (before any work when a selector is the reason).
    """
    chosen = compiled(tuple(select))
    removing = [compiled((selector,)) for selector in remove]
    root = parse(body, encoding)
    tops = [root, *(e for e in root.itersiblings() if isinstance(e.tag, str))]
    document = root.getroottree()
    structural = chosen.structural or any(r.structural for r in removing)
    if structural and len(tops) > 1:
        raise Unsupported("a structural pseudo-class on a page with several top-level elements")
    _drop_unseen(document, tops)
    if chosen.classes or any(r.classes for r in removing):
        _normalise_classes(document)
    for selector in removing:
        _drop(selector(document), tops)
    flattened = _flatten_deep(document)
    renderer = _Renderer(flattened, plain=_plain(document, tops), emails=_emails(document))
    if not select:
        return renderer.children(None, tops)
    roots = _outermost(chosen(document))
    if not roots:
        return None
    blocks: list[str] = []
    for element in roots:
        blocks.extend(renderer.children(element.text, element))
    return blocks


_SPACE_SEPARATED = re.compile(r"\S+")  # how bs4 splits a class attribute
_IRREGULAR = re.compile(r"(?:^|\x01)\s|\s(?:\x01|$)|[^\S ]|  ")
_CLASS_VALUES = etree.XPath("//@class")


def _normalise_classes(document: Document) -> None:
    """Write each class attribute as bs4 splits it: words joined by single spaces."""
    values: list[etree._ElementUnicodeResult] = _CLASS_VALUES(document)
    if not values or not _IRREGULAR.search("\x01".join(values)):
        return
    for value in values:
        words = " ".join(_SPACE_SEPARATED.findall(value))
        if words != value:
            owner = value.getparent()
            try:
                owner.set("class", words)
            except ValueError as exc:  # a control character lxml will not write back
                raise Unsupported("class attribute lxml cannot rewrite") from exc


def _outermost(matched: list[Element]) -> list[Element]:
    """Matched elements in document order (XPath gives it), without matched descendants."""
    if len(matched) < 2:
        return matched
    found = set(matched)
    return [e for e in matched if not any(a in found for a in e.iterancestors())]


# --- cleaning ----------------------------------------------------------------------------

# Attributes that can hide an element; `//@a | //@b` is several times faster than
# `//*[@a or @b]` in libxml2.
_MAYBE_HIDDEN = etree.XPath("//@hidden | //@aria-hidden | //@style")


def _drop_unseen(document: Document, tops: list[Element]) -> None:
    """Drop dropped tags and hidden elements (and so all they hold), as bs4's clean_tree."""
    unseen = dict.fromkeys(e for top in tops for e in top.iter(*DROPPED_TAGS))
    for value in _MAYBE_HIDDEN(document):
        element = value.getparent()
        if element not in unseen and is_hidden(
            element.get("hidden") is not None,
            element.get("aria-hidden", ""),
            element.get("style"),
        ):
            unseen[element] = None
    _drop(list(unseen), tops)


# A tag name the HTML parser never makes (it lower-cases every name): marks what goes.
_GONE = "Gone"


def _drop(elements: list[Element], tops: list[Element]) -> None:
    """Replace elements by an empty comment that takes over their tail (see the module doc).

    The tail text node is moved, not copied: lxml refuses to write a string holding a
    control character, and pages have those.
    """
    if not elements:
        return
    for element in elements:
        if element.getparent() is None:
            raise Unsupported("a top-level element is hidden or removed")
        element.addprevious(etree.Comment())
        element.tag = _GONE
    for top in tops:
        etree.strip_elements(top, _GONE, with_tail=False)


# Elements `MAX_DEPTH` levels down (the top-level element is level 1) with element children.
_TOO_DEEP = etree.XPath("/" + "/".join(["*"] * (MAX_DEPTH - 1) + ["*[*]"]))


def _flatten_deep(document: Document) -> set[Element]:
    """`extract_soup.flatten_deep`: deeper subtrees become their plain text.

    Returns the elements whose text is now plain (bs4 makes it a new string, which
    counts as text inside <rt> too).
    """
    cut: list[Element] = _TOO_DEEP(document)
    for element in cut:
        text = _flat_text(element)
        for child in list(element):
            element.remove(child)
        try:
            element.text = text
        except ValueError as exc:
            raise Unsupported("deep text lxml cannot write back") from exc
    return set(cut)


def _flat_text(element: Element) -> str:
    """The text of a subtree, iteratively, with block boundaries kept as spaces."""
    parts: list[str] = [element.text or ""]
    for event, node in etree.iterwalk(element, events=("start", "end", "comment", "pi")):
        if node is element:
            continue
        if event == "start":
            if node.tag in BLOCK_TAGS or node.tag == "br":
                parts.append(" ")
            parts.append(node.text or "")
        else:  # the end of an element, or a comment or processing instruction
            parts.append(node.tail or "")
    return "".join(parts)


# --- rendering ---------------------------------------------------------------------------

_HREFS = etree.XPath("//a/@href")


def _plain(document: Document, tops: list[Element]) -> bool:
    """Whether no text left on the page, and no link target, has a character `has_odd` finds.

    Then the text needs no control characters stripped and `finish_plain` can do the
    work of `finish_inline`: one scan of the page instead of several.
    """
    text = "".join(etree.tostring(top, method="text", encoding=str) for top in tops)
    if not has_odd(text):
        return not has_odd("".join(_HREFS(document)))
    if "\x0c" in text:
        # bs4 turns a string of nothing but ASCII whitespace (outside <pre>) into " " or
        # "\n"; that changes the text only where the string holds a form feed, which
        # would otherwise go as a control character.
        raise Unsupported("a form feed in the text")
    return False


_ENCODED_EMAILS = etree.XPath(f"//@{CF_EMAIL_ATTRIBUTE}")


def _emails(document: Document) -> dict[Element, str]:
    """Elements holding a Cloudflare-encoded address (see `extract_rules.cf_decode`),
    with the address each stands for: the renderer writes the address instead."""
    out: dict[Element, str] = {}
    for value in _ENCODED_EMAILS(document):
        address = cf_decode(value)
        if address is not None:
            out[value.getparent()] = address
    return out


def _strings(element: Element) -> Iterator[str | Element]:
    """An element's content as bs4 sees it: its strings and child elements, in order."""
    if element.text:
        yield element.text
    for child in element:
        if isinstance(child.tag, str):
            yield child
        if child.tail:
            yield child.tail


# Blocks that `_Renderer.block` renders as their children: one without any is its text.
_RENDERED_APART = ("ul", "ol", "menu", "table", "pre", "hr", "blockquote", "dd")
_TEXT_BLOCKS = BLOCK_TAGS.difference(HEADINGS, _RENDERED_APART)


class _Renderer:
    """`extract_soup`'s renderer over lxml elements.

    `extract_soup` turns each <br> of a rendered <pre> into a "\\n" string, for good;
    `converted` remembers those, so a later inline rendering of the same <br> agrees.
    `emails` maps an element with an encoded address to the address: inline, it reads
    as that address alone, as Cloudflare's script makes it in a browser.
    """

    def __init__(
        self, flattened: set[Element], *, plain: bool, emails: dict[Element, str] | None = None
    ) -> None:
        self.flattened = flattened
        self.emails = emails or {}
        self.converted: set[Element] = set()
        self.plain = plain
        self.finish = finish_plain if plain else finish_inline

    def _text(self, text: str) -> str:
        """A string as inline text: `extract_soup._text_of` (nothing to strip when plain)."""
        return text if self.plain else CONTROL.sub("", text)

    def children(self, text: str | None, nodes: Iterable[Element]) -> list[str]:
        """Render a container's children as a list of blocks (paragraph-sized strings)."""
        blocks: list[str] = []
        plain, finish = self.plain, self.finish
        inline: list[str] = [self._text(text)] if text else []
        for child in nodes:
            tag = child.tag
            if isinstance(tag, str):
                if tag in BLOCK_TAGS or (len(child) and self._contains_block(child, tag)):
                    if inline:
                        if flushed := finish("".join(inline)):
                            blocks.append(flushed)
                        inline.clear()
                    if tag in _TEXT_BLOCKS and not len(child):  # a paragraph of text alone
                        text = child.text
                        if text and (flushed := finish(self._text(text))):
                            blocks.append(flushed)
                    else:
                        blocks.extend(self.block(child, tag))
                else:
                    inline.append(self.inline(child, tag))
            tail = child.tail
            if tail:
                inline.append(tail if plain else CONTROL.sub("", tail))
        if inline and (flushed := finish("".join(inline))):
            blocks.append(flushed)
        return blocks

    def block(self, element: Element, tag: str) -> list[str]:
        if tag in HEADINGS:
            text = self._inline_of(element)
            return [f"{'#' * HEADINGS[tag]} {text}"] if text else []
        if tag in ("ul", "ol", "menu"):
            return self._list(element, tag)
        if tag == "table":
            return self._table(element)
        if tag == "pre":
            parts: list[str] = []
            ruby = any(True for _ in element.iterancestors("rt", "rp"))
            self._pre_text(element, ruby, parts)
            code = "".join(parts).strip("\n")
            return [f"```\n{code}\n```"] if code.strip() else []
        if tag == "hr":
            return ["---"]
        if tag == "blockquote":
            return [quote(b) for b in self.children(element.text, element)]
        if tag == "dd":
            return [": " + b for b in self.children(element.text, element)]
        return self.children(element.text, element)

    def _pre_text(self, element: Element, ruby: bool, parts: list[str]) -> None:
        """A <pre>'s text as bs4's get_text gives it once each <br> is a "\\n" string.

        get_text skips strings parsed inside <rt> or <rp> (bs4 types them apart);
        the "\\n" strings, decoded addresses and flattened text are new strings,
        always kept.
        """
        inside = ruby or element.tag in ("rt", "rp")
        if element.text and (not inside or element in self.flattened):
            parts.append(element.text)
        for child in element:
            if isinstance(child.tag, str):
                if child.tag == "br":
                    self.converted.add(child)
                    parts.append("\n")
                elif self.emails and child in self.emails:
                    parts.append(self.emails[child])
                else:
                    self._pre_text(child, inside, parts)
            if child.tail and not inside:
                parts.append(child.tail)

    def _list(self, element: Element, tag: str) -> list[str]:
        ordered = tag == "ol"
        reversed_ = ordered and element.get("reversed") is not None
        step = -1 if reversed_ else 1
        count = sum(1 for child in element if child.tag == "li") if reversed_ else 0
        number = list_start(element.get("start"), count, reversed_)
        style = element.get("type", "1")
        items: list[str] = []
        for child in _strings(element):
            if isinstance(child, str):
                if child.strip():
                    items.append("- " + self.finish(child))
                continue
            name: str = child.tag
            if name != "li":
                if name in BLOCK_TAGS:
                    items.extend(self.block(child, name))
                elif text := self.finish(self.inline(child, name)):
                    items.append("- " + text)  # a custom element standing in for <li>
                continue
            value = child.get("value")
            if ordered and value:
                with contextlib.suppress(ValueError):
                    number = int(value)
            marker = f"{list_number(number, style)}. " if ordered else "- "
            number += step
            body = "\n".join(self.children(child.text, child))
            if body:
                items.append(list_item(marker, body))
        return ["\n".join(items)] if items else []

    def _table(self, table: Element) -> list[str]:
        rows: list[str] = []
        header_done = False
        for tr in table.iterdescendants("tr"):
            if _table_of(tr) is not table:
                continue  # a nested table is rendered inside its cell's text
            cells = [c for c in tr if c.tag == "th" or c.tag == "td"]
            if not cells:
                continue
            texts = [
                " ".join(self.children(c.text, c)).replace("\n", " ").replace("|", "\\|")
                for c in cells
            ]
            rows.append("| " + " | ".join(texts) + " |")
            if not header_done:
                header_done = True
                if all(c.tag == "th" for c in cells):
                    rows.append("|" + "|".join(" --- " for _ in cells) + "|")
        caption = next(table.iterdescendants("caption"), None)
        out = [text] if caption is not None and (text := self._inline_of(caption)) else []
        out.extend(self._outside_cells(table))
        if rows:
            out.append("\n".join(rows))
        return out

    def _outside_cells(self, table: Element) -> list[str]:
        """Text that sits in a table but in no cell (a note before the rows): keep it."""
        blocks: list[str] = []
        parts = [table, *table.iterdescendants("thead", "tbody", "tfoot", "tr")]
        for part in parts:
            if part is not table and _table_of(part) is not table:
                continue
            for child in _strings(part):
                if isinstance(child, str):
                    if text := self.finish(self._text(child)):
                        blocks.append(text)
                    continue
                name: str = child.tag
                if name in TABLE_PARTS:
                    continue
                if name in BLOCK_TAGS:
                    blocks.extend(self.block(child, name))
                elif text := self.finish(self.inline(child, name)):
                    blocks.append(text)
        return blocks

    def inline(self, element: Element, tag: str) -> str:
        if tag == "br":
            return "\n" if element in self.converted else BREAK
        if tag == "img":
            return ""
        if self.emails and element in self.emails:
            return self.emails[element]
        plain = self.plain
        text = element.text
        parts: list[str] = [text if plain else CONTROL.sub("", text)] if text else []
        for child in element:
            name = child.tag
            if isinstance(name, str):
                parts.append(self.inline(child, name))
            tail = child.tail
            if tail:
                parts.append(tail if plain else CONTROL.sub("", tail))
        inner = "".join(parts)
        if tag == "a":
            return link(inner, element.get("href") or "", self.finish)
        return inner

    def _inline_of(self, element: Element) -> str:
        return " ".join(self.children(element.text, element)).replace("\n", " ").strip()

    @staticmethod
    def _contains_block(element: Element, tag: str) -> bool:
        """An inline element wrapping blocks (a card link around a heading) is a container."""
        names = LINK_BLOCKS if tag == "a" else BLOCK_TAGS
        return any(node.tag in names for node in element.iterdescendants())


def _table_of(element: Element) -> Element | None:
    return next(element.iterancestors("table"), None)
