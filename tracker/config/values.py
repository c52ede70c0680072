"""Checks on single values of `tracker.toml`: document ids, URLs, email addresses, CSS
selectors, [noise] tables, and the plain types (strings, booleans, shares, tables).

`settings` reads the file and builds the `Config` with these; each error names the
file, the document and the key, as there.
"""

from __future__ import annotations

import functools
import re
from email.utils import getaddresses
from typing import Any
from urllib.parse import urlsplit

from tracker.core.bounds import BOUNDS
from tracker.core.errors import ConfigError, check_keys
from tracker.core.models import NoiseFilters
from tracker.extract.rules import soupsieve_problem

# Slugs become folder names under the store, so keep them to a safe alphabet.
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")
# ...and to a length every file system takes: an id is a path under the store and the
# site (`site/documents/<id>/changes/<time>.html`), and a name past 255 bytes is ENAMETOOLONG.
MAX_ID_CHARS = 128
MAX_ID_PART_CHARS = 64
MAX_URL_CHARS = 8192
REPLACE_KEYS = {"pattern", "with"}


def document_id_problem(doc_id: str) -> str | None:
    """What is wrong with a document id, or None. An id names a folder in the store and
    the site: `../../x`, `.`, `_runs` or an absolute path would write outside its place
    or over the store's own records, and a long one past what file systems allow."""
    if not ID_PATTERN.match(doc_id) or ".." in doc_id:
        return (
            "must be a lowercase slug such as 'azure-openai/code-of-conduct'"
            " (letters, digits, '.', '-', '_', parts separated by '/')"
        )
    longest = max(len(part) for part in doc_id.split("/"))
    if len(doc_id) > MAX_ID_CHARS or longest > MAX_ID_PART_CHARS:
        return (
            f"is too long ({len(doc_id)} characters, longest part {longest}):"
            f" at most {MAX_ID_CHARS}, and {MAX_ID_PART_CHARS} between two '/'"
        )
    return None


def _address(value: Any, where: str) -> str:
    """An address as a header takes it ('Name <a@b.org>' or 'a@b.org'), checked loosely."""
    text = _string(value, where).strip()
    found = getaddresses([text])
    address = found[0][1] if len(found) == 1 else ""
    local, _, domain = address.rpartition("@")
    if not local or not domain or any(c.isspace() for c in address) or "\n" in text:
        raise ConfigError(
            f"{where} must be an email address such as 'reader@example.org', got {value!r}"
        )
    return text


@functools.lru_cache(maxsize=256)
def selector_problem(selector: str) -> str | None:
    """Why a CSS selector cannot be used, or None.

    Extraction runs a selector on lxml through cssselect when cssselect can translate
    it, else through soupsieve on BeautifulSoup, so either one accepting it is enough.
    cssselect is asked first: soupsieve costs ~0.15 s to import and warm up, and a
    run's start-up counts when it is started by cron every few minutes.
    """
    from cssselect import HTMLTranslator, SelectorError
    from cssselect.xpath import ExpressionError

    try:
        HTMLTranslator().css_to_xpath(selector)
        return None
    except (SelectorError, ExpressionError):
        return soupsieve_problem(selector)


def nested_in(doc_id: str, ids: set[str]) -> str | None:
    """The id among `ids` that `doc_id` lies inside or holds (`a` and `a/b`), or None:
    one would be a folder of the other in the store and the site."""
    parts = doc_id.split("/")
    for depth in range(1, len(parts)):
        if (outer := "/".join(parts[:depth])) in ids:
            return outer
    prefix = doc_id + "/"
    return next((other for other in sorted(ids) if other.startswith(prefix)), None)


def _refuse_nested_ids(ids: set[str], name: str) -> None:
    """Refuse `a` beside `a/b`: each id is a folder of the store and of the site, so one
    would live inside the other's folder (`a/b/` among `a/`'s captures, `a/changes` in
    `a`'s change pages). Checked by prefix, so linear in the number of documents."""
    for doc_id in sorted(ids):
        parts = doc_id.split("/")
        for depth in range(1, len(parts)):
            outer = "/".join(parts[:depth])
            if outer in ids:
                raise ConfigError(
                    f"{name}: document '{doc_id}': key 'id' lies inside document '{outer}'"
                    f" (each id is a folder of the store and the site); rename one, such as"
                    f" '{outer}' to '{outer}/main'"
                )


def _http_url(value: Any, where: str, example: str) -> str:
    """An http(s) URL with a host, parsed as strictly as the fetcher will: urllib raises
    ValueError on `http://[::1` or a port of 99999, which reached the user as a traceback."""
    url = _string(value, where)
    problem = ""
    if len(url) > MAX_URL_CHARS:
        problem = f"longer than {MAX_URL_CHARS} characters"
    elif any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        problem = "it contains spaces or control characters"
    else:
        try:
            parts = urlsplit(url)
            port = parts.port  # reading it is the check: a port out of range raises
        except ValueError as exc:
            problem = str(exc)
        else:
            if port == 0:
                problem = "port 0 cannot be connected to"
            elif parts.scheme not in ("http", "https"):
                problem = "the scheme is not http or https"
            elif not parts.hostname:
                problem = "it has no host"
    if problem:
        raise ConfigError(
            f"{where} must be an http(s) URL with a host such as {example!r} ({problem}),"
            f" got {url[:200]!r}"
        )
    return url


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value


def _share(value: Any, key: str, where: str) -> float:
    if not BOUNDS[key].accepts(value):
        raise ConfigError(f"{where} must be a share between 0 and 1 (0.5 is half), got {value!r}")
    return float(value)


def parse_noise(table: dict[str, Any], where: str) -> NoiseFilters:
    """`replace`, `remove` and `drop_params` of a [noise] table (keys already checked)."""
    replace = table.get("replace", [])
    if not isinstance(replace, list):
        raise ConfigError(
            f"{where}: 'replace' must be a list of tables such as"
            ' { pattern = "Updated \\\\d+ days ago", with = "" }'
        )
    pairs: list[tuple[str, str]] = []
    for position, item in enumerate(replace, start=1):
        at = f"{where}: 'replace' entry #{position}"
        if not isinstance(item, dict):
            raise ConfigError(f"{at} must be a table such as {{ pattern = '...', with = '' }}")
        check_keys(item, REPLACE_KEYS, at)
        if "pattern" not in item:
            raise ConfigError(f"{at}: missing required key 'pattern'")
        pattern = _string(item["pattern"], f"{at}: key 'pattern'")
        replacement = _string(item.get("with", ""), f"{at}: key 'with'")
        try:
            compiled = re.compile(pattern, re.MULTILINE)
        except re.error as exc:
            raise ConfigError(f"{at}: invalid regular expression {pattern!r}: {exc}") from None
        if not pattern or compiled.fullmatch(""):
            raise ConfigError(f"{at}: pattern {pattern!r} matches the empty text; make it stricter")
        try:  # the replacement's group references (\1, \g<name>) must exist
            probe = re.compile(f"(?:{pattern})|", re.MULTILINE).match("")
        except re.error:
            probe = None  # global inline flags such as (?i) cannot be wrapped; skip the probe
        if probe is not None:
            try:
                probe.expand(replacement)
            except (re.error, IndexError) as exc:
                raise ConfigError(f"{at}: invalid replacement {replacement!r}: {exc}") from None
        pairs.append((pattern, replacement))
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("remove", "drop_params"):
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where}: '{key}' must be a list of non-empty strings")
        lists[key] = tuple(value)
    for selector in lists["remove"]:
        if problem := selector_problem(selector):
            raise ConfigError(f"{where}: 'remove': invalid CSS selector {selector!r}: {problem}")
    for glob in lists["drop_params"]:
        if any(c in glob for c in "&=#?/ "):
            raise ConfigError(
                f"{where}: 'drop_params': {glob!r} is not a parameter name or glob"
                " such as 'sessionid' or 'utm_*'"
            )
    return NoiseFilters(tuple(pairs), lists["remove"], lists["drop_params"])


def _table(data: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: '{key}' must be a table ([{key}])")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value
