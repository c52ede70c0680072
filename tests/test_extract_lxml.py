"""The lxml engine gives the BeautifulSoup engine's text, byte for byte.

`extract_text` runs tracker/extract_lxml.py and hands a page to tracker/extract_soup.py
(the original implementation, kept as the reference) only when lxml cannot give the
same text cheaply. Every case here runs both engines on the same input and compares
the outcome (the text, or the selector error). A case the lxml engine is expected to
hand over says so (`fallback=True`), and every other case must not be handed over:
a change that quietly sends pages to BeautifulSoup fails here as well.
"""

from __future__ import annotations

import importlib.util
import json
import random
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import test_extract
import test_hostile
import test_noise
import test_walls
from conftest import SHARED_CORPUS

from tracker.core.errors import FetchError
from tracker.core.models import NoiseFilters
from tracker.extract import lxml_engine as extract_lxml
from tracker.extract import soup_engine as extract_soup
from tracker.extract.engine import Engine, extract_text, extract_with
from tracker.extract.rules import (
    BREAK,
    CONTROL,
    INVISIBLE,
    finish_inline,
    finish_plain,
    has_odd,
)
from tracker.ops.demo import bundled_captures

ROOT = Path(__file__).resolve().parents[1]
CASES = Path(__file__).parent / "cases"
handed_over: list[bytes | str] = []  # pages same_text(fallback=None) saw handed over


def outcome(extract: Callable[[], str]) -> str | tuple[str, str]:
    """The text, or the kind and message of the selector error."""
    try:
        return extract()
    except FetchError as exc:
        return (exc.kind, str(exc))


def same_text(
    body: bytes | str,
    *,
    encoding: str | None = None,
    select: Sequence[str] = (),
    remove: Sequence[str] = (),
    noise: NoiseFilters | None = None,
    fallback: bool | None = False,
) -> str | tuple[str, str]:
    """Both engines give the same outcome; extract_text uses lxml unless `fallback`.

    `fallback=None` allows either (generated pages); `handed_over` counts those.
    """

    def run(engine: Engine) -> str:
        return extract_with(engine, body, encoding, select, remove, noise)

    reference = outcome(lambda: run(extract_soup.render))
    try:
        lxml_outcome = outcome(lambda: run(extract_lxml.render))
    except extract_lxml.Unsupported:
        assert fallback is not False, "handed to the BeautifulSoup engine"
        handed_over.append(body)
    else:
        assert fallback is not True, "not handed to the BeautifulSoup engine"
        assert lxml_outcome == reference
    product = outcome(
        lambda: extract_text(body, encoding=encoding, select=select, remove=remove, noise=noise)
    )
    assert product == reference
    return reference


# --- the shared corpus and the project's own selectors ----------------------------------


def selector_sets() -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """No selectors; each document's select and remove in default.toml; each alone."""
    documents = tomllib.loads((ROOT / "tracker" / "default.toml").read_text())["documents"]
    pairs = {(tuple(d.get("select", ())), tuple(d.get("remove", ()))) for d in documents}
    sets = {((), ())}
    for select, remove in pairs:
        sets |= {(select, remove), (select, ()), ((), remove)}
    return sorted(sets)


SELECTOR_SETS = selector_sets()


def corpus_pages() -> list[Any]:
    if not SHARED_CORPUS.is_dir():
        reason = f"the shared corpus is not at {SHARED_CORPUS}; these tests need ../shared"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-corpus")]
    manifest = json.loads((SHARED_CORPUS / "manifest.json").read_text(encoding="utf-8"))
    listed = {SHARED_CORPUS / e["file"] for e in manifest if e.get("format") == "html"}
    pages = sorted(listed | set(SHARED_CORPUS.rglob("*.html")))
    return [pytest.param(p, id=str(p.relative_to(SHARED_CORPUS))) for p in pages]


def test_selector_sets_cover_default_toml() -> None:
    flat = {s for select, remove in SELECTOR_SETS for s in (*select, *remove)}
    assert {"main .content", "main", "#content", "main .sr-only", ".feedback"} <= flat


@pytest.mark.parametrize("page", corpus_pages())
@pytest.mark.parametrize(("select", "remove"), SELECTOR_SETS)
def test_corpus_page(page: Path, select: tuple[str, ...], remove: tuple[str, ...]) -> None:
    same_text(page.read_bytes(), select=select, remove=remove)


def test_corpus_has_the_html_captures() -> None:
    pages = [p for p in corpus_pages() if p.values[0] is not None]
    if not pages:
        pytest.skip(f"the shared corpus is not at {SHARED_CORPUS}; these tests need ../shared")
    assert len(pages) >= 8


@pytest.mark.parametrize("capture", bundled_captures(), ids=lambda c: c.file)
def test_bundled_demo_page(capture: Any) -> None:
    for select, remove in SELECTOR_SETS:
        same_text(capture.body, select=select, remove=remove)


# --- the benchmark's generated pages ------------------------------------------------------


def bench_compare() -> Any:
    spec = importlib.util.spec_from_file_location("bench_compare", ROOT / "bench" / "compare.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("number", range(36))
def test_benchmark_page(number: int) -> None:
    body = bench_compare().page_html(number, number % 3)
    same_text(body)
    same_text(body, select=["main"])
    same_text(body, encoding="utf-8", select=["main", "#content"], remove=["main .sr-only"])


# --- every snippet the other extraction tests use -----------------------------------------


def extract_cases() -> list[Any]:
    cases = json.loads((CASES / "extract.json").read_text(encoding="utf-8"))
    return [pytest.param(c, id=c["name"]) for c in cases]


@pytest.mark.parametrize("case", extract_cases())
def test_extract_json_case(case: dict[str, Any]) -> None:
    options = {"select": case.get("select", ()), "remove": case.get("remove", ())}
    same_text(case["html"], **options)
    same_text(case["html"].encode(), encoding="utf-8", **options)
    same_text(case["html"].encode(), **options)
    same_text(case["html"])  # without the case's selectors


SELECT_ERRORS = [
    ("<main><p>Terms</p></main>", ["#terms", ".policy"], []),
    ('<div id="terms" hidden><p>Terms</p></div><p>Other</p>', ["#terms"], []),
    ('<div id="terms" style="display:none"><p>Terms</p></div>', ["#terms"], []),
    ('<div class="wrap"><div id="terms"><p>Terms</p></div></div>', ["#terms"], [".wrap"]),
    ('<script id="terms">var terms = 1;</script><p>Other</p>', ["#terms"], []),
]


@pytest.mark.parametrize(("html", "select", "remove"), SELECT_ERRORS)
def test_select_errors(html: str, select: list[str], remove: list[str]) -> None:
    assert same_text(html, select=select, remove=remove)[0] == "selector"


TEST_EXTRACT_SNIPPETS = [
    "<html><body><script>x()</script></body></html>",
    "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p><p>a &lt; b &amp;&amp; c &gt; d</p>",
    "<p>sell&#27;[8m your data&#27;[0m to anyone&#7;</p><pre>a&#27;b</pre>",
    "<ul><policy-item>No military use.</policy-item><li>Two</li></ul>",
    "<table><div>Note: applies to EU</div><tr><td>cell</td></tr></table>",
    "<html><body><p>in</p></body></html><p>after</p>",
    "<html><head><meta charset='utf-8'></head><body>" + test_extract.DETERMINISM_PAGE,
    f"<html><body><p>{test_extract.UTF8_TEXT}</p></body></html>",
]


@pytest.mark.parametrize("html", TEST_EXTRACT_SNIPPETS)
def test_test_extract_snippet(html: str) -> None:
    same_text(html)
    same_text(html.encode())
    same_text(html.encode(), select=["body"], remove=[".cookie-banner"])
    same_text(html.encode(), select=["main", "table", "#a", ".x"], remove=["nav"])


def test_determinism_page_with_select() -> None:
    body = (
        "<html><head><meta charset='utf-8'></head><body>" + test_extract.DETERMINISM_PAGE
    ).encode()
    assert "| Plan | Limit |" in str(same_text(body, select=["body"], remove=[".cookie-banner"]))


@pytest.mark.parametrize("depth", [400, 3000])
def test_deep_nesting_beyond_libxml2_tree_goes_to_the_fallback(depth: int) -> None:
    page = "<p>start</p>" + "<font>" * depth + "deep text" + "<div>" * depth + "deeper"
    assert same_text(page, fallback=True) == "start\n\ndeep text deeper\n"


NOISE_FILTERS = [
    NoiseFilters(),
    NoiseFilters(replace=((r"^Updated \d+ days? ago$", ""),)),
    NoiseFilters(remove=(".cookie-banner",)),
    NoiseFilters(drop_params=("TOK*",)),
    NoiseFilters(replace=((r"^(Updated) \d+ days? ago$", r"\1 recently"),)),
    NoiseFilters(remove=(".ad", "aside"), drop_params=("lang",), replace=(("Terms", "T"),)),
]


@pytest.mark.parametrize("noise", NOISE_FILTERS, ids=lambda n: json.dumps(n.spec()))
def test_noise_snippets(noise: NoiseFilters) -> None:
    session_links = (
        '<p><a href="/terms;jsessionid=0A1B2C?section=3&amp;sid=77f&amp;_=1719830000">terms</a>'
        ' <a href="https://x.org/p?PHPSESSID=9&amp;__cf_chl_tk=zz&amp;page=2">page</a>'
        ' <a href="/q?v=2">versioned</a></p>'
    )
    for html in [test_noise.PAGE, session_links, *test_noise.HISTORY]:
        same_text(html, noise=noise)
        same_text(html.encode(), encoding="utf-8", select=["main"], noise=noise)


def hostile_pages() -> list[str]:
    v1 = test_hostile.V1
    malformed = v1.replace("<main>", "<main><table><p>").replace("</main>", "</b></i></main>")
    paragraph = test_hostile.PARAGRAPH
    return [
        v1,
        test_hostile.V2,
        malformed,
        "oops",
        "gone",
        "<html><head><title>Just a moment...</title></head><body>"
        "<p>Checking if the site connection is secure.</p></body></html>",
        "<html><body><div>No main element at all here.</div></body></html>",
        "<main><p>Terms.</p></main>",
        f"<main><h1>Terms</h1><p>{paragraph} Only this is left of it.</p></main>",
        '<form><input type="password" name="p"></form>',
        v1 + "<!--" + "x" * 1000 + "-->",
    ]


@pytest.mark.parametrize("html", hostile_pages())
def test_hostile_page(html: str) -> None:
    same_text(html.encode(), encoding="utf-8", select=["main"])
    same_text(html.encode("latin-1", "replace"), encoding="iso-8859-1", select=["main"])
    same_text(html)


@pytest.mark.parametrize("case", test_walls.CASES, ids=[c["name"] for c in test_walls.CASES])
def test_wall_page(case: dict[str, Any]) -> None:
    html = test_walls.case_html(case)
    same_text(html.encode())
    same_text(html.encode(), encoding="utf-8", select=["main", "#content"])


# --- tricky hand-written pages ------------------------------------------------------------

DEEP = "<main><p>start</p>" + "<div><span>" * 80 + "<p>deep</p><ul><li>a</li></ul>"
TRICKY = {
    "comment-between-text": "<p>one<!-- gone -->two</p><ul>a<!-- c -->b<li>x</li></ul>",
    "pi-between-text": "<p>one<?php echo 1; ?>two</p><table>t<?x?>u<tr><td>c</td></tr></table>",
    "br-inline": "<p>line one<br>line two<br/><br>line three</p><a href='/x'>a<br>b</a>",
    "br-in-pre": "<pre>  code\n<br>  more<b>bold<br>x</b>\n\n</pre><p>after<br>br</p>",
    "pre-in-caption-twice": "<table><caption><pre>a<br>b</pre></caption><span><caption>"
    "<pre>c<br>d</pre></caption></span><tr><td>x</td></tr></table>",
    "nested-lists": "<ol start='3' type='a'><li>x<ol reversed><li>r1</li><li value='9'>r2</li>"
    "<li>r3</li></ol></li><li value='x'>y</li><li>z<ul><li>u</li></ul></li></ol>"
    "<ol type='I' start='3999'><li>big</li><li>bigger</li></ol><ol type='A'><li>a</li></ol>",
    "list-loose-text": "<ul> loose <b>bold</b> text <li>item</li> more <div>block</div></ul>",
    "tables": "<table><caption>Cap <b>b</b></caption>note<thead><tr><th>H1</th><th>H|2</th>"
    "</tr></thead><tbody>body note<tr><td>a<table><tr><td>inner</td></tr></table></td>"
    "<td>b<br>c</td></tr><tr><th>row head</th><td>d</td></tr></tbody></table>",
    "table-no-th": "<table><tr><td>1</td><td>2</td></tr><tr><th>3</th></tr></table>",
    "link-around-heading": "<a href='/card'><h2>Card title</h2><p>Card text</p></a>"
    "<a href='/x'><span>inline</span></a><span><p>block in span</p></span>",
    "hidden": "<p hidden>h1</p><p aria-hidden='TRUE'>h2</p><p aria-hidden='false'>shown</p>"
    "<p style='color:red; DISPLAY : none'>h3</p><p style='visibility:hidden'>h4</p>"
    "<div><p>kept</p><span hidden>h5</span>tail stays</div>",
    "deep-nesting": DEEP,
    "deep-with-pre-and-ruby": "<main>" + "<div>" * 160 + "<pre>a<br>b<ruby>漢<rt>kan</rt></ruby>"
    "</pre><ul><li>x</li>y</ul>" + "</div>" * 160 + "</main>",
    "ruby-in-pre": "<pre>x<ruby>漢<rt>kan<br>ji</rt><rp>(</rp></ruby>y</pre>"
    "<ruby><rt><pre>inside rt</pre></rt></ruby>",
    "cdata": "<p>a<![CDATA[ not text ]]>b</p><ul>c<![CDATA[x]]>d</ul>",
    "entities": "<p>&amp; &lt; &gt; &quot; &#39; &eacute; &#x1F600; &bogus; &amp &copy</p>",
    "nbsp": "<p>a&nbsp;b&nbsp;&nbsp;c &nbsp; d</p><h2>&nbsp;</h2><li>&nbsp;x&nbsp;</li>",
    "controls": "<p>a&#1;b&#11;c&#8;d&#28;e&#133;f&#127;g</p><ul>x&#28;y</ul><p>&#11;</p>"
    "<a href='/a&#12;b'>link</a><a href='/z&#x200b;'>zw</a><pre>p&#27;q</pre>",
    "invisible": "<p>soft\u00adhy\u200bphen\ufeff</p><a href='/x\u200b'>t</a>",
    "text-after-body-and-html": "<html><body><p>in</p></body>after body<p>p</p></html>"
    "after html<ul><li>li</li></ul>",
    "no-html-element": "just text <b>bold</b> and <p>para</p>",
    "control-in-class": "<div class='a\x0bb'><p class='x\x1cy'>t</p></div>",
    "whitespace-class": "<div class='  content\tmain  '><p class='content\u00a0x'>t</p></div>",
    "dl": "<dl><dt>Term</dt><dd>Def <b>b</b><p>para</p></dd></dl><blockquote><p>q1</p>"
    "<p>q2<br>q3</p></blockquote><hr>",
    "empty-elements": "<p></p><h1></h1><ul><li></li></ul><table></table><pre>\n\n</pre>",
    "custom-elements": "<x-card><x-title>T</x-title><p>p</p></x-card><o:p>word</o:p>",
    "forms": "<form><label>Name<input value='v'></label><select><option>o</option></select>"
    "<textarea>t</textarea><button>Go</button></form>",
}


@pytest.mark.parametrize("html", TRICKY.values(), ids=TRICKY.keys())
def test_tricky_page(html: str) -> None:
    same_text(html)
    same_text(html.encode(), encoding="utf-8")
    same_text(html.encode(), select=["main", "p", "ul"], remove=["b"])
    same_text(html.encode(), select=["div", ".content"], remove=["span"])
    several_tops = html is TRICKY["text-after-body-and-html"]
    same_text(html.encode(), remove=["li:first-child", "h2 + p", "td"], fallback=several_tops)


def test_form_feed_goes_to_the_fallback() -> None:
    """bs4 makes a string of ASCII whitespace " ": a lone form feed becomes a space."""
    assert same_text("<p>a<b>&#12;</b>b</p>", fallback=True) == "a b\n"
    assert same_text("<p>a&#12;b</p>", fallback=True) == "ab\n"


def test_deep_pages_are_flattened_by_lxml() -> None:
    assert extract_lxml.render(DEEP, None, (), ()) is not None
    text = same_text(DEEP)
    assert "start" in text and "deep" in text


# --- character sets -----------------------------------------------------------------------

CAFE = "<html><body><p>It’s café – “naïve” € ß</p></body></html>"
META_UTF8 = '<html><head><meta charset="utf-8"></head><body><p>It’s café</p></body></html>'
META_LATIN1 = '<html><head><meta charset="iso-8859-1"></head><body><p>It’s café</p></body></html>'
HTTP_EQUIV = (
    '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
    "</head><body><p>It’s café</p></body></html>"
)
CHARSETS = {
    "str": (CAFE, None),
    "str-with-meta": (META_LATIN1, None),
    "utf8-declared": (CAFE.encode(), "utf-8"),
    "utf8-undeclared": (CAFE.encode(), None),
    "utf8-declared-latin1-no-curly-quotes": ("<p>café</p>".encode(), "iso-8859-1"),
    "cp1252-declared-utf8": (CAFE.encode("cp1252"), "utf-8"),
    "iso-8859-1-label-curly-quotes": (b"<p>\x93quoted\x94 \x96 dash</p>", "iso-8859-1"),
    "latin1-label": (b"<p>\x93quoted\x94 caf\xe9</p>", "Latin-1"),
    "ascii-label": (b"<p>\x93quoted\x94</p>", "us-ascii"),
    "meta-charset-no-declared": (META_LATIN1.encode("cp1252"), None),
    "meta-utf8-no-declared": (META_UTF8.encode(), None),
    "meta-utf8-declared-cp1252": (META_UTF8.encode("cp1252"), "windows-1252"),
    "http-equiv": (HTTP_EQUIV.encode("cp1252"), None),
    "bom-utf8": (b"\xef\xbb\xbf" + CAFE.encode(), None),
    "bom-utf16": (CAFE.encode("utf-16"), None),
    "utf16-declared": (CAFE.encode("utf-16-le"), "utf-16le"),
    "str-bom": ("\ufeff" + CAFE, None),
    "invalid-utf8": (b"<p>caf\xe9 \xff\xfe ok \xc3</p>", "utf-8"),
    "invalid-utf8-undeclared": (b"<p>caf\xe9 \xff\xfe ok</p>", None),
    "unknown-charset": (CAFE.encode(), "x-no-such-charset"),
    "shift-jis-meta": ('<meta charset="shift_jis"><p>日本語の規約</p>'.encode("shift_jis"), None),
    "koi8r-declared": ("<p>Условия</p>".encode("koi8-r"), "koi8-r"),
}


@pytest.mark.parametrize(("body", "encoding"), CHARSETS.values(), ids=CHARSETS.keys())
def test_charset(body: bytes | str, encoding: str | None) -> None:
    same_text(body, encoding=encoding)
    same_text(body, encoding=encoding, select=["p"])


@pytest.mark.parametrize(
    "body",
    [CAFE.encode(), b"\xef\xbb\xbf" + CAFE.encode(), "<p>\u201cx\u201d</p>".encode()],
    ids=["utf8", "utf8-bom", "curly-quotes"],
)
def test_bytes_the_declared_charset_cannot_decode_go_to_the_fallback(body: bytes) -> None:
    """UTF-8 declared ISO-8859-1 (read as windows-1252) with a byte windows-1252 lacks
    (0x9d, the end of U+201D): libxml2 gives up at once, both engines get an empty page."""
    assert same_text(body, encoding="iso-8859-1", fallback=True) == ""


def test_empty_body_goes_to_the_fallback() -> None:
    assert same_text(b"", fallback=True) == ""
    assert same_text("", fallback=True) == ""
    assert same_text(b"", select=["main"], fallback=True)[0] == "selector"


# --- selectors ----------------------------------------------------------------------------

SELECTOR_PAGE = """<html><body>
<main id="content" class="content  main"><h1 lang="en-GB">Title</h1>
<p class="lead">First</p><p>Second <a href="/x" rel="nofollow" data-k="v1 v2">link</a></p>
<div class="sr-only">Skip</div><section><h2>Part</h2><p>Para</p>
<p class="">Empty class</p></section>
<ul><li>one</li><li class="x">two</li><li>three</li><li>four</li></ul>
<select name="Locale Select"><option>en</option></select><button type="Submit">Go</button>
<table><tr><td headers="a  b">c1</td><td>c2</td></tr></table></main>
<aside data-x="1"><p>Aside</p></aside><footer><p>Foot</p></footer></body></html>"""

SUPPORTED = [
    "main",
    "#content",
    "main .content",
    ".content.main",
    "main > p",
    "h1 + p",
    "h1 ~ p",
    "p:first-child",
    "li:last-child",
    "li:nth-child(2n+1)",
    "li:nth-last-child(-n+2)",
    "p:nth-of-type(2)",
    "li:only-child",
    "p:not(.lead)",
    ":not(main) > p",
    "main :not(section) p",
    "[data-x]",
    '[class="content main"]',
    "[class^=cont]",
    "[class$=ain]",
    "[class*=nt]",
    "[class~=main]",
    "[data-k*=v2]",
    "[data-k^=v1]",
    '[data-x="1"]',
    "P",
    "MAIN .CONTENT",
    "section, aside",
    "*",
    "p.lead",
    '[class=""]',
]

FALLBACK = [
    "p:empty",
    ":root",
    "a:link",
    "p:contains(Para)",
    "p:-soup-contains(Para)",
    "[type=submit]",
    "[rel=nofollow]",
    "[lang|=en]",
    "[headers=a]",
    "p:has(a)",
    ":is(p, li)",
    "[data-k!=v1]",
    "[data-k~=v2]",
    "*:first-of-type",
    "svg|rect",
    "li:nth-child(2 of .x)",
]


@pytest.mark.parametrize("selector", SUPPORTED)
def test_supported_selector(selector: str) -> None:
    matches_html = selector == "*"  # removing <html> itself goes to the fallback
    same_text(SELECTOR_PAGE, select=[selector])
    same_text(SELECTOR_PAGE, remove=[selector], fallback=matches_html)
    same_text(
        SELECTOR_PAGE,
        select=["main", "footer"],
        remove=[selector, "li:first-child"],
        fallback=matches_html,
    )


@pytest.mark.filterwarnings("ignore:The pseudo class:FutureWarning")  # :contains
@pytest.mark.parametrize("selector", FALLBACK)
def test_selector_only_soupsieve_matches_alike_goes_to_the_fallback(selector: str) -> None:
    same_text(SELECTOR_PAGE, select=[selector], fallback=True)
    same_text(SELECTOR_PAGE, remove=[selector], fallback=True)


def test_structural_selector_with_several_top_level_elements_goes_to_the_fallback() -> None:
    page = "<html><body><p>a</p><p>b</p></body></html><p>after</p>"
    same_text(page, remove=["p:first-child"], fallback=True)
    same_text(page, remove=["p + p"])  # sibling combinators count alike
    same_text(page.replace("<p>after</p>", ""), remove=["p:first-child"])


def test_hidden_or_removed_top_level_element_goes_to_the_fallback() -> None:
    same_text("<html hidden><body><p>a</p></body></html>", fallback=True)
    same_text("<p>a</p>", remove=["html"], fallback=True)
    same_text("<p>a</p>", remove=["body"])


def test_late_doctype_goes_to_the_fallback() -> None:
    """bs4 keeps a <!DOCTYPE> after the first tag, as a string: in a list, an item."""
    page = "<ul><li>a</li><!DOCTYPE html>b</ul>"
    assert same_text(page, fallback=True) == "- a\n- html\n- b\n"
    same_text("<!DOCTYPE html><!-- x --><!doctype html><ul><li>a</li></ul>")


# --- generated pages ----------------------------------------------------------------------

WORDS = ["Terms", "apply", "café", "a &amp; b", "x&nbsp;y", " \n ", "it’s", "&#11;", "1|2"]
TAGS = ["p", "div", "span", "b", "a", "ul", "ol", "li", "table", "tr", "td", "th", "pre", "br"]
TAGS += ["h2", "blockquote", "dl", "dd", "section", "main", "nav", "script", "caption", "img"]
ATTRIBUTES = ["", "", " class='content'", " id='content'", " hidden", " href='/t?utm_source=x'"]
ATTRIBUTES += [" style='display:none'", " start='2'", " type='a'", " class='sr-only x'"]


def random_page(rng: random.Random, depth: int = 0) -> str:
    parts = []
    for _ in range(rng.randint(1, 4)):
        if depth > 5 or rng.random() < 0.35:
            parts.append(rng.choice(WORDS))
        elif rng.random() < 0.08:
            parts.append(rng.choice(["<!-- c -->", "</p>", "</div>", "<br>", "<li>", "<td>"]))
        else:
            tag = rng.choice(TAGS)
            close = f"</{tag}>" if rng.random() < 0.85 else ""
            inner = random_page(rng, depth + 1)
            parts.append(f"<{tag}{rng.choice(ATTRIBUTES)}>{inner}{close}")
    return "".join(parts)


def test_generated_pages() -> None:
    """400 seeded pages of random markup; most must stay with lxml."""
    handed_over.clear()
    rng = random.Random(20240501)
    for _ in range(200):
        html = random_page(rng)
        select, remove = rng.choice(SELECTOR_SETS)
        same_text(html.encode(), encoding="utf-8", select=select, remove=remove, fallback=None)
        remove = rng.choice([(), ("li:nth-child(2)",), ("b", ".x")])
        same_text(html, remove=remove, fallback=None)
    assert len(handed_over) < 40


def test_extract_text_uses_the_lxml_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """No fallback for an ordinary page: the BeautifulSoup engine is never called."""

    def refuse(*args: object) -> None:
        raise AssertionError("the BeautifulSoup engine ran")

    monkeypatch.setattr(extract_soup, "render", refuse)
    assert extract_text(test_hostile.V1, select=["main"]).startswith("# Terms")


# --- the fast text rules equal the ones they stand in for --------------------------------


def test_has_odd_finds_what_control_and_invisible_remove() -> None:
    for code in [*range(0x3000), 0x3000, 0xFEFF, 0xFFFD, 0x1F600]:
        char = chr(code)
        removed = bool(CONTROL.search(char) or INVISIBLE.search(char))
        contexts = [char, f"ab{char}cd", f"é{char}", f"{char}日本"]
        assert [has_odd(text) for text in contexts] == [removed] * 4, code


def test_finish_plain_is_finish_inline_on_plain_text() -> None:
    pieces = [" ", "  ", "\n", "\t", "\r", "\xa0", "\u2028", "\u3000", "\u200a", BREAK]
    pieces += ["a", "b", "é", "’", "x y", " z "]
    rng = random.Random(7)
    for _ in range(20000):
        raw = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        assert finish_plain(raw) == finish_inline(raw), repr(raw)


def test_case_insensitive_attributes_copy_equals_soupsieve() -> None:
    from soupsieve.css_parser import HTML_CASE_INSENSITIVE_ATTRIBUTES as original

    from tracker.extract.lxml_select import HTML_CASE_INSENSITIVE_ATTRIBUTES

    assert original == HTML_CASE_INSENSITIVE_ATTRIBUTES


def test_a_plain_run_imports_neither_bs4_nor_soupsieve(tmp_path: Path) -> None:
    """Start-up cost: both load only for the fallback or an odd selector."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from tracker.config.values import selector_problem\n"
        "from tracker.extract.engine import extract_text\n"
        "assert selector_problem('main .content') is None\n"
        "html = b'<html><body><main><p>Hello there</p></main></body></html>'\n"
        "assert extract_text(html, encoding='utf-8', select=['main']) == 'Hello there\\n'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('bs4', 'soupsieve')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "[]"


def test_a_selector_only_cssselect_reads_fails_fallback_pages_plainly() -> None:
    """cssselect reads `#1a` (config accepts it); soupsieve, used by the fallback engine
    for the rare pages lxml cannot do alike, does not: such a page is a `selector` error
    naming the selector, never an odd-page crash."""
    from tracker.core.errors import FetchError
    from tracker.extract.engine import extract_text

    plain = b'<html><body><div id="1a"><p>Terms of service text</p></div></body></html>'
    assert extract_text(plain, encoding="utf-8", select=["#1a"]) == "Terms of service text\n"
    needs_fallback = plain.replace(b"Terms of", b"Terms\x0cof")
    with pytest.raises(FetchError) as caught:
        extract_text(needs_fallback, encoding="utf-8", select=["#1a"])
    assert caught.value.kind == "selector" and "'#1a'" in str(caught.value)
