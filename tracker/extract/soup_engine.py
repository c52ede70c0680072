"""The BeautifulSoup engine of `extract`: the reference output, and the fallback.

This is the original implementation, kept as it was. `extract_lxml` must give
byte-identical text and is what runs; this engine runs only for what the lxml engine
cannot do exactly (a selector only soupsieve understands, see
`extract_lxml.Unsupported`), and `tests/test_extract_lxml.py` compares the two.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment, Declaration, Doctype, PageElement, ProcessingInstruction

from tracker.extract.rules import (
    BLOCK_TAGS,
    BREAK,
    CF_EMAIL_ATTRIBUTE,
    CONTROL,
    DROPPED,
    HEADINGS,
    LINK_BLOCKS,
    MAX_DEPTH,
    TABLE_PARTS,
    WINDOWS_1252_LABELS,
    browser_encoding,
    cf_decode,
    finish_inline,
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
    """The page's text blocks, or None when `select` is given and matches nothing."""
    soup = parse_html(body, encoding)
    clean_tree(soup, remove)
    # Without `select`, the whole document: lxml can leave text after an early </body>.
    roots: list[Tag] = select_roots(soup, select) if select else [soup]
    if select and not roots:
        return None
    blocks: list[str] = []
    for root in roots:
        blocks.extend(_render_children(root))
    return blocks


def parse_html(body: bytes | str, encoding: str | None = None) -> BeautifulSoup:
    """Parse with lxml; the server's declared charset wins over the page's own."""
    if isinstance(body, str):
        return BeautifulSoup(body, "lxml")
    if encoding:
        try:
            return BeautifulSoup(body, "lxml", from_encoding=browser_encoding(encoding))
        except LookupError:
            pass  # an unknown charset name: let detection decide
    soup = BeautifulSoup(body, "lxml")
    if soup.original_encoding and soup.original_encoding.lower() in WINDOWS_1252_LABELS:
        soup = BeautifulSoup(body, "lxml", from_encoding="windows-1252")
    return soup


def clean_tree(soup: BeautifulSoup, remove: Iterable[str] = ()) -> None:
    """Drop what a reader never sees, then what the configuration says to remove."""
    # One walk finds comments, dropped tags and hidden tags (bs4's find_all would walk
    # the whole tree once for each); what is under a dropped tag goes with it.
    drop: list[Tag] = []
    strip: list[PageElement] = []
    stack: list[Tag] = [soup]
    while stack:
        for child in stack.pop().contents:
            if isinstance(child, Tag):
                if child.name in DROPPED or _is_hidden(child):
                    drop.append(child)
                else:
                    stack.append(child)
            elif isinstance(child, Comment | ProcessingInstruction):
                strip.append(child)
    for node in strip:
        node.extract()
    for tag in drop:
        tag.decompose()
    for selector in remove:
        for tag in soup.select(selector):
            tag.decompose()
    flatten_deep(soup)


def flatten_deep(soup: BeautifulSoup, limit: int = MAX_DEPTH) -> int:
    """Replace what is nested deeper than `limit` by its plain text.

    Legacy pages nest hundreds of unclosed <font> or <div> tags; rendering recurses
    per level, so without this one such page would hit Python's recursion limit.
    Runs in one linear pass (bs4's unwrap is quadratic on such chains).
    """
    cut: list[Tag] = []
    stack: list[tuple[Tag, int]] = [(soup, 0)]
    while stack:
        tag, depth = stack.pop()
        children = [c for c in tag.children if isinstance(c, Tag)]
        if depth >= limit and children:
            cut.append(tag)
            continue
        stack.extend((child, depth + 1) for child in children)
    for tag in cut:
        text = _flat_text(tag)
        tag.clear()
        tag.append(text)
    return len(cut)


def _flat_text(tag: Tag) -> str:
    """The text of a subtree, iteratively, with block boundaries kept as spaces."""
    parts: list[str] = []
    for node in tag.descendants:
        if isinstance(node, Tag):
            if node.name in BLOCK_TAGS or node.name == "br":
                parts.append(" ")
        elif not isinstance(node, Comment | Declaration | Doctype | ProcessingInstruction):
            parts.append(str(node))
    return "".join(parts)


def select_roots(soup: BeautifulSoup, selectors: Sequence[str]) -> list[Tag]:
    """Elements matched by any selector, in document order, outermost only."""
    matched: set[int] = set()
    for selector in selectors:
        matched.update(id(tag) for tag in soup.select(selector))
    roots: list[Tag] = []
    for tag in soup.find_all(True):
        if id(tag) in matched and not any(id(parent) in matched for parent in tag.parents):
            roots.append(tag)
    return roots


def _is_hidden(tag: Tag) -> bool:
    if tag.attrs is None:
        return False
    style = tag.get("style")
    return is_hidden(
        tag.has_attr("hidden"),
        str(tag.get("aria-hidden", "")),
        str(style) if style else None,
    )


# --- rendering ---------------------------------------------------------------------------


def _render_children(node: Tag) -> list[str]:
    """Render a container's children as a list of blocks (paragraph-sized strings)."""
    blocks: list[str] = []
    inline: list[str] = []

    def flush() -> None:
        text = finish_inline("".join(inline))
        inline.clear()
        if text:
            blocks.append(text)

    for child in node.children:
        if isinstance(child, NavigableString):
            inline.append(_text_of(child))
        elif isinstance(child, Tag):
            if child.name in BLOCK_TAGS or _contains_block(child):
                flush()
                blocks.extend(_render_block(child))
            else:
                inline.append(_render_inline(child))
    flush()
    return blocks


def _render_block(tag: Tag) -> list[str]:
    name = tag.name
    if name in HEADINGS:
        text = _inline_of(tag)
        return [f"{'#' * HEADINGS[name]} {text}"] if text else []
    if name in ("ul", "ol", "menu"):
        return _render_list(tag)
    if name == "table":
        return _render_table(tag)
    if name == "pre":
        for br in tag.find_all("br"):
            br.replace_with("\n")
        for encoded in tag.find_all(True, {CF_EMAIL_ATTRIBUTE: True}):
            if (address := cf_decode(str(encoded[CF_EMAIL_ATTRIBUTE]))) is not None:
                encoded.replace_with(address)
        code = tag.get_text().strip("\n")
        return [f"```\n{code}\n```"] if code.strip() else []
    if name == "hr":
        return ["---"]
    if name == "blockquote":
        return [quote(b) for b in _render_children(tag)]
    if name == "dd":
        return [": " + b for b in _render_children(tag)]
    return _render_children(tag)


def _render_list(tag: Tag) -> list[str]:
    ordered = tag.name == "ol"
    reversed_ = ordered and tag.has_attr("reversed")
    step = -1 if reversed_ else 1
    count = len(tag.find_all("li", recursive=False))
    start = tag.get("start")
    number = list_start(str(start) if start is not None else None, count, reversed_)
    style = str(tag.get("type", "1"))
    items: list[str] = []
    for child in tag.children:
        if not isinstance(child, Tag):
            if isinstance(child, NavigableString) and str(child).strip():
                items.append("- " + finish_inline(str(child)))
            continue
        if child.name != "li":
            if child.name in BLOCK_TAGS:
                items.extend(_render_block(child))
            elif text := finish_inline(_render_inline(child)):
                items.append("- " + text)  # a custom element standing in for <li>
            continue
        if ordered and child.get("value"):
            with contextlib.suppress(ValueError):
                number = int(str(child.get("value")))
        marker = f"{list_number(number, style)}. " if ordered else "- "
        number += step
        body = "\n".join(_render_children(child))
        if body:
            items.append(list_item(marker, body))
    return ["\n".join(items)] if items else []


def _render_table(tag: Tag) -> list[str]:
    rows: list[str] = []
    header_done = False
    for tr in tag.find_all("tr"):
        if tr.find_parent("table") is not tag:
            continue  # a nested table is rendered inside its cell's text
        cells = tr.find_all(["th", "td"], recursive=False)
        if not cells:
            continue
        texts = [
            " ".join(_render_children(c)).replace("\n", " ").replace("|", "\\|") for c in cells
        ]
        rows.append("| " + " | ".join(texts) + " |")
        if not header_done:
            header_done = True
            if all(c.name == "th" for c in cells):
                rows.append("|" + "|".join(" --- " for _ in cells) + "|")
    caption = tag.find("caption")
    out = [_inline_of(caption)] if caption and _inline_of(caption) else []
    out.extend(_outside_cells(tag))
    if rows:
        out.append("\n".join(rows))
    return out


def _outside_cells(tag: Tag) -> list[str]:
    """Text that sits in a table but in no cell (a note before the rows): keep it."""
    blocks: list[str] = []
    for part in [tag, *tag.find_all(["thead", "tbody", "tfoot", "tr"], recursive=True)]:
        if part is not tag and part.find_parent("table") is not tag:
            continue
        for child in part.children:
            if isinstance(child, Tag) and child.name not in TABLE_PARTS:
                blocks.extend(_render_block(child) if child.name in BLOCK_TAGS else [])
                if child.name not in BLOCK_TAGS and (t := finish_inline(_render_inline(child))):
                    blocks.append(t)
            elif isinstance(child, NavigableString) and (t := finish_inline(_text_of(child))):
                blocks.append(t)
    return blocks


def _render_inline(tag: Tag) -> str:
    name = tag.name
    if name == "br":
        return BREAK
    if name == "img":
        return ""
    encoded = tag.attrs.get(CF_EMAIL_ATTRIBUTE) if tag.attrs else None
    if encoded is not None and (address := cf_decode(str(encoded))) is not None:
        return address  # as Cloudflare's script shows it in a browser
    inner = "".join(_render_inline(c) if isinstance(c, Tag) else _text_of(c) for c in tag.children)
    if name == "a":
        return link(inner, str(tag.get("href") or ""))
    return inner


def _text_of(node: object) -> str:
    if isinstance(node, Comment | Declaration | Doctype | ProcessingInstruction):
        return ""
    return CONTROL.sub("", str(node))


def _inline_of(tag: Tag) -> str:
    return " ".join(_render_children(tag)).replace("\n", " ").strip()


def _contains_block(tag: Tag) -> bool:
    """An inline element wrapping blocks (a card link around a heading) is a container."""
    return (tag.name != "a" and tag.find(BLOCK_TAGS) is not None) or (
        tag.name == "a" and tag.find(list(LINK_BLOCKS)) is not None
    )
