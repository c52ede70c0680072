"""Tests for tracker.extract: HTML in, deterministic markdown-like text out.

Most rendering cases live in tests/cases/extract.json so that a reader can see the HTML
and the exact text it must give side by side. A case may carry an "xfail" reason: those
record known bugs, with the output a reader would expect, and fail loudly once fixed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tracker.core.errors import FetchError
from tracker.extract.engine import clean_url, extract_text, normalize_text

CASES_FILE = Path(__file__).parent / "cases" / "extract.json"
CASE_KEYS = {"name", "html", "select", "remove", "expected", "xfail"}


def load_cases() -> list[dict[str, Any]]:
    return json.loads(CASES_FILE.read_text(encoding="utf-8"))


def case_params() -> list[Any]:
    params = []
    for case in load_cases():
        marks = []
        if case.get("xfail"):
            marks.append(pytest.mark.xfail(strict=True, reason=case["xfail"]))
        params.append(pytest.param(case, id=case["name"], marks=marks))
    return params


def run_case(case: dict[str, Any], body: bytes | str, encoding: str | None = None) -> str:
    return extract_text(
        body,
        encoding=encoding,
        select=case.get("select", ()),
        remove=case.get("remove", ()),
    )


def test_case_file_is_well_formed() -> None:
    """A typo in the JSON (a misspelt key, a duplicate name) must not silently skip a case."""
    cases = load_cases()
    assert len(cases) >= 30
    names = [case["name"] for case in cases]
    assert len(names) == len(set(names))
    for case in cases:
        assert set(case) <= CASE_KEYS, case["name"]
        assert {"name", "html", "expected"} <= set(case), case["name"]
        assert case["expected"].endswith("\n"), case["name"]
        assert not case["expected"].endswith("\n\n"), case["name"]


@pytest.mark.parametrize("case", case_params())
def test_extract_case(case: dict[str, Any]) -> None:
    """Each HTML snippet renders to exactly the expected text."""
    assert run_case(case, case["html"]) == case["expected"]


@pytest.mark.parametrize("case", case_params())
def test_extract_case_from_utf8_bytes(case: dict[str, Any]) -> None:
    """The pipeline passes bytes plus the server's charset; that path must agree with str input."""
    assert run_case(case, case["html"].encode("utf-8"), encoding="utf-8") == case["expected"]


# --- select errors ----------------------------------------------------------------------


def test_select_matching_nothing_raises_selector_error() -> None:
    """A redesigned page or a bot wall must fail loudly, not look like an emptied document."""
    with pytest.raises(FetchError) as info:
        extract_text("<main><p>Terms</p></main>", select=["#terms", ".policy"])
    assert info.value.kind == "selector"
    assert info.value.status is None
    assert "#terms" in str(info.value)


@pytest.mark.parametrize(
    ("html", "remove"),
    [
        ('<div id="terms" hidden><p>Terms</p></div><p>Other</p>', []),
        ('<div id="terms" style="display:none"><p>Terms</p></div>', []),
        ('<div class="wrap"><div id="terms"><p>Terms</p></div></div>', [".wrap"]),
        ('<script id="terms">var terms = 1;</script><p>Other</p>', []),
    ],
    ids=["hidden", "display-none", "removed-ancestor", "dropped-tag"],
)
def test_select_matching_only_invisible_elements_raises(html: str, remove: list[str]) -> None:
    """Selection happens after cleaning, so a match that a reader cannot see counts as none."""
    with pytest.raises(FetchError) as info:
        extract_text(html, select=["#terms"], remove=remove)
    assert info.value.kind == "selector"


def test_no_select_on_empty_page_gives_empty_text() -> None:
    """Without `select` an empty body is not an error: the text is simply empty."""
    assert extract_text("<html><body><script>x()</script></body></html>") == ""
    assert extract_text(b"") == ""


# --- determinism ------------------------------------------------------------------------

DETERMINISM_PAGE = "\n".join(case["html"] for case in load_cases() if not case.get("xfail"))


def test_same_bytes_give_same_text() -> None:
    """Two calls on the same bytes, or on an equal copy of them, give identical text."""
    body = ("<html><head><meta charset='utf-8'></head><body>" + DETERMINISM_PAGE).encode()
    first = extract_text(body, select=["body"], remove=[".cookie-banner"])
    second = extract_text(body, select=["body"], remove=[".cookie-banner"])
    third = extract_text(bytes(bytearray(body)), select=["body"], remove=[".cookie-banner"])
    assert first == second == third
    assert "| Plan | Limit |" in first
    assert "We use cookies" not in first


def test_same_bytes_give_same_text_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """Nothing may depend on hash seeds, object ids or other per-process state."""
    body = ("<html><head><meta charset='utf-8'></head><body>" + DETERMINISM_PAGE).encode()
    page = tmp_path / "page.html"
    page.write_bytes(body)
    script = (
        "import sys\n"
        "from tracker.extract.engine import extract_text\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "text = extract_text(data, select=['main', 'table', '#a', '.x'], remove=['nav'])\n"
        "sys.stdout.buffer.write(text.encode('utf-8'))\n"
    )
    expected = extract_text(body, select=["main", "table", "#a", ".x"], remove=["nav"])
    assert expected.count("\n") > 10
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script, str(page)],
            capture_output=True,
            check=True,
            env=env,
            timeout=120,
        )
        assert out.stdout.decode("utf-8") == expected


# --- character sets ---------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["windows-1252", "cp1252", "WINDOWS-1252"])
def test_declared_windows_1252_decodes(encoding: str) -> None:
    """The charset the server declared is used to decode the bytes."""
    body = "<html><body><p>café – naïve</p></body></html>".encode("windows-1252")
    assert extract_text(body, encoding=encoding) == "café – naïve\n"


def test_declared_encoding_wins_over_meta() -> None:
    """The server's header is authoritative when the page's own <meta> disagrees with it."""
    body = (
        '<html><head><meta charset="utf-8"></head><body><p>café – naïve</p></body></html>'
    ).encode("windows-1252")
    assert extract_text(body, encoding="windows-1252") == "café – naïve\n"


@pytest.mark.parametrize(
    "meta",
    [
        '<meta charset="iso-8859-1">',
        '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">',
    ],
    ids=["meta-charset", "http-equiv"],
)
def test_meta_charset_latin1_decodes(meta: str) -> None:
    """Without a declared charset the page's own <meta> decides."""
    body = (
        f"<html><head>{meta}</head><body><p>café naïve déjà vu, señor</p></body></html>"
    ).encode("latin-1")
    assert extract_text(body) == "café naïve déjà vu, señor\n"


UTF8_TEXT = (
    "Les conditions générales d’utilisation — «données personnelles», café, naïve, "
    "Übersicht der Nutzungsbedingungen, 日本語の利用規約, ¿Qué pasa?"
)


def test_utf8_without_meta_or_declared_charset_decodes() -> None:
    """Byte-level detection recognises UTF-8 when nothing declares a charset."""
    body = f"<html><body><p>{UTF8_TEXT}</p></body></html>".encode()
    assert extract_text(body) == UTF8_TEXT + "\n"


def test_unknown_declared_charset_falls_back_to_detection() -> None:
    """A bogus charset name in the header must not crash extraction."""
    body = f"<html><body><p>{UTF8_TEXT}</p></body></html>".encode()
    assert extract_text(body, encoding="x-no-such-charset") == UTF8_TEXT + "\n"


def test_declared_iso_8859_1_is_treated_as_windows_1252() -> None:
    """Servers often say ISO-8859-1 but send windows-1252 curly quotes and dashes."""
    body = "<html><body><p>It’s café – naïve</p></body></html>".encode("windows-1252")
    assert extract_text(body, encoding="iso-8859-1") == "It’s café – naïve\n"


def test_meta_iso_8859_1_is_treated_as_windows_1252() -> None:
    """Same as above, with the charset declared by the page itself."""
    body = (
        '<html><head><meta charset="iso-8859-1"></head><body><p>It’s café – naïve</p></body></html>'
    ).encode("windows-1252")
    assert extract_text(body) == "It’s café – naïve\n"


# --- clean_url --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("https://ex.com/terms", "https://ex.com/terms"),
        ("https://ex.com/terms#section-4", "https://ex.com/terms#section-4"),
        ("https://ex.com/t?lang=en&page=2#s", "https://ex.com/t?lang=en&page=2#s"),
        ("https://ex.com/t?utm_source=news&lang=en#s", "https://ex.com/t?lang=en#s"),
        ("https://ex.com/t?gclid=abc&id=5", "https://ex.com/t?id=5"),
        ("https://ex.com/t?id=5&fbclid=xyz", "https://ex.com/t?id=5"),
        ("https://ex.com/t?WT.mc_id=ABC-123&id=5#top", "https://ex.com/t?id=5#top"),
        ("https://ex.com/t?UTM_Medium=x&Lang=EN", "https://ex.com/t?Lang=EN"),
        ("https://ex.com/t?utm_source=a&utm_campaign=b&gclid=c", "https://ex.com/t"),
        ("https://ex.com/t?utm_source=a#frag", "https://ex.com/t#frag"),
        ("/legal?a=1&a=2&msclkid=3&_ga=4", "/legal?a=1&a=2"),
        ("  https://ex.com/t?q=a+b&fbclid=1  ", "https://ex.com/t?q=a+b"),
        ("https://ex.com/t?q=a%2Bb&utm_term=x", "https://ex.com/t?q=a%2Bb"),
        ("mailto:legal@ex.com?subject=Terms&utm_source=x", "mailto:legal@ex.com?subject=Terms"),
        ("https://[::1/broken?utm_source=1", "https://[::1/broken?utm_source=1"),
    ],
)
def test_clean_url(href: str, expected: str) -> None:
    """Tracking parameters go; everything that identifies the target stays."""
    assert clean_url(href) == expected


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("https://ex.com/login?next=/terms&utm_source=x", "https://ex.com/login?next=/terms"),
        ("https://ex.com/s?q=terms%20of%20use&gclid=1", "https://ex.com/s?q=terms%20of%20use"),
        ("https://ex.com/doc?download&utm_source=x", "https://ex.com/doc?download"),
    ],
)
def test_clean_url_keeps_other_parameters_as_written(href: str, expected: str) -> None:
    """The docstring promises the rest of the URL is kept as written."""
    assert clean_url(href) == expected


# --- normalize_text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\n\n\n\nb\n", "a\n\nb\n"),
        ("a  \nb\t \n", "a\nb\n"),
        ("\n\n  \nfirst\n \n\t\nsecond\n\n\n", "first\n\nsecond\n"),
        ("a\r\n\r\n\r\nb\rc", "a\n\nb\nc\n"),
        ("no newline at end", "no newline at end\n"),
        ("soft\u00adhy\u200bphen\ufeff", "softhyphen\n"),
        ("Cafe\u0301", "Caf\u00e9\n"),
        ("  indented stays\n", "  indented stays\n"),
        ("", ""),
        ("\n \n\t\n", ""),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    """Blank lines collapse to one, trailing spaces go, the text ends with exactly one newline."""
    assert normalize_text(raw) == expected


def test_normalize_text_is_idempotent() -> None:
    """Normalising twice changes nothing, so stored texts compare equal after a re-run."""
    raw = "x  \n\n\n y\u200b\t\n\nCafe\u0301\n\n"
    once = normalize_text(raw)
    assert normalize_text(once) == once


# --- markup-looking text ----------------------------------------------------------------


def test_escaped_markup_comes_out_as_literal_text() -> None:
    """Text that looks like HTML stays literal here; escaping is the report's job."""
    html = "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p><p>a &lt; b &amp;&amp; c &gt; d</p>"
    assert extract_text(html) == "<script>alert(1)</script>\n\na < b && c > d\n"


# --- regressions found in review -------------------------------------------------------


@pytest.mark.parametrize("depth", [400, 3000, 20000])
def test_deeply_nested_pages_keep_their_text(depth: int) -> None:
    """Legacy pages nest unclosed tags hundreds deep; rendering must not hit recursion limits."""
    page = "<p>start</p>" + "<font>" * depth + "deep text" + "<div>" * depth + "deeper"
    assert extract_text(page) == "start\n\ndeep text deeper\n"


def test_control_characters_never_reach_the_text() -> None:
    """ESC sequences from a page could hide an inserted clause on a terminal."""
    page = "<p>sell&#27;[8m your data&#27;[0m to anyone&#7;</p><pre>a&#27;b</pre>"
    assert extract_text(page) == "sell[8m your data[0m to anyone\n\n```\nab\n```\n"


def test_custom_elements_inside_lists_are_items() -> None:
    page = "<ul><policy-item>No military use.</policy-item><li>Two</li></ul>"
    assert extract_text(page) == "- No military use.\n- Two\n"


def test_table_text_outside_cells_is_kept() -> None:
    page = "<table><div>Note: applies to EU</div><tr><td>cell</td></tr></table>"
    assert extract_text(page) == "Note: applies to EU\n\n| cell |\n"


def test_text_after_an_early_body_end_is_kept_without_select() -> None:
    assert extract_text("<html><body><p>in</p></body></html><p>after</p>") == "in\n\nafter\n"
