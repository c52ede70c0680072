"""Turn a raw HTML response into clean, deterministic, markdown-like text.

Diffs are only as readable as the text they compare, so the output keeps the
document's own structure (headings, lists, tables, link targets) and drops
everything a reader never sees (scripts, styles, hidden elements, form widgets).
The same bytes always give the same text: no clocks, no randomness, no network.

The HTML work is done by an engine that returns text blocks: `extract_lxml`, and
for what it cannot do exactly (`extract_lxml.Unsupported`), `extract_soup`, the
BeautifulSoup reference it is tested against. The shared rules live in `extract_rules`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from tracker.core import failures
from tracker.core.errors import FetchError
from tracker.core.models import NoiseFilters
from tracker.extract import lxml_engine as extract_lxml
from tracker.extract.rules import CONTROL, INVISIBLE, clean_url, has_odd, soupsieve_problem

log = logging.getLogger("tracker.extract")  # the name log lines have always shown

__all__ = [
    "EXTRACTOR_VERSION",
    "clean_url",
    "extract_text",
    "extraction_key",
    "filter_text",
    "normalize_text",
]

# Bump when a change to this module changes the text it makes from the same bytes, so
# stored versions are re-extracted and the change is labelled as ours, not the page's.
# 2: session tokens and cache busters are dropped from links.
# 3: Cloudflare-obfuscated email addresses are decoded, in links and in the text; signed
#    file links, anti-forgery tokens, visitor ids and ASP.NET path sessions are dropped.
EXTRACTOR_VERSION = 3

# An engine: (body, declared encoding, select, remove) -> text blocks, None if no match.
Engine = Callable[[bytes | str, str | None, Sequence[str], Sequence[str]], list[str] | None]


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
    return extract_with(_render, body, encoding, select, remove, noise)


def _render(
    body: bytes | str, encoding: str | None, select: Sequence[str], remove: Sequence[str]
) -> list[str] | None:
    """The lxml engine, or the BeautifulSoup one where lxml cannot give the same text."""
    try:
        return extract_lxml.render(body, encoding, select, remove)
    except extract_lxml.Unsupported as why:
        log.debug("extracting with BeautifulSoup: %s", why)
        from tracker.extract import (
            soup_engine as extract_soup,  # imported only when needed: bs4 is slow to import
        )

        _check_for_soupsieve([*select, *remove])
        return extract_soup.render(body, encoding, select, remove)


def _check_for_soupsieve(selectors: Sequence[str]) -> None:
    """The configuration accepts what cssselect reads (it is asked first, being cheap);
    soupsieve, which the BeautifulSoup engine uses, is stricter (an id starting with a
    digit must be escaped: `#\\31 a`). A page that needs that engine fails plainly
    then, naming the selector, rather than as an odd page."""
    for selector in selectors:
        if problem := soupsieve_problem(selector):
            raise FetchError(
                failures.SELECTOR,
                f"this page needs the BeautifulSoup engine, which cannot read the selector"
                f" {selector!r} ({problem}); write it in standard CSS",
            )


def extract_with(
    engine: Engine,
    body: bytes | str,
    encoding: str | None,
    select: Sequence[str],
    remove: Sequence[str],
    noise: NoiseFilters | None,
) -> str:
    """`extract_text` with a given engine (tests compare the engines through this)."""
    noise = noise or NoiseFilters()
    blocks = engine(body, encoding, select, [*remove, *noise.remove])
    if blocks is None:
        raise FetchError(
            failures.SELECTOR,
            f"no element matched the select selectors {list(select)!r}",
        )
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


def normalize_text(text: str) -> str:
    """Unicode NFC, no invisible characters, no trailing spaces, single blank lines."""
    text = unicodedata.normalize("NFC", text)
    if has_odd(text):  # one fast scan; most pages have nothing to strip
        text = CONTROL.sub("", INVISIBLE.sub("", text))
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n" if out else ""
