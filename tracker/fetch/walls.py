"""Bot walls, challenge pages and login walls: responses that are not the document.

A blocked fetch often looks like a success (Cloudflare answers a challenge with
HTTP 200 or 403, DataDome with 403, some walls with 202), and a challenge page
recorded as the terms would read as the whole document being deleted. `detect`
looks at one response (status, headers, body, final URL) and returns a
`FetchError` of kind `bot_wall` or `login_wall` saying what it saw, or None.

The markers are data (the tables below). Real terms pages talk about captchas,
logins and passwords, so a marker only counts where a real document would not
carry it:

- **strong** markers (a response header, a page title, markup only challenge pages
  carry) count on any response;
- **weak** markers (phrases such as "verify you are human", a captcha widget) count
  only on a block status (403, 406, 429, 503) or on a page with little text.

Login walls are a redirect to a login address (a `/login`-like path, or an
`accounts.`/`login.`-like host other than the page's own), a page with little
text around a password field, or HTTP 401.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from tracker.core import failures
from tracker.core.errors import FetchError

# Statuses bot walls answer with; with one of these even a weak marker counts.
BLOCK_STATUSES = frozenset({403, 406, 429, 503})
# A page with at most this many words of visible text is "small": weak markers count.
SMALL_PAGE_WORDS = 150
# A password form is a login wall when the page around it has at most this many words.
LOGIN_PAGE_WORDS = 300


@dataclass(frozen=True)
class Marker:
    """One sign of a bot wall.

    `where` is "header" (`name: value-regex`), "title" (regex on the page title)
    or "body" (a case-insensitive substring of the raw HTML). `page` names what it
    is in messages ("a Cloudflare challenge page"); `strong` markers count on any
    response, weak ones only on a block status or a small page.
    """

    where: str
    pattern: str
    page: str
    strong: bool


_CLOUDFLARE = "a Cloudflare challenge page"
_PERIMETERX = "a PerimeterX (HUMAN) captcha page"
_DATADOME = "a DataDome captcha page"
_INCAPSULA = "an Imperva Incapsula block page"
_AKAMAI = "an Akamai block page"
_GENERIC = "a bot-check page"

BOT_MARKERS: tuple[Marker, ...] = (
    # Page titles (regexes matched against the whole, trimmed title).
    Marker("title", r"just a moment\.*", _CLOUDFLARE, True),
    Marker("title", r"attention required! \| cloudflare", _CLOUDFLARE, True),
    Marker("title", r"please wait\.* \| cloudflare", _CLOUDFLARE, True),
    Marker("title", r"access to this page has been denied\.?", _PERIMETERX, True),
    Marker("title", r"pardon our interruption\.*", _INCAPSULA, True),
    Marker("title", r"access denied", _AKAMAI, True),
    Marker("title", r"ddos-guard", _GENERIC, True),
    Marker("title", r"(are you a robot|robot or human)\??", _GENERIC, True),
    Marker("title", r"(security|human|bot) (check|verification)", _GENERIC, True),
    Marker("title", r".*\bcaptcha\b.*", _GENERIC, True),
    Marker("title", r"verify(ing)? (that )?you are (a )?human.*", _GENERIC, True),
    Marker("title", r"checking your browser.*", _GENERIC, True),
    # Response headers.
    Marker("header", "cf-mitigated: challenge", _CLOUDFLARE, True),
    Marker("header", "x-datadome: protected", _DATADOME, False),
    Marker("header", "server: AkamaiGHost", _AKAMAI, False),
    # Markup only challenge and block pages carry. Cloudflare injects
    # /cdn-cgi/challenge-platform/scripts/jsd/ into ordinary pages: not a marker.
    Marker("body", "cf_chl_opt", _CLOUDFLARE, True),
    Marker("body", "__cf_chl_", _CLOUDFLARE, True),
    Marker("body", "/cdn-cgi/challenge-platform/h/", _CLOUDFLARE, True),
    Marker("body", 'id="challenge-form"', _CLOUDFLARE, True),
    Marker("body", "cf-browser-verification", _CLOUDFLARE, True),
    Marker("body", 'id="px-captcha"', _PERIMETERX, True),
    Marker("body", "captcha-delivery.com", _DATADOME, True),
    Marker("body", "_Incapsula_Resource", _INCAPSULA, True),
    Marker("body", "Request unsuccessful. Incapsula incident ID", _INCAPSULA, True),
    Marker("body", "errors.edgesuite.net", _AKAMAI, True),
    Marker("body", "/_sec/cp_challenge/", _AKAMAI, True),
    # Weak: phrases and widgets a real page may mention or embed.
    Marker("body", "cf-chl", _CLOUDFLARE, False),
    Marker("body", "cf-turnstile", _CLOUDFLARE, False),
    Marker("body", "px-captcha", _PERIMETERX, False),
    Marker("body", "datadome", _DATADOME, False),
    Marker("body", "Incapsula", _INCAPSULA, False),
    Marker("body", "Enable JavaScript and cookies to continue", _GENERIC, False),
    Marker("body", "verify you are human", _GENERIC, False),
    Marker("body", "verifying you are human", _GENERIC, False),
    Marker("body", "checking if the site connection is secure", _GENERIC, False),
    Marker("body", "review the security of your connection", _GENERIC, False),
    Marker("body", "unusual traffic", _GENERIC, False),
    Marker("body", "are you a robot", _GENERIC, False),
    Marker("body", "you have been blocked", _GENERIC, False),
    Marker("body", "press & hold", _GENERIC, False),
    Marker("body", "g-recaptcha", _GENERIC, False),
    Marker("body", "h-captcha", _GENERIC, False),
    Marker("body", "captcha", _GENERIC, False),
    Marker("body", "access denied", _GENERIC, False),
    Marker("body", "please enable cookies", _GENERIC, False),
)

# Path segments of a login page, and host prefixes of an identity provider.
LOGIN_SEGMENTS = frozenset(
    {"login", "log-in", "logon", "signin", "sign-in", "sign_in", "auth", "authorize", "sso"}
)
LOGIN_HOST_PREFIXES = ("accounts.", "account.", "login.", "auth.", "signin.", "sso.")

_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_INVISIBLE = re.compile(
    r"<(script|style|noscript|template|svg)\b[^>]*>.*?</\1\s*>|<!--.*?-->",
    re.IGNORECASE | re.DOTALL,
)
_TAG = re.compile(r"<[^>]*>")
_PASSWORD = re.compile(r"<input\b[^>]*\btype\s*=\s*[\"']?password\b", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def detect(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    final_url: str,
    url: str | None = None,
    *,
    archived: bool = False,
) -> FetchError | None:
    """A `bot_wall` or `login_wall` error when this response is one, else None.

    `url` is the address asked for: a login-like final URL only counts when the
    request was redirected there (a tracked page may well live under /auth/).
    `archived`: a saved page being imported, judged as a 200 it has no status of its
    own, so messages say "an imported capture" rather than "HTTP 200".
    """
    html = body.decode("utf-8", "replace")
    lowered = html.lower()
    title = _title(html)
    words: int | None = None

    def word_count() -> int:
        nonlocal words
        if words is None:
            words = visible_words(html)
        return words

    named = {k.lower(): v for k, v in headers.items()}
    for marker in BOT_MARKERS:
        seen = _seen(marker, named, lowered, title)
        if seen is None:
            continue
        if marker.strong or status in BLOCK_STATUSES or word_count() <= SMALL_PAGE_WORDS:
            return FetchError(
                failures.BOT_WALL,
                _wall_message(status, marker.page, seen, archived),
                status=status,
            )

    if status == 401:
        return FetchError(failures.LOGIN_WALL, "HTTP 401: the page asks for a login", status=status)
    if url is not None:
        reason = login_redirect(url, final_url)
        if reason:
            return FetchError(failures.LOGIN_WALL, f"{reason} ({final_url})", status=status)
    elif _login_like_path(final_url):
        return FetchError(failures.LOGIN_WALL, f"a login page ({final_url})", status=status)
    if _PASSWORD.search(html) and word_count() <= LOGIN_PAGE_WORDS:
        shown = f" ('{title}')" if title else ""
        return FetchError(
            failures.LOGIN_WALL,
            f"a login form (a password field){shown} instead of the document"
            + (" (an imported capture)" if archived else f" (HTTP {status})"),
            status=status,
        )
    return None


def visible_words(html: str) -> int:
    """About how many words a reader sees: tags, scripts, styles and comments dropped."""
    text = _TAG.sub(" ", _INVISIBLE.sub(" ", html))
    return len(text.split())


def _seen(marker: Marker, headers: dict[str, str], lowered: str, title: str) -> str | None:
    """What the message quotes when `marker` is present, else None."""
    if marker.where == "header":
        name, _, value = marker.pattern.partition(": ")
        got = headers.get(name)
        if got is not None and value.lower() in got.lower():
            return f"{name}: {got.strip()}"
        return None
    if marker.where == "title":
        if title and re.fullmatch(marker.pattern, title, re.IGNORECASE):
            return title
        return None
    return marker.pattern if marker.pattern.lower() in lowered else None


def _wall_message(status: int, page: str, seen: str, archived: bool = False) -> str:
    if archived:
        return f"{page} ('{seen}') instead of the document (an imported capture)"
    if status in BLOCK_STATUSES or status >= 400:
        return f"HTTP {status} with {page} ('{seen}')"
    return f"{page} ('{seen}') instead of the document (HTTP {status})"


def _title(html: str) -> str:
    match = _TITLE.search(html, 0, 200_000)
    if not match:
        return ""
    text = _SPACE.sub(" ", _TAG.sub("", match.group(1))).strip()
    return text.replace("&amp;", "&").replace("&#39;", "'").replace("&quot;", '"')[:200]


def _login_like_path(address: str) -> bool:
    segments = [s.lower() for s in urlsplit(address).path.split("/") if s]
    return any(s in LOGIN_SEGMENTS for s in segments)


def login_redirect(url: str, final_url: str) -> str | None:
    """Why a redirect from `url` to `final_url` ends on a login page, or None."""
    asked, landed = urlsplit(url), urlsplit(final_url)
    asked_host, host = (asked.hostname or "").lower(), (landed.hostname or "").lower()
    if host != asked_host and host.startswith(LOGIN_HOST_PREFIXES):
        return "redirected to a sign-in host"
    if landed.path != asked.path and _login_like_path(final_url):
        return "redirected to a login page"
    return None


# --- error pages served as pages ------------------------------------------------------------

# What a site's own error page says when it answers 200 (a soft 404, a crashed page
# render, "come back later"). Real terms mention errors too ("if the API is temporarily
# unavailable…"), so a phrase only counts where an error page puts it: leading a text as
# short as an error page, at most `ERROR_PAGE_WORDS` words, within its first
# `ERROR_LEAD_WORDS` words.
ERROR_PAGE_WORDS = 30
ERROR_LEAD_WORDS = 6
ERROR_PHRASES: tuple[str, ...] = (
    "this page isn't available",
    "this page is not available",
    "this page is unavailable",
    "this content isn't available",
    "page not found",
    "page cannot be found",
    "page could not be found",
    "page you requested could not be found",
    "page you are looking for",
    "page you're looking for",
    "an unexpected error has occurred",
    "an unexpected error occurred",
    "something went wrong",
    "try reloading the page",
    "try refreshing the page",
    "please try again later",
    "come back later",
    "temporarily unavailable",
    "service unavailable",
    "internal server error",
    "bad gateway",
    "gateway timeout",
    "404 not found",
    "error 404",
    "error 500",
    "error 503",
)
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'"})
_MARKUP = re.compile(r"[#*_`>\[\]()|]+")


def error_page(text: str) -> FetchError | None:
    """An `error_page` error when an extracted text is a site's error page, else None.

    A page that answers 200 with "This page isn't available. An unexpected error has
    occurred" is no version of the terms: recorded as one, it reads as the whole
    document deleted (and the next good fetch as it coming back). Only a short text
    that opens with the phrase counts, so a policy that mentions one is never taken
    for an error page.
    """
    plain = " ".join(_MARKUP.sub(" ", text).split())
    words = plain.split()
    if not words or len(words) > ERROR_PAGE_WORDS:
        return None
    lowered = plain.lower().translate(_APOSTROPHES)
    lead = len(" ".join(words[:ERROR_LEAD_WORDS]))
    for phrase in ERROR_PHRASES:
        at = lowered.find(phrase)
        if 0 <= at < lead:
            quoted = plain if len(plain) <= 120 else plain[:117] + "…"
            return FetchError(
                failures.ERROR_PAGE, f"an error page ('{quoted}') instead of the document"
            )
    return None
