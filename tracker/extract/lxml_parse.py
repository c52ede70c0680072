"""Parsing for the lxml engine (`lxml_engine`): libxml2 builds the tree as bs4's lxml
builder has it built (the same parser, fed the same way, the same encodings tried).

`Unsupported` is raised, here and by the other lxml modules, where the lxml engine cannot
give the BeautifulSoup engine's text cheaply; `extract` then runs the BeautifulSoup engine.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from lxml import etree
from lxml.etree import _Element as Element

from tracker.extract.rules import WINDOWS_1252_LABELS, browser_encoding


class Unsupported(Exception):
    """This input needs the BeautifulSoup engine to give the reference text."""


def parse(body: bytes | str, encoding: str | None = None) -> Element:
    """Parse as `extract_soup.parse_html` does: same encoding, same tree."""
    if isinstance(body, str):
        # bs4 drops a leading byte-order mark from text, then lets lxml parse it.
        text = body[1:] if body.startswith("\ufeff") else body
        try:
            return _parse(text, None)
        except (UnicodeDecodeError, etree.ParserError) as exc:
            raise Unsupported(f"lxml rejects this text: {exc}") from exc
    if encoding:
        # parse_html falls back to detection on LookupError, but bs4 (and `_parse_bytes`)
        # already skip an encoding lxml does not know.
        return _parse_bytes(body, browser_encoding(encoding))[0]
    root, used = _parse_bytes(body, None)
    if used.lower() in WINDOWS_1252_LABELS:
        root, _ = _parse_bytes(body, "windows-1252")
    return root


def _parse_bytes(body: bytes, known: str | None) -> tuple[Element, str]:
    """Try encodings in the order bs4's lxml builder does; the first lxml accepts wins.

    bs4 asks its `EncodingDetector` (the declared encoding, a byte-order mark, the
    page's <meta>, charset detection, UTF-8, windows-1252) and moves on only when lxml
    rejects an encoding; using the same detector gives the same choice, cheaply: the
    detector only looks further when the first candidate fails.

    The detector's first candidate is the server's declared charset, and with no
    byte-order mark the bytes go to lxml as they are, so that case is tried here
    without importing bs4 (~50 ms of every run's start-up); when lxml rejects it, the
    detector tries it again (with the same result) and goes on.
    """
    if known and not body.startswith(_BYTE_ORDER_MARKS):
        try:
            return _parse(body, known), known
        except (UnicodeDecodeError, LookupError, etree.ParserError):
            pass
    from bs4.dammit import EncodingDetector

    detector = EncodingDetector(
        body, known_definite_encodings=[known] if known else [], is_html=True
    )
    for candidate in detector.encodings:
        try:
            return _parse(detector.markup, candidate), candidate
        except (UnicodeDecodeError, LookupError, etree.ParserError):
            continue  # what bs4 treats as the parser rejecting this encoding
    raise Unsupported("lxml rejects every candidate encoding")


# What bs4's `EncodingDetector.strip_byte_order_mark` may strip (a superset is fine).
_BYTE_ORDER_MARKS = (b"\xfe\xff", b"\xff\xfe", b"\xef\xbb\xbf", b"\x00\x00\xfe\xff")


def _parse(markup: bytes | str, encoding: str | None) -> Element:
    """Parse as bs4's lxml builder does: one `feed` of the whole markup, then `close`.

    Not `fromstring`: libxml2's push parser and its whole-buffer parser part ways on
    bytes invalid in the encoding (the push parser can give up at once).
    """
    parser = etree.HTMLParser(encoding=encoding)
    try:
        parser.feed(markup)
        root: Element = parser.close()
    except (UnicodeDecodeError, LookupError, etree.ParserError):
        raise
    except (etree.LxmlError, ValueError) as exc:
        # No root element at all (an empty page) lands here too: rare, and bs4 knows.
        raise Unsupported(f"lxml builds no tree from this input: {exc}") from exc
    if root is None:
        raise Unsupported("lxml builds no tree from this input")
    errors = parser.feed_error_log
    if errors and any(e.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT for e in errors):
        # libxml2 stops building a tree more than 256 levels deep; bs4 gets the
        # parser's events, where that limit does not apply.
        raise Unsupported("the page is beyond libxml2's tree limits")
    if _late_doctype(markup, encoding):
        raise Unsupported("a <!DOCTYPE> after the first tag")
    return root


_TAG_START = re.compile(rb"<[A-Za-z]")
_TAG_START_TEXT = re.compile(r"<[A-Za-z]")


def _late_doctype(markup: bytes | str, encoding: str | None) -> bool:
    """Whether a <!DOCTYPE> may follow a tag (the test errs towards yes).

    bs4 keeps such a doctype where it stands, as a string: in a list it is an item of
    its own and splits the text around it. lxml's tree drops it without a trace.
    """
    if isinstance(markup, bytes) and not _ascii_superset(encoding or "utf-8"):
        try:
            markup = markup.decode(encoding or "utf-8", "replace")
        except LookupError:
            return True
    if isinstance(markup, str):
        return _doctype_after(markup, _TAG_START_TEXT.search(markup), "<", "!", "doctype")
    return _doctype_after(markup, _TAG_START.search(markup), b"<", b"!", b"doctype")


def _doctype_after(markup: Any, tag: re.Match[Any] | None, lt: Any, bang: Any, word: Any) -> bool:
    """Whether "<!doctype" (any case) comes after `tag`; finds "!" (rare, and a
    one-character search is many times faster than a search for "<!")."""
    if tag is None:
        return False
    at = markup.find(bang, tag.start())
    while at != -1:
        if markup[at - 1 : at] == lt and markup[at + 1 : at + 8].lower() == word:
            return True
        at = markup.find(bang, at + 1)
    return False


@lru_cache(maxsize=64)
def _ascii_superset(encoding: str) -> bool:
    """Whether markup characters are their ASCII bytes in `encoding` (not UTF-16, EBCDIC)."""
    probe = "<!DOCTYPE html><p>"
    try:
        return probe.encode(encoding) == probe.encode("ascii")
    except (LookupError, UnicodeError):
        return False
