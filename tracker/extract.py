"""Turn a raw HTML response into clean, deterministic, markdown-like text.

Diffs are only as readable as the text they compare, so the output keeps the
document's own structure (headings, lists, tables, link targets) and drops
everything a reader never sees (scripts, styles, hidden elements, form widgets).
The same bytes always give the same text: no clocks, no randomness, no network.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment, Declaration, Doctype, PageElement, ProcessingInstruction

from .errors import FetchError
from .models import NoiseFilters

# Elements whose content is never document text.
DROPPED_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "canvas",
    "iframe",
    "object",
    "embed",
    "head",
    "select",
    "option",
    "input",
    "textarea",
    "link",
    "meta",
)

BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "center",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "html",
        "legend",
        "li",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
        "caption",
    ]
)

HEADINGS = {f"h{n}": n for n in range(1, 7)}

# Query parameters that identify a campaign or a visitor, never the target.
TRACKING_PARAMS = frozenset(
    {
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "fbclid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "igshid",
        "yclid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "mkt_tok",
        "wt.mc_id",
        "ocid",
        "cmpid",
        "spm",
        # Session tokens and cache busters: they differ on every load, never the target.
        "jsessionid",
        "phpsessid",
        "sessionid",
        "session_id",
        "sessid",
        "sid",
        "cfid",
        "cftoken",
        "_",
        "nocache",
        "cachebust",
        "cachebuster",
        "cache_bust",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "hsa_", "vero_", "aspsessionid", "__cf_chl_")
# A session id some servers put in the path: /terms;jsessionid=0A1B2C?x=1
_PATH_SESSION = re.compile(r";(?:jsessionid|phpsessid|sid)=[^/?#]*", re.IGNORECASE)

# Bump when a change to this module changes the text it makes from the same bytes, so
# stored versions are re-extracted and the change is labelled as ours, not the page's.
# 2: session tokens and cache busters are dropped from links.
EXTRACTOR_VERSION = 2


def extraction_key(
    select: Sequence[str], remove: Sequence[str], noise: NoiseFilters | None = None
) -> str:
    """Names the settings that turn bytes into text; stored with every version.

    Noise filters are part of it: changing one re-extracts, and the change it makes
    is labelled as ours, like a selector change.
    """
    settings: dict[str, object] = {
        "extractor": EXTRACTOR_VERSION,
        "select": list(select),
        "remove": list(remove),
    }
    if noise:
        settings["noise"] = noise.spec()
    spec = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


_HIDDEN_STYLE = re.compile(r"(display\s*:\s*none|visibility\s*:\s*hidden)", re.IGNORECASE)
_SPACE = re.compile(r"[ \t\n\r\f\v\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_BREAK = "\x00"  # stands for <br> until whitespace has been collapsed
# C0 and C1 controls other than tab and newline: a page's ESC sequences must never
# reach a terminal, and they are never text a reader sees.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def extract_text(
    body: bytes | str,
    *,
    encoding: str | None = None,
    select: Sequence[str] = (),
    remove: Sequence[str] = (),
    noise: NoiseFilters | None = None,
) -> str:
    """Extract the readable text of an HTML page.

    `encoding` is the charset the server declared; when absent the document's own
    `<meta charset>` or byte-level detection decides. Raises `FetchError` with kind
    `selector` when `select` is given and matches nothing, so that a bot wall or a
    redesigned page is never recorded as the document having been emptied.
    `noise` filters remove their elements with `remove`, then clean the text
    (`filter_text`).
    """
    noise = noise or NoiseFilters()
    soup = parse_html(body, encoding)
    clean_tree(soup, [*remove, *noise.remove])
    # Without `select`, the whole document: lxml can leave text after an early </body>.
    roots: list[Tag] = select_roots(soup, select) if select else [soup]
    if select and not roots:
        raise FetchError(
            "selector",
            f"no element matched the select selectors {list(select)!r}",
        )
    blocks: list[str] = []
    for root in roots:
        blocks.extend(_render_children(root))
    return filter_text(normalize_text("\n\n".join(blocks)), noise)


# A link target as the renderer writes it: [text](target), one level of parentheses inside.
_LINK_TARGET = re.compile(r"(\]\()([^()\s]*(?:\([^()\s]*\)[^()\s]*)*)(\))")


def filter_text(text: str, noise: NoiseFilters | None) -> str:
    """Apply the text side of noise filters to extracted (normalised) text.

    First `drop_params` (query parameters whose name matches a glob, case-insensitively,
    leave every link target), then each `replace` pair in order: a regular expression
    over the whole text in multiline mode (`^` and `$` match at each line), replaced
    as `re.sub` does (`\\1` names a group). Whitespace is normalised again afterwards,
    so a line emptied by a filter leaves no gap.
    """
    if not noise or not (noise.drop_params or noise.replace):
        return text
    out = text
    if noise.drop_params:
        globs = tuple(g.lower() for g in noise.drop_params)
        out = _LINK_TARGET.sub(lambda m: m[1] + _drop_params(m[2], globs) + m[3], out)
    for pattern, replacement in noise.replace:
        out = re.sub(pattern, replacement, out, flags=re.MULTILINE)
    return normalize_text(out) if out != text else text


def _drop_params(href: str, globs: tuple[str, ...]) -> str:
    if "?" not in href:
        return href
    try:
        parts = urlsplit(href)
    except ValueError:
        return href
    kept = [
        field
        for field in parts.query.split("&")
        if field
        and not any(
            fnmatch.fnmatchcase(unquote_plus(field.split("=", 1)[0]).lower(), g) for g in globs
        )
    ]
    return urlunsplit(parts._replace(query="&".join(kept)))


# Labels that browsers decode as windows-1252 (WHATWG Encoding Standard): servers say
# ISO-8859-1 and send curly quotes and dashes from the 0x80-0x9F range.
_WINDOWS_1252_LABELS = frozenset(
    {
        "iso-8859-1",
        "iso8859-1",
        "iso_8859-1",
        "latin-1",
        "latin1",
        "l1",
        "cp819",
        "ascii",
        "us-ascii",
        "ansi_x3.4-1968",
        "iso-ir-100",
        "ibm819",
        "csisolatin1",
        "x-cp1252",
    }
)


def parse_html(body: bytes | str, encoding: str | None = None) -> BeautifulSoup:
    """Parse with lxml; the server's declared charset wins over the page's own."""
    if isinstance(body, str):
        return BeautifulSoup(body, "lxml")
    if encoding:
        try:
            return BeautifulSoup(body, "lxml", from_encoding=_browser_encoding(encoding))
        except LookupError:
            pass  # an unknown charset name: let detection decide
    soup = BeautifulSoup(body, "lxml")
    if soup.original_encoding and soup.original_encoding.lower() in _WINDOWS_1252_LABELS:
        soup = BeautifulSoup(body, "lxml", from_encoding="windows-1252")
    return soup


def _browser_encoding(label: str) -> str:
    label = label.strip().lower()
    return "windows-1252" if label in _WINDOWS_1252_LABELS else label


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
                if child.name in _DROPPED or _is_hidden(child):
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


_DROPPED = frozenset(DROPPED_TAGS)
MAX_DEPTH = 150


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


def normalize_text(text: str) -> str:
    """Unicode NFC, no invisible characters, no trailing spaces, single blank lines."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", _INVISIBLE.sub("", text))
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n" if out else ""


def clean_url(href: str) -> str:
    """Strip tracking parameters from a link target, keeping everything else as written."""
    href = href.strip()
    if ";" in href:
        href = _PATH_SESSION.sub("", href)
    if "?" not in href:
        return href
    try:
        parts = urlsplit(href)
    except ValueError:
        return href
    kept = [field for field in parts.query.split("&") if field and not _is_tracking(field)]
    return urlunsplit(parts._replace(query="&".join(kept)))


def _is_tracking(field: str) -> bool:
    key = unquote_plus(field.split("=", 1)[0]).lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def _is_hidden(tag: Tag) -> bool:
    if tag.attrs is None:
        return False
    if tag.has_attr("hidden"):
        return True
    if str(tag.get("aria-hidden", "")).lower() == "true":
        return True
    style = tag.get("style")
    return bool(style and _HIDDEN_STYLE.search(str(style)))


# --- rendering ---------------------------------------------------------------------------


def _render_children(node: Tag) -> list[str]:
    """Render a container's children as a list of blocks (paragraph-sized strings)."""
    blocks: list[str] = []
    inline: list[str] = []

    def flush() -> None:
        text = _finish_inline("".join(inline))
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
        code = tag.get_text().strip("\n")
        return [f"```\n{code}\n```"] if code.strip() else []
    if name == "hr":
        return ["---"]
    if name == "blockquote":
        inner = _render_children(tag)
        return ["\n".join("> " + line if line else ">" for line in b.split("\n")) for b in inner]
    if name == "dd":
        return [": " + b for b in _render_children(tag)]
    return _render_children(tag)


def _render_list(tag: Tag) -> list[str]:
    ordered = tag.name == "ol"
    reversed_ = ordered and tag.has_attr("reversed")
    step = -1 if reversed_ else 1
    count = len(tag.find_all("li", recursive=False))
    try:
        number = int(str(tag.get("start") or (count if reversed_ else 1)))
    except ValueError:
        number = count if reversed_ else 1
    style = str(tag.get("type", "1"))
    items: list[str] = []
    for child in tag.children:
        if not isinstance(child, Tag):
            if isinstance(child, NavigableString) and str(child).strip():
                items.append("- " + _finish_inline(str(child)))
            continue
        if child.name != "li":
            if child.name in BLOCK_TAGS:
                items.extend(_render_block(child))
            elif text := _finish_inline(_render_inline(child)):
                items.append("- " + text)  # a custom element standing in for <li>
            continue
        if ordered and child.get("value"):
            with contextlib.suppress(ValueError):
                number = int(str(child.get("value")))
        marker = f"{_list_number(number, style)}. " if ordered else "- "
        number += step
        body = "\n".join(_render_children(child))
        if not body:
            continue
        indent = " " * len(marker)
        lines = body.split("\n")
        items.append(
            marker + lines[0] + "".join("\n" + (indent + ln if ln else "") for ln in lines[1:])
        )
    return ["\n".join(items)] if items else []


def _list_number(number: int, style: str) -> str:
    """An item number as the list shows it: 1, a, A, i or I (clauses are cited as 3(b))."""
    if style in ("a", "A") and number > 0:
        letters = ""
        while number:
            number, rest = divmod(number - 1, 26)
            letters = chr(ord("a") + rest) + letters
        return letters.upper() if style == "A" else letters
    if style in ("i", "I") and 0 < number < 4000:
        numerals = (
            (1000, "m"),
            (900, "cm"),
            (500, "d"),
            (400, "cd"),
            (100, "c"),
            (90, "xc"),
            (50, "l"),
            (40, "xl"),
            (10, "x"),
            (9, "ix"),
            (5, "v"),
            (4, "iv"),
            (1, "i"),
        )
        roman = ""
        for value, symbol in numerals:
            while number >= value:
                roman += symbol
                number -= value
        return roman.upper() if style == "I" else roman
    return str(number)


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


_TABLE_PARTS = frozenset({"tr", "td", "th", "thead", "tbody", "tfoot", "caption", "colgroup"})


def _outside_cells(tag: Tag) -> list[str]:
    """Text that sits in a table but in no cell (a note before the rows): keep it."""
    blocks: list[str] = []
    for part in [tag, *tag.find_all(["thead", "tbody", "tfoot", "tr"], recursive=True)]:
        if part is not tag and part.find_parent("table") is not tag:
            continue
        for child in part.children:
            if isinstance(child, Tag) and child.name not in _TABLE_PARTS:
                blocks.extend(_render_block(child) if child.name in BLOCK_TAGS else [])
                if child.name not in BLOCK_TAGS and (t := _finish_inline(_render_inline(child))):
                    blocks.append(t)
            elif isinstance(child, NavigableString) and (t := _finish_inline(_text_of(child))):
                blocks.append(t)
    return blocks


def _render_inline(tag: Tag) -> str:
    name = tag.name
    if name == "br":
        return _BREAK
    if name == "img":
        return ""
    inner = "".join(_render_inline(c) if isinstance(c, Tag) else _text_of(c) for c in tag.children)
    if name == "a":
        href = str(tag.get("href") or "").strip()
        text = _finish_inline(inner)
        if not text:
            return ""
        if not href or href.lower().startswith(("javascript:", "data:")):
            return inner
        return f"[{text}]({clean_url(href)})"
    return inner


def _text_of(node: object) -> str:
    if isinstance(node, Comment | Declaration | Doctype | ProcessingInstruction):
        return ""
    return _CONTROL.sub("", str(node))


def _inline_of(tag: Tag) -> str:
    return " ".join(_render_children(tag)).replace("\n", " ").strip()


def _finish_inline(raw: str) -> str:
    text = _SPACE.sub(" ", _INVISIBLE.sub("", raw))
    lines = [line.strip() for line in text.split(_BREAK)]
    return "\n".join(line for line in lines if line).strip()


def _contains_block(tag: Tag) -> bool:
    """An inline element wrapping blocks (a card link around a heading) is a container."""
    return (tag.name != "a" and tag.find(BLOCK_TAGS) is not None) or (
        tag.name == "a" and tag.find([*list(HEADINGS), "p", "div", "ul", "ol", "table"]) is not None
    )
