"""What every HTML engine in `extract` agrees on: element tables, text rules, link cleaning.

`extract_lxml` (the fast path) and `extract_soup` (the BeautifulSoup reference and
fallback) must turn the same bytes into the same text, so the rules they share live
here once: which elements are dropped, which are blocks, how inline runs are finished,
how list items are numbered, which link parameters are tracking noise, how Cloudflare's
obfuscated email addresses read.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import unquote_plus, urlsplit, urlunsplit

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
DROPPED = frozenset(DROPPED_TAGS)

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
# Blocks that make a link a container (a card link around a heading), not an inline link.
LINK_BLOCKS = frozenset([*HEADINGS, "p", "div", "ul", "ol", "table"])
# Table structure: never text outside cells.
TABLE_PARTS = frozenset({"tr", "td", "th", "thead", "tbody", "tfoot", "caption", "colgroup"})
# Deeper than this, a subtree is replaced by its plain text (see `flatten_deep`).
MAX_DEPTH = 150

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
        "_dc",
        "nonce",
        # Visitor and click ids that analytics scripts write into links as a page loads.
        "__hstc",
        "__hssc",
        "__hsfp",
        "srsltid",
        "_kx",
        "s_kwcid",
        "ef_id",
        "irclickid",
        "rdt_cid",
        "sccid",
        "epik",
        "_branch_match_id",
        "oly_enc_id",
        "oly_anon_id",
        "wickedid",
        # Anti-forgery tokens (a logout or language link): new with each session.
        "csrf",
        "_csrf",
        "csrf_token",
        "csrftoken",
        "csrfmiddlewaretoken",
        "authenticity_token",
        "_token",
        "__requestverificationtoken",
    }
)
# x-amz-* and x-goog-* sign a link to a stored file (S3, Google Cloud Storage): a
# terms PDF or a Notion-hosted page's attachments get a new signature on each load.
TRACKING_PREFIXES = (
    "utm_",
    "pk_",
    "hsa_",
    "vero_",
    "aspsessionid",
    "__cf_chl_",
    "x-amz-",
    "x-goog-",
)
# A signed link's other fields (CloudFront, S3's older scheme, an Azure SAS token): their
# names are generic, so they go only from a link that carries one of SIGNATURES.
SIGNATURES = frozenset({"signature", "sig"})
SIGNING_PARAMS = frozenset(
    {"signature", "sig", "expires", "policy", "key-pair-id", "awsaccesskeyid"}
    | {"sv", "ss", "srt", "sp", "se", "st", "spr", "sr", "sdd", "si"}
    | {"skoid", "sktid", "skt", "ske", "sks", "skv"}
)
# A session id some servers put in the path: /terms;jsessionid=0A1B2C?x=1
_PATH_SESSION = re.compile(r";(?:jsessionid|phpsessid|sid)=[^/?#]*", re.IGNORECASE)
# ASP.NET's cookieless session in the path: /(S(lit3py55t21z5v55vlm25s55))/terms.aspx
_ASPNET_SESSION = re.compile(r"/\((?:[A-Za-z]\([A-Za-z0-9_-]*\))+\)(?=/)")

HIDDEN_STYLE = re.compile(r"(display\s*:\s*none|visibility\s*:\s*hidden)", re.IGNORECASE)
SPACE = re.compile(r"[ \t\n\r\f\v\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
BREAK = "\x00"  # stands for <br> until whitespace has been collapsed
# C0 and C1 controls other than tab and newline: a page's ESC sequences must never
# reach a terminal, and they are never text a reader sees.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# What CONTROL or INVISIBLE remove, as bytes of Latin-1 and as the characters beyond it.
_ODD_LATIN_1 = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0), 0xAD])
_ODD_BEYOND = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")

# Labels that browsers decode as windows-1252 (WHATWG Encoding Standard): servers say
# ISO-8859-1 and send curly quotes and dashes from the 0x80-0x9F range.
WINDOWS_1252_LABELS = frozenset(
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


def has_odd(text: str) -> bool:
    """Whether `text` holds a character CONTROL or INVISIBLE removes.

    Text without any is "plain" (see `finish_plain`). Built from C-speed str and bytes
    methods, several times faster than a regular expression over a page of text.
    """
    data = text.encode("latin-1", "ignore")  # a copy, for ASCII and Latin-1 text
    if len(data.translate(None, _ODD_LATIN_1)) != len(data):
        return True
    return len(data) != len(text) and any(char in text for char in _ODD_BEYOND)


def browser_encoding(label: str) -> str:
    """The encoding a browser uses for a charset label (ISO-8859-1 means windows-1252)."""
    label = label.strip().lower()
    return "windows-1252" if label in WINDOWS_1252_LABELS else label


def is_hidden(hidden: bool, aria_hidden: str, style: str | None) -> bool:
    """Whether an element with these attribute values is hidden from a reader."""
    if hidden or aria_hidden.lower() == "true":
        return True
    return bool(style and HIDDEN_STYLE.search(style))


def finish_inline(raw: str) -> str:
    """Collapse an inline run's whitespace; each <br> becomes a line break."""
    text = SPACE.sub(" ", INVISIBLE.sub("", raw))
    lines = [line.strip() for line in text.split(BREAK)]
    return "\n".join(line for line in lines if line).strip()


def finish_plain(raw: str) -> str:
    """`finish_inline` for text without a character `has_odd` finds (<br> marks aside).

    Several times faster: no regular expression, str.split() collapses the spaces. It
    is the same function there: the characters str.split() and str.strip() take for
    whitespace are SPACE's plus \x1c-\x1f and \x85, which has_odd finds.
    """
    if BREAK in raw:
        lines = (" ".join(segment.split()) for segment in raw.split(BREAK))
        return "\n".join(line for line in lines if line)
    ascii_ = raw.isascii()
    if ascii_ and "  " not in raw and "\n" not in raw and "\t" not in raw and "\r" not in raw:
        return raw.strip(" ")  # single spaces only (\x0b and \x0c are has_odd's)
    return " ".join(raw.split())


def link(inner: str, href: str, finish: Callable[[str], str] = finish_inline) -> str:
    """An <a> as the renderer writes it, from its rendered content and raw href."""
    href = href.strip()
    text = finish(inner)
    if not text:
        return ""
    if not href or href.lower().startswith(("javascript:", "data:")):
        return inner
    if CF_EMAIL_PATH in href:
        href = cf_email_href(href, text)
    return f"[{text}]({clean_url(href)})"


def list_start(start: str | None, count: int, reversed_: bool) -> int:
    """The first number of an <ol>: its `start`, else 1 (the item count when reversed)."""
    try:
        return int(str(start or (count if reversed_ else 1)))
    except ValueError:
        return count if reversed_ else 1


def list_number(number: int, style: str) -> str:
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


def list_item(marker: str, body: str) -> str:
    """A list item: the marker, then continuation lines indented under it."""
    if "\n" not in body:
        return marker + body
    indent = " " * len(marker)
    lines = body.split("\n")
    return marker + lines[0] + "".join("\n" + (indent + ln if ln else "") for ln in lines[1:])


def quote(block: str) -> str:
    """A block inside <blockquote>, each line marked with `>`."""
    return "\n".join("> " + line if line else ">" for line in block.split("\n"))


def clean_url(href: str) -> str:
    """Strip tracking parameters from a link target, keeping everything else as written."""
    href = href.strip()
    if ";" in href:
        href = _PATH_SESSION.sub("", href)
    if "/(" in href:
        href = _ASPNET_SESSION.sub("", href)
    if "?" not in href:
        return href
    try:
        parts = urlsplit(href)
    except ValueError:
        return href
    fields = [field for field in parts.query.split("&") if field]
    keys = [unquote_plus(field.split("=", 1)[0]).lower() for field in fields]
    signed = not SIGNATURES.isdisjoint(keys)
    kept = [f for f, key in zip(fields, keys, strict=True) if not _is_noise(key, signed)]
    return urlunsplit(parts._replace(query="&".join(kept)))


def _is_noise(key: str, signed: bool) -> bool:
    """Whether a query parameter (its lower-cased name) is tracking or per-load noise."""
    if key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES):
        return True
    return signed and key in SIGNING_PARAMS


# Cloudflare's email obfuscation re-encodes every address on every load, with a new
# random key: a mailto link becomes a link to /cdn-cgi/l/email-protection#HEX, and an
# address in the text an element with data-cfemail="HEX" showing "[email protected]".
# Cloudflare's own script decodes both in the browser (the link becomes mailto:, the
# element the address as plain text); decoding them here gives what a reader sees,
# the same on every load, where the raw page would change its link targets each time.
CF_EMAIL_PATH = "/cdn-cgi/l/email-protection"
CF_EMAIL_ATTRIBUTE = "data-cfemail"
_CF_EMAIL_LINK = CF_EMAIL_PATH + "#"
_CF_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}){2,}")
_EMAIL_TEXT = re.compile(r"[^\s@\[\]()]+@[^\s@\[\]()]+")


def cf_decode(encoded: str) -> str | None:
    """The address a Cloudflare-encoded hex string stands for, or None if it is not one.

    The public scheme: the first byte is the key, each following byte XOR the key is a
    byte of the UTF-8 address. Anything else (odd length, a non-hex digit, bytes that
    are not UTF-8, a control or invisible character) is not decoded: the page shows
    what it shows, and no input makes extraction fail.
    """
    encoded = encoded.strip()
    if not _CF_HEX.fullmatch(encoded):
        return None
    data = bytes.fromhex(encoded)
    key = data[0]
    try:
        address = bytes(byte ^ key for byte in data[1:]).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "&" in address:
        address = html.unescape(address)  # the decoder reads it as an attribute value
    if not address.strip() or not address.isprintable():
        return None
    return address


def cf_email_href(href: str, text: str) -> str:
    """A link target with Cloudflare's email protection undone: `mailto:` the address.

    The address is in the fragment; a protection link without one (it wraps an encoded
    element, already decoded into `text`) takes the address it shows. Anything that
    does not decode is kept as written.
    """
    at = href.find(_CF_EMAIL_LINK)
    if at != -1:
        address = cf_decode(href[at + len(_CF_EMAIL_LINK) :])
        return href if address is None else "mailto:" + address
    path = href.split("?", 1)[0].split("#", 1)[0]
    if path.endswith(CF_EMAIL_PATH) and _EMAIL_TEXT.fullmatch(text):
        return "mailto:" + text
    return href


def soupsieve_problem(selector: str) -> str | None:
    """Why soupsieve (the BeautifulSoup engine's selectors) cannot read `selector`, or
    None. Imported here, on demand: soupsieve costs ~0.15 s to import and warm up."""
    import soupsieve

    try:
        soupsieve.compile(selector)
    except Exception as exc:  # soupsieve raises several types for bad syntax
        return str(exc).splitlines()[0]
    return None
