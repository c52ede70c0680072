"""Link noise at extraction: what changes on every load in link targets, and never the terms.

Cloudflare's email obfuscation re-encodes every address on each load with a new key,
so a page behind it got a new version on almost every fetch; decoding it gives the
address a reader sees, the same each time. Signed file links, session and anti-forgery
tokens and visitor ids are dropped from link targets for the same reason.
"""

from __future__ import annotations

import gzip
import itertools
import json
import random
import re
from typing import Any

import pytest
from conftest import SHARED_CORPUS
from test_extract_lxml import same_text
from test_replay import load_replay

from tracker.extract.engine import extract_text
from tracker.extract.rules import cf_decode, cf_email_href, clean_url

REAL_WEB = SHARED_CORPUS / "real-web"
# The replay tool owns the obfuscation, so what it replays is what these tests check.
REPLAY = load_replay()
cloudflare_obfuscate = REPLAY.cloudflare_obfuscate
encode = REPLAY.cf_encode  # the key byte, then each UTF-8 byte of the address XOR it
span = REPLAY.cf_span  # an address shown inside a mailto link: an encoded element
plain = REPLAY.cf_plain  # an address in the text: a link to the protection page
WORDTUNE = "wordtune/privacy-policy"
ADDRESS = "privacy@wordtune.com"
# A markdown link target as the renderer writes it (see `extract._LINK_TARGET`).
LINK_TARGET = re.compile(r"\]\(([^()\s]*(?:\([^()\s]*\)[^()\s]*)*)\)")


# --- the decoding rule -------------------------------------------------------------------


def test_decodes_a_published_example() -> None:
    """An example encoded elsewhere (not by `encode`), so a wrong scheme cannot pass."""
    assert cf_decode("98d1fcf7f4f5d8ebecfdea") == "Idolm@ster"


@pytest.mark.parametrize("key", [0x00, 0x01, 0x5A, 0xA5, 0xFF])
@pytest.mark.parametrize("address", [ADDRESS, "jürgen@exämple.de", "a+b@x.io?subject=Terms"])
def test_decodes_every_key(address: str, key: int) -> None:
    assert cf_decode(encode(address, key)) == address
    assert cf_decode(encode(address, key).upper()) == address


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "7",
        "5a",  # the key alone: no address
        "5a3",  # odd length
        "zz" + encode(ADDRESS, 0x12)[2:],  # not hex
        encode(ADDRESS, 0x12) + "0",
        "05" + "fa",  # 0xff: not UTF-8
        encode("a@b\x07", 0x33),  # a control character
        encode("a@b\u200b", 0x33),  # an invisible one
        encode("   ", 0x33),
        encode(ADDRESS, 0x12)[:10] + " " + encode(ADDRESS, 0x12)[10:],
    ],
)
def test_malformed_hex_is_not_decoded(encoded: str) -> None:
    assert cf_decode(encoded) is None


def test_link_targets_are_decoded_or_left_as_written() -> None:
    hexed = encode(ADDRESS, 0x4D)
    assert cf_email_href(f"/cdn-cgi/l/email-protection#{hexed}", "x") == f"mailto:{ADDRESS}"
    absolute = f"https://www.wordtune.com/cdn-cgi/l/email-protection#{hexed}"
    assert cf_email_href(absolute, "x") == f"mailto:{ADDRESS}"
    broken = "/cdn-cgi/l/email-protection#4dzz"
    assert cf_email_href(broken, "x") == broken
    # No fragment: the link wraps an encoded element; the address it shows is the target.
    assert cf_email_href("/cdn-cgi/l/email-protection", ADDRESS) == f"mailto:{ADDRESS}"
    shown = "[email\u00a0protected]"
    assert cf_email_href("/cdn-cgi/l/email-protection", shown) == "/cdn-cgi/l/email-protection"
    assert cf_email_href("/cdn-cgi/l/email-protection", "Contact us") == (
        "/cdn-cgi/l/email-protection"
    )


# --- synthetic pages, both engines -------------------------------------------------------


def linked(address: str, href_key: int, span_key: int) -> str:
    """A mailto link whose text is the address: both are encoded, with different keys."""
    hexed = encode(address, href_key)
    return f'<a href="/cdn-cgi/l/email-protection#{hexed}">{span(address, span_key)}</a>'


CASES = [
    # (obfuscated as served, what a reader sees, which is also the text of the page unprotected)
    (
        lambda k: f"<p>Write to {linked(ADDRESS, k, k ^ 0x5F)}.</p>",
        f"Write to [{ADDRESS}](mailto:{ADDRESS}).\n",
    ),
    (lambda k: f"<p>Write to {plain(ADDRESS, k)} today.</p>", f"Write to {ADDRESS} today.\n"),
    (lambda k: f"<p>Write to {span(ADDRESS, k)} today.</p>", f"Write to {ADDRESS} today.\n"),
    (
        lambda k: (
            f'<p><a href="/cdn-cgi/l/email-protection#{encode(ADDRESS + "?subject=DSR", k)}">'
            "Contact our privacy team</a></p>"
        ),
        f"[Contact our privacy team](mailto:{ADDRESS}?subject=DSR)\n",
    ),
    (
        lambda k: f'<p><a href="/cdn-cgi/l/email-protection">{span(ADDRESS, k)}</a></p>',
        f"[{ADDRESS}](mailto:{ADDRESS})\n",
    ),
    (
        lambda k: (
            f"<h2>Contact {span('dpo@ex.com', k)}</h2><ul><li>Email {linked('dpo@ex.com', k, 7)}"
            f"</li></ul><table><tr><td>DPO</td><td>{plain('dpo@ex.com', k ^ 1)}</td></tr></table>"
        ),
        "## Contact dpo@ex.com\n\n- Email [dpo@ex.com](mailto:dpo@ex.com)\n\n"
        "| DPO | dpo@ex.com |\n",
    ),
    (
        lambda k: f"<p>Écrivez à {linked('jürgen@exämple.de', k, 255 - k)}</p>",
        "Écrivez à [jürgen@exämple.de](mailto:jürgen@exämple.de)\n",
    ),
    (
        # Preformatted text keeps no links, only what it shows: the address.
        lambda k: f"<pre>Contact: {span(ADDRESS, k)}<br>or {linked('dpo@ex.com', k, 9)}</pre>",
        f"```\nContact: {ADDRESS}\nor dpo@ex.com\n```\n",
    ),
    (
        lambda k: f"<pre><ruby>DPO<rt>{span('dpo@ex.com', k)}</rt></ruby></pre>",
        "```\nDPOdpo@ex.com\n```\n",
    ),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_obfuscated_addresses_read_as_the_address_on_every_load(case: int) -> None:
    """Each key gives the same text in both engines: the address, in the link and the text."""
    page, expected = CASES[case]
    for key in (0x00, 0x21, 0x9C, 0xFF):
        text = same_text(page(key).encode(), encoding="utf-8")
        assert text == expected
        assert same_text(page(key)) == expected


def test_malformed_encodings_are_left_alone_in_both_engines() -> None:
    """The page shows what it shows; nothing is decoded into garbage, nothing fails."""
    page = (
        '<p><a href="/cdn-cgi/l/email-protection#4dzz">Contact</a> '
        '<span data-cfemail="12">[email&#160;protected]</span> '
        f'<span data-cfemail="{encode("a@b", 0x33)}0">[email&#160;protected]</span> '
        '<a href="/cdn-cgi/l/email-protection" data-cfemail="">us</a></p>'
    )
    assert same_text(page) == (
        "[Contact](/cdn-cgi/l/email-protection#4dzz) [email protected] [email protected]"
        " [us](/cdn-cgi/l/email-protection)\n"
    )


def test_a_decoded_address_follows_the_selectors() -> None:
    """Decoding happens where the text is rendered: removed parts stay removed."""
    page = f"<main><p>{span(ADDRESS, 3)}</p><footer>{span('ads@ex.com', 4)}</footer></main>"
    assert same_text(page, select=["main"], remove=["footer"]) == ADDRESS + "\n"
    assert "ads@ex.com" not in same_text(page, select=["main"], remove=["footer"])


def test_generated_pages_with_obfuscated_addresses_agree_between_engines() -> None:
    """Random markup around encoded addresses (some malformed): the engines agree."""
    rng = random.Random(1402)
    pieces = [
        lambda: linked(ADDRESS, rng.randrange(256), rng.randrange(256)),
        lambda: plain("x@y.z", rng.randrange(256)),
        lambda: span("legal@ex.com", rng.randrange(256)),
        lambda: (
            f'<span data-cfemail="{rng.choice(["", "1", "zz", "0a0b0"])}">[email protected]</span>'
        ),
        lambda: f'<a href="/cdn-cgi/l/email-protection#{rng.randrange(4096):x}">m</a>',
    ]
    tags = ["p", "div", "li", "ul", "td", "h3", "b", "a", "pre", "blockquote"]
    for _ in range(120):
        html = ""
        for _ in range(rng.randint(1, 6)):
            tag = rng.choice(tags)
            inner = rng.choice(pieces)() + rng.choice(["", " words ", "<br>"])
            html += f"<{tag}>{inner}</{tag}>" if rng.random() < 0.8 else inner
        same_text(html.encode(), encoding="utf-8", fallback=None)


# --- per-load parameters -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        # A presigned S3 link (as Notion-hosted pages serve attachments): the object stays.
        (
            "https://prod-files-secure.s3.us-west-2.amazonaws.com/ws/f/Terms.pdf"
            "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20250101%2Fs3"
            "&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-Signature=9f1c"
            "&X-Amz-SignedHeaders=host&x-id=GetObject",
            "https://prod-files-secure.s3.us-west-2.amazonaws.com/ws/f/Terms.pdf?x-id=GetObject",
        ),
        (
            "https://storage.googleapis.com/b/aup.pdf?X-Goog-Algorithm=GOOG4-RSA-SHA256"
            "&X-Goog-Date=20250101T000000Z&X-Goog-Expires=900&X-Goog-Signature=ab12",
            "https://storage.googleapis.com/b/aup.pdf",
        ),
        (
            "https://d111.cloudfront.net/terms.pdf?Expires=1735689600&Signature=a~b_&Key-Pair-Id=K2J",
            "https://d111.cloudfront.net/terms.pdf",
        ),
        (
            "https://a.blob.core.windows.net/c/terms.pdf?sv=2022-11-02&st=2025-01-01T00%3A00Z"
            "&se=2025-01-02T00%3A00Z&sr=b&sp=r&sig=k%3D",
            "https://a.blob.core.windows.net/c/terms.pdf",
        ),
        (
            "https://ex.com/t?st=open&sp=2&expires=never",
            "https://ex.com/t?st=open&sp=2&expires=never",
        ),
        (
            "https://ex.com/(S(lit3py55t21z5v55vlm25s55))/terms.aspx?p=2",
            "https://ex.com/terms.aspx?p=2",
        ),
        ("https://ex.com/(A(x1)S(y2))/terms.aspx", "https://ex.com/terms.aspx"),
        ("https://ex.com/a/(b)/c", "https://ex.com/a/(b)/c"),
        ("/logout?_token=Zx81&next=/terms", "/logout?next=/terms"),
        ("/lang?csrfmiddlewaretoken=abc&lang=fr", "/lang?lang=fr"),
        ("https://ex.com/p?__hstc=1.2.3&__hssc=4&__hsfp=5&id=7", "https://ex.com/p?id=7"),
        ("https://ex.com/p?srsltid=AfmBOo&nonce=8c1&_dc=1735&q=1", "https://ex.com/p?q=1"),
    ],
)
def test_per_load_parameters_are_dropped(href: str, expected: str) -> None:
    assert clean_url(href) == expected


def test_a_signed_link_reads_the_same_on_every_load() -> None:
    """Two loads of a page linking a presigned file: one text."""

    def page(date: str, signature: str) -> str:
        return (
            '<p>See the <a href="https://s3.amazonaws.com/b/terms.pdf?X-Amz-Date='
            f'{date}&amp;X-Amz-Signature={signature}">terms</a>.</p>'
        )

    first = same_text(page("20250101T000000Z", "aa11"))
    assert first == same_text(page("20250102T120000Z", "bb22"))
    assert first == "See the [terms](https://s3.amazonaws.com/b/terms.pdf).\n"


# --- the real Wordtune captures -----------------------------------------------------------


def manifest_document(document: str) -> dict[str, Any]:
    if not REAL_WEB.is_dir():
        pytest.skip(f"the real-web captures are not at {REAL_WEB}; these tests need ../shared")
    manifest = json.loads((REAL_WEB / "manifest.json").read_text(encoding="utf-8"))
    found: dict[str, Any] = next(d for d in manifest["documents"] if d["id"] == document)
    return found


def captures(document: dict[str, Any]) -> list[tuple[str, bytes]]:
    folder = REAL_WEB / document["id"]
    return [
        (c["file"], gzip.decompress((folder / c["file"]).read_bytes()))
        for c in document["captures"]
    ]


def test_wordtune_captures_show_the_address_and_no_link_only_change() -> None:
    """As captured: every capture links the real address; consecutive captures differ
    only where the policy's words changed, never in link targets alone."""
    document = manifest_document(WORDTUNE)
    texts = [
        extract_text(body, select=document["select"], remove=document["remove"])
        for _, body in captures(document)
    ]
    assert all(f"[{ADDRESS}](mailto:{ADDRESS})" in text for text in texts)
    for before, after in itertools.pairwise(texts):
        if before != after:
            assert LINK_TARGET.sub("](URL)", before) != LINK_TARGET.sub("](URL)", after)
    assert sum(a == b for a, b in itertools.pairwise(texts)) >= 36


def test_wordtune_obfuscated_on_every_load_extracts_as_served_plainly() -> None:
    """Each real capture, obfuscated as Cloudflare serves it with fresh keys, extracts to
    the text of the capture itself: the real address, in the link and the text."""
    document = manifest_document(WORDTUNE)
    rng = random.Random(14)
    select, remove = document["select"], document["remove"]
    for name, body in captures(document):
        html = body.decode("utf-8")
        served = [cloudflare_obfuscate(html, rng) for _ in range(2)]
        assert "email-protection#" in served[0] and ADDRESS not in served[0], name
        assert served[0] != served[1], name  # the keys change from load to load
        expected = extract_text(body, select=select, remove=remove)
        for page in served:
            assert extract_text(page.encode(), select=select, remove=remove) == expected, name


@pytest.mark.parametrize("index", [0, 20, 39])
def test_wordtune_obfuscated_engines_agree(index: int) -> None:
    """The lxml engine and the BeautifulSoup reference agree on a real obfuscated page."""
    document = manifest_document(WORDTUNE)
    _, body = captures(document)[index]
    page = cloudflare_obfuscate(body.decode("utf-8"), random.Random(index))
    text = same_text(page.encode(), select=document["select"], remove=document["remove"])
    assert f"[{ADDRESS}](mailto:{ADDRESS})" in text
    assert "[email" not in text and "email-protection" not in text
