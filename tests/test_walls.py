"""Bot walls and login walls: small hand-written fixtures, and no false positive on real pages.

The cases live in tests/cases/walls.json (status, headers, HTML, addresses, the expected
kind and message); `{pad}` in a case's HTML becomes `pad_words` words of ordinary terms text,
so a long page can be written in a line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tracker.fetch.walls import BOT_MARKERS, SMALL_PAGE_WORDS, detect, error_page, visible_words
from tracker.ops.demo import bundled_captures

CASES = json.loads((Path(__file__).parent / "cases" / "walls.json").read_text(encoding="utf-8"))
FILLER = "You agree to use the services only as these terms allow and as the law permits. "


def case_html(case: dict[str, Any]) -> str:
    words = FILLER.split()
    pad = case.get("pad_words", 0)
    filler = " ".join(words[i % len(words)] for i in range(pad))
    return case["html"].replace("{pad}", f"<p>{filler}</p>" if pad else "")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_wall_cases(case: dict[str, Any]) -> None:
    url = case.get("url", "https://example.com/terms")
    error = detect(
        case["status"],
        case["headers"],
        case_html(case).encode("utf-8"),
        case.get("final_url", url),
        url,
    )
    if case["kind"] is None:
        assert error is None, str(error)
    else:
        assert error is not None
        assert (error.kind, str(error), error.status) == (
            case["kind"],
            case["message"],
            case["status"],
        )


def test_the_cases_cover_every_kind_and_both_outcomes() -> None:
    kinds = {c["kind"] for c in CASES}
    assert kinds == {"bot_wall", "login_wall", None}
    assert len({c["name"] for c in CASES}) == len(CASES)


def test_a_weak_marker_counts_on_a_small_page_only() -> None:
    small = b"<html><body><p>Please complete the captcha below.</p></body></html>"
    error = detect(200, {}, small, "https://example.com/terms")
    assert error is not None and error.kind == "bot_wall"
    padded = small.replace(b"</p>", b"</p><p>" + b"word " * SMALL_PAGE_WORDS + b"</p>")
    assert detect(200, {}, padded, "https://example.com/terms") is None
    # ...but a block status makes the same long page a wall.
    blocked = detect(403, {}, padded, "https://example.com/terms")
    assert blocked is not None and str(blocked) == "HTTP 403 with a bot-check page ('captcha')"


def test_header_names_are_case_insensitive() -> None:
    error = detect(403, {"CF-Mitigated": "challenge"}, b"", "https://example.com/")
    assert error is not None and "Cloudflare" in str(error)


def test_visible_words_ignore_scripts_styles_and_comments() -> None:
    html = "<style>p{x:y}</style><script>var a = 'b c d';</script><!-- e f --><p>one <b>two</b></p>"
    assert visible_words(html) == 2


def test_every_marker_is_well_formed() -> None:
    for marker in BOT_MARKERS:
        assert marker.where in ("title", "header", "body"), marker
        assert marker.page.startswith(("a ", "an ")), marker
        if marker.where == "header":
            name, _, value = marker.pattern.partition(": ")
            assert name == name.lower() and value, marker


def test_no_real_capture_in_the_shared_corpus_is_a_wall(corpus: Path) -> None:
    pages = sorted(corpus.rglob("*.html"))
    assert len(pages) >= 8
    for page in pages:
        error = detect(200, {"Content-Type": "text/html"}, page.read_bytes(), "https://x.org/p")
        assert error is None, f"{page.relative_to(corpus)}: {error}"


def test_no_bundled_demo_page_is_a_wall() -> None:
    captures = list(bundled_captures())
    assert captures
    for capture in captures:
        error = detect(200, {}, capture.body, "https://x.org/p")
        assert error is None, f"{capture.document}: {error}"


# --- error pages served with 200 -------------------------------------------------------------

LLAMA_ERROR = (
    "## This page isn’t available\n\n"
    "An unexpected error has occurred. Try reloading the page or come back later.\n"
)


@pytest.mark.parametrize(
    "text",
    [
        LLAMA_ERROR,
        "# Page not found\n\nThe page you are looking for does not exist.",
        "Something went wrong. Please try again later.",
        "# 404 Not Found",
        "Service Unavailable\n\nThe server is temporarily unable to service your request.",
    ],
)
def test_a_short_error_text_is_an_error_page(text: str) -> None:
    error = error_page(text)
    assert error is not None
    assert error.kind == "error_page"
    assert "instead of the document" in str(error)


def test_a_policy_that_mentions_errors_is_no_error_page() -> None:
    clause = (
        "If the page you are looking for is not available, or something went wrong with"
        " your order, contact support; we will not be liable for an unexpected error"
        " that has occurred in a third-party service. "
    )
    assert error_page(clause * 3) is None  # long enough to be a document
    assert error_page("# Acceptable use\n\nDo not use the service to harm people.") is None


def test_no_real_document_text_is_an_error_page(corpus: Path) -> None:
    texts = [p for p in corpus.rglob("*") if p.suffix in (".md", ".txt")]
    assert texts
    for path in texts:
        assert error_page(path.read_text(encoding="utf-8", errors="replace")) is None, path


def test_the_real_llama_error_pages_are_error_pages(corpus: Path) -> None:
    import gzip

    from tracker.extract.engine import extract_text

    folder = corpus / "real-web" / "llama-api" / "acceptable-use-policy"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent; this test needs ../shared/corpus/real-web")
    kinds = []
    for path in sorted(folder.glob("*.html.gz")):
        text = extract_text(
            gzip.decompress(path.read_bytes()),
            select=['[data-pagelet="LLMDCPageMainContent"]'],
            remove=[],
        )
        error = error_page(text)
        kinds.append("error" if error else "policy")
        assert (error is not None) == (len(text) < 1000), path.name
    assert kinds.count("error") >= 20 and kinds.count("policy") >= 10


@pytest.mark.parametrize(
    "text",
    [
        "# Service Level Policy\n\nWe aim for 99.9% uptime. If the API is temporarily"
        " unavailable because of scheduled maintenance, we announce it a week ahead.",
        "# Deprecation policy\n\nOld models are retired after notice. Requests to a retired"
        " model fail: please try again later with a newer model.",
    ],
)
def test_a_short_policy_that_mentions_an_outage_is_no_error_page(text: str) -> None:
    assert error_page(text) is None
