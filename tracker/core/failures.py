"""Why a document was not recorded, declared once: the kinds a `FetchError` carries.

The values are data: they are written to run journals, `run --json`, import reports and
the index's `fetch_errors`, and listed in docs/fetching.md (a test keeps the two in step).
"""

from __future__ import annotations

# Reaching the server
TIMEOUT = "timeout"  # the whole answer did not arrive within `timeout`
DNS = "dns"  # the host name did not resolve
CONNECTION = "connection"  # the connection failed or broke
HTTP = "http"  # an HTTP error status (after retries), or a 202 / a 3xx without Location
REDIRECTS = "redirects"  # endless redirects
OFFSITE_REDIRECT = "offsite_redirect"  # a redirect to a host not in `allow_hosts`
BLOCKED_DESTINATION = "blocked_destination"  # a redirect to a non-web scheme or a private address
ROBOTS = "robots"  # robots.txt forbids the page (or answered a 5xx)
# What came back
CONTENT_TYPE = "content_type"  # not a web page (another declared type, or binary data)
TOO_LARGE = "too_large"  # a body over `max_bytes`
EMPTY = "empty"  # an empty body, or a page with no readable text
SELECTOR = "selector"  # none of the `select` selectors matched
ERROR_PAGE = "error_page"  # the site's own error page served as a page
TOO_SHORT = "too_short"  # fewer than `min_chars` characters of text
SHRANK = "shrank"  # the text lost more than `max_shrink` at once (held until confirmed)
BOT_WALL = "bot_wall"  # a bot-protection challenge or block page
LOGIN_WALL = "login_wall"  # a sign-in page, a bare password form, or HTTP 401
# The browser
BROWSER = "browser"  # no browser could be started
BLOCKED = "blocked"  # a page the browser may not open (host or address)
# Imports
UNREADABLE = "unreadable"  # `import` only: a `.gz` file that does not decompress
FUTURE = "future"  # `import` only: a capture dated more than a day ahead of now
# Ours
STORE = "store"  # the store could not be written
ERROR = "error"  # anything unexpected while processing one page
CANCELLED = "cancelled"  # the run was stopped before this fetch began (never recorded)

KINDS = (
    TIMEOUT,
    DNS,
    CONNECTION,
    HTTP,
    REDIRECTS,
    OFFSITE_REDIRECT,
    BLOCKED_DESTINATION,
    ROBOTS,
    CONTENT_TYPE,
    TOO_LARGE,
    EMPTY,
    SELECTOR,
    ERROR_PAGE,
    TOO_SHORT,
    SHRANK,
    BOT_WALL,
    LOGIN_WALL,
    BROWSER,
    BLOCKED,
    UNREADABLE,
    FUTURE,
    STORE,
    ERROR,
    CANCELLED,
)
RECORDED = tuple(k for k in KINDS if k != CANCELLED)  # what a journal or the index may hold
