"""CSS selectors for the lxml engine (`lxml_engine`): translated to XPath by cssselect,
where the translation selects what soupsieve would; otherwise `Unsupported` says why.
"""

from __future__ import annotations

from functools import lru_cache

import cssselect
from lxml import etree
from lxml.etree import _Element as Element
from lxml.etree import _ElementTree as Document

from tracker.extract.lxml_parse import Unsupported

# soupsieve compares these attributes' values case-insensitively in HTML (its
# css_parser.HTML_CASE_INSENSITIVE_ATTRIBUTES; a test keeps the copy equal). Copied, as
# importing soupsieve costs ~50 ms of start-up.
HTML_CASE_INSENSITIVE_ATTRIBUTES = frozenset(
    [
        "accept",
        "accept-charset",
        "align",
        "alink",
        "axis",
        "bgcolor",
        "charset",
        "checked",
        "clear",
        "codetype",
        "color",
        "compact",
        "declare",
        "defer",
        "dir",
        "direction",
        "disabled",
        "enctype",
        "face",
        "frame",
        "hreflang",
        "http-equiv",
        "lang",
        "language",
        "link",
        "media",
        "method",
        "multiple",
        "nohref",
        "noresize",
        "noshade",
        "nowrap",
        "readonly",
        "rel",
        "rev",
        "rules",
        "scope",
        "scrolling",
        "selected",
        "shape",
        "target",
        "text",
        "type",
        "valign",
        "valuetype",
        "vlink",
    ]
)


class _Selectors:
    """Selectors compiled to one XPath, with what their evaluation depends on."""

    def __init__(self, path: str, *, classes: bool, structural: bool) -> None:
        self.xpath = etree.XPath(path) if path else None
        self.classes = classes  # reads the class attribute: normalise it first
        self.structural = structural  # counts siblings: differs at the top level

    def __call__(self, document: Document) -> list[Element]:
        if self.xpath is None:
            return []
        try:
            return self.xpath(document)
        except etree.XPathError as exc:
            raise Unsupported(f"XPath evaluation failed: {exc}") from exc


def compiled(selectors: tuple[str, ...]) -> _Selectors:
    """`selectors` as one XPath; raises `Unsupported` when one needs soupsieve."""
    compiled = _compile(selectors)
    if isinstance(compiled, str):
        raise Unsupported(compiled)
    return compiled


@lru_cache(maxsize=512)
def _compile(selectors: tuple[str, ...]) -> _Selectors | str:
    """The compiled selectors, or why they must go to the BeautifulSoup engine."""
    paths: list[str] = []
    classes = structural = False
    translator = cssselect.HTMLTranslator()
    for text in selectors:
        try:
            parsed = cssselect.parse(text)
            for selector in parsed:
                if selector.pseudo_element is not None:
                    return f"{text!r}: pseudo-element"
                usage = _usage(selector.parsed_tree)
                if isinstance(usage, str):
                    return f"{text!r}: {usage}"
                classes = classes or usage[0]
                structural = structural or usage[1]
                paths.append(translator.selector_to_xpath(selector, prefix="/descendant-or-self::"))
        except cssselect.SelectorError as exc:
            return f"{text!r}: cssselect cannot translate it ({exc})"
    try:
        return _Selectors(" | ".join(paths), classes=classes, structural=structural)
    except etree.XPathError as exc:
        return f"{selectors!r}: lxml cannot compile the XPath ({exc})"


_STRUCTURAL_PSEUDOS = frozenset(
    {"first-child", "last-child", "only-child", "first-of-type", "last-of-type", "only-of-type"}
)
_NTH_FUNCTIONS = frozenset({"nth-child", "nth-last-child", "nth-of-type", "nth-last-of-type"})
# Attributes bs4 splits into lists; soupsieve matches their space-joined words.
_LIST_ATTRIBUTES = frozenset(
    {"class", "accesskey", "dropzone", "rel", "rev", "headers", "accept-charset"}
    | {"archive", "sizes", "sandbox", "for"}
)
_VALUE_OPERATORS = frozenset({"=", "^=", "$=", "*=", "|="})


def _usage(tree: object) -> tuple[bool, bool] | str:
    """(reads class, counts siblings) for a parsed selector, or why cssselect won't do.

    Only what matches exactly as soupsieve matches it on the same tree is let through:
    type, id, class and attribute selectors (attributes soupsieve compares
    case-insensitively, or splits into words, excepted), the four combinators,
    :not() and the structural pseudo-classes.
    """
    classes = structural = False
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, cssselect.parser.Element):
            if node.namespace is not None or not (node.element or "").isascii():
                return "namespaced or non-ASCII type selector"
            continue
        if isinstance(node, cssselect.parser.Class):
            classes = True
        elif isinstance(node, cssselect.parser.Attrib):
            reason = _attribute_reason(node)
            if reason:
                return reason
            classes = classes or node.attrib.lower() == "class"
        elif isinstance(node, cssselect.parser.Pseudo):
            if node.ident not in _STRUCTURAL_PSEUDOS:
                return f"pseudo-class :{node.ident}"
            structural = True
        elif isinstance(node, cssselect.parser.Function):
            if node.name not in _NTH_FUNCTIONS:
                return f"pseudo-class :{node.name}()"
            structural = True
        elif isinstance(node, cssselect.parser.Negation | cssselect.parser.CombinedSelector):
            stack.append(node.subselector)
        elif not isinstance(node, cssselect.parser.Hash):
            return f"{type(node).__name__} selector"
        stack.append(node.selector)
    return classes, structural


def _attribute_reason(node: cssselect.parser.Attrib) -> str | None:
    """Why an attribute selector may match differently in soupsieve, if it may."""
    name = node.attrib.lower()
    if node.namespace is not None or not node.attrib.isascii():
        return "namespaced or non-ASCII attribute selector"
    if node.operator == "exists":
        return None
    if name in HTML_CASE_INSENSITIVE_ATTRIBUTES:
        return f"[{name}] values are case-insensitive in soupsieve"
    if node.operator == "~=" and name == "class":
        return None
    if node.operator not in _VALUE_OPERATORS:
        return f"attribute operator {node.operator}"
    if name in _LIST_ATTRIBUTES and name != "class":
        return f"[{name}] is a word list in bs4"
    return None
