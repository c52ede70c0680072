"""Load and validate `tracker.toml` into a `Config` of `Source` objects.

Every error names the file, the document and the key, because the person reading
it is usually a cron mail recipient who needs to find the line without a debugger.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from tracker.analysis.topics import Topic, default_topics, merge_topics, parse_topics
from tracker.config import CONFIG_NAME
from tracker.config.cron import ScheduleSettings, parse_cron
from tracker.config.values import (
    MAX_ID_PART_CHARS,
    _address,
    _bool,
    _http_url,
    _refuse_nested_ids,
    _share,
    _string,
    _table,
    document_id_problem,
    parse_noise,
    selector_problem,
)
from tracker.core.bounds import BOUNDS, check_number
from tracker.core.errors import ConfigError, check_keys
from tracker.core.models import NoiseFilters, Source
from tracker.core.times import parse_duration

PROJECT_URL = "https://github.com/tos-tracker/tos-tracker"

DEFAULT_FLIP_WINDOW = 5
SMTP_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
# When `tos-tracker schedule` sends each digest unless it says otherwise (its own cron).
DIGEST_SCHEDULES = {"daily": "0 7 * * *", "weekly": "0 7 * * 1"}
DIGEST_PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
# Digest ids name a ledger file (`snapshots/_digests/<id>.json`): one flat slug.
DIGEST_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class FetchSettings:
    """Politeness and patience: how long to wait, how often to retry, how many at once."""

    timeout: float = 30.0
    retries: int = 3
    backoff: float = 1.0
    max_retry_after: float = 120.0
    workers: int = 4
    per_host: int = 1
    user_agent: str | None = None
    max_bytes: int = 20 * 1024 * 1024
    robots: bool = True  # honour robots.txt (a document may say robots = false)
    host_delay: float = 1.0  # seconds between two requests to one host
    min_chars: int = 100  # a text shorter than this is not the document
    max_shrink: float = 0.5  # a text that loses more than this share at once is suspect...
    confirm_shrink: int = 3  # ...until this many fetches in a row say the same
    browser_path: str | None = None  # Chromium to launch; default: found on PATH
    browser_allow_hosts: tuple[str, ...] = ()  # hosts the browser may load from; empty: all


@dataclass(frozen=True)
class SiteSettings:
    """Where `site build` writes, and the public address links in feeds and mail point to."""

    out: Path | None = None
    site_url: str | None = None
    title: str = "tos-tracker"
    build_after_run: bool = False


@dataclass(frozen=True)
class SmtpSettings:
    """The mail server digests go through; the password comes only from the environment."""

    host: str
    port: int
    security: str  # "starttls", "tls" or "none"
    sender: str
    username: str | None = None
    ca_file: Path | None = None  # trust this CA (a private one) instead of the system's
    timeout: float = 30.0
    # A password is only sent over TLS or STARTTLS unless the configuration says this.
    allow_plaintext_password: bool = False


@dataclass(frozen=True)
class DigestSettings:
    """One email digest: who gets it and which changes it carries."""

    id: str
    to: tuple[str, ...]
    period: str = "daily"  # "daily" or "weekly": the first run's window and the subject
    topics: tuple[str, ...] = ()  # empty: every change; else only changes flagged with these
    documents: tuple[str, ...] = ()  # empty: every document
    cosmetic: bool = False
    schedule: str = ""  # cron for `tos-tracker schedule`; empty: by period (07:00, Mondays)

    @property
    def cron(self) -> str:
        return self.schedule or DIGEST_SCHEDULES[self.period]

    @property
    def window(self) -> timedelta:
        return DIGEST_PERIODS[self.period]


@dataclass(frozen=True)
class Config:
    """A validated configuration; paths are absolute."""

    path: Path | None
    sources: tuple[Source, ...]
    store_path: Path
    index_path: Path
    fetch: FetchSettings = field(default_factory=FetchSettings)
    templates: Path | None = None
    topics: tuple[Topic, ...] = field(default_factory=default_topics)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    max_failing: timedelta = timedelta(hours=24)
    max_stale: timedelta = timedelta(days=2)  # no check for this long: cron has stopped?
    site: SiteSettings = field(default_factory=SiteSettings)
    smtp: SmtpSettings | None = None
    digests: tuple[DigestSettings, ...] = ()
    # A new text equal to one of this many latest versions (but not the latest) is a flip.
    flip_window: int = DEFAULT_FLIP_WINDOW

    def source(self, document_id: str) -> Source | None:
        """The configured document with this id, or None: a dict lookup, since commands
        such as `documents` and `site build` ask once per document of tens of thousands."""
        return self._by_id.get(document_id)

    @functools.cached_property
    def _by_id(self) -> dict[str, Source]:
        return {s.id: s for s in self.sources}


# --- the keys each table takes ------------------------------------------------------------
# A table that fills one settings dataclass takes exactly that dataclass's fields, so a
# field added there is a key here. The tables that do not map 1:1 are listed by hand:
# the top level (table names), [store] (`path`, `index` → `Config.store_path`,
# `index_path`), [report] (`templates`), [analysis] (`default_topics` → `Config.topics`),
# [status] (two `Config` fields), a `replace` item (`pattern`, `with`), and [noise], which
# adds the global `flip_window` (`Config.flip_window`) to a document's noise keys.


def fields_of(settings: type) -> frozenset[str]:
    """The keys a table that fills the dataclass `settings` takes: its field names."""
    return frozenset(f.name for f in dataclasses.fields(settings))


DOCUMENT_KEYS = fields_of(Source)
REQUIRED_DOCUMENT_KEYS = tuple(
    f.name
    for f in dataclasses.fields(Source)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
)  # id, service, title, url: in the order errors name them
DOCUMENT_NOISE_KEYS = fields_of(NoiseFilters)
NOISE_KEYS = DOCUMENT_NOISE_KEYS | {"flip_window"}  # flip_window is global only
FETCH_KEYS = fields_of(FetchSettings)
SITE_KEYS = fields_of(SiteSettings)
SMTP_KEYS = fields_of(SmtpSettings)  # the password comes from the environment only
DIGEST_KEYS = fields_of(DigestSettings)
SCHEDULE_KEYS = fields_of(ScheduleSettings)
TOP_KEYS = frozenset(
    {
        "store",
        "fetch",
        "report",
        "documents",
        "topics",
        "analysis",
        "schedule",
        "status",
        "site",
        "smtp",
        "digests",
        "noise",
    }
)
STORE_KEYS = frozenset({"path", "index"})
REPORT_KEYS = frozenset({"templates"})
ANALYSIS_KEYS = frozenset({"default_topics"})
STATUS_KEYS = frozenset({"max_failing", "max_stale"})
REPLACE_KEYS = frozenset({"pattern", "with"})


def default_config_text() -> str:
    """The configuration shipped with the package: the real documents we track."""
    return resources.files("tracker").joinpath("default.toml").read_text(encoding="utf-8")


def load_config(path: Path | None = None, *, base: Path | None = None) -> Config:
    """Load `path`, else `tracker.toml` in `base` (the cwd), else the packaged default.

    Relative store paths resolve against the config file's folder, so a cron job
    that names `--config /srv/tracker/tracker.toml` finds its store next to it.
    """
    base = (base or Path.cwd()).resolve()
    if path is None:
        candidate = base / CONFIG_NAME
        if candidate.exists():
            path = candidate
    if path is None:
        return parse_config(default_config_text(), name="(built-in default)", root=base)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from None
    config = parse_config(text, name=str(path), root=path.resolve().parent)
    return dataclasses.replace(config, path=path.resolve())


def parse_config(text: str, *, name: str, root: Path) -> Config:
    """Validate TOML text; `name` is how errors refer to it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}") from None
    check_keys(data, TOP_KEYS, f"{name}: top level")

    store = _table(data, "store", name)
    check_keys(store, STORE_KEYS, f"{name}: [store]")
    store_path = root / _string(store.get("path", "snapshots"), f"{name}: [store] key 'path'")
    index_path = root / _string(store.get("index", "tracker.db"), f"{name}: [store] key 'index'")

    fetch = _parse_fetch(_table(data, "fetch", name), name, root)

    report = _table(data, "report", name)
    check_keys(report, REPORT_KEYS, f"{name}: [report]")
    templates = None
    if "templates" in report:
        templates = root / _string(report["templates"], f"{name}: [report] key 'templates'")

    analysis = _table(data, "analysis", name)
    check_keys(analysis, ANALYSIS_KEYS, f"{name}: [analysis]")
    use_defaults = analysis.get("default_topics", True)
    if not isinstance(use_defaults, bool):
        raise ConfigError(f"{name}: [analysis] key 'default_topics' must be true or false")
    extra = data.get("topics", [])
    if not isinstance(extra, list):
        raise ConfigError(f"{name}: 'topics' must be an array of tables ([[topics]])")
    topics = merge_topics(default_topics() if use_defaults else (), parse_topics(extra, name))

    schedule = _parse_schedule(_table(data, "schedule", name), name)
    status = _table(data, "status", name)
    check_keys(status, STATUS_KEYS, f"{name}: [status]")
    max_failing = parse_duration(
        status.get("max_failing", "24h"), f"{name}: [status] key 'max_failing'"
    )
    max_stale = parse_duration(status.get("max_stale", "2d"), f"{name}: [status] key 'max_stale'")

    site = _parse_site(_table(data, "site", name), name, root)
    noise_table = _table(data, "noise", name)
    check_keys(noise_table, NOISE_KEYS, f"{name}: [noise]")
    global_noise = parse_noise(noise_table, f"{name}: [noise]")
    flip_window = check_number(
        noise_table.get("flip_window", DEFAULT_FLIP_WINDOW),
        "noise.flip_window",
        f"{name}: [noise] key 'flip_window'",
    )

    documents = data.get("documents", [])
    if not isinstance(documents, list):
        raise ConfigError(f"{name}: 'documents' must be an array of tables ([[documents]])")
    sources: list[Source] = []
    seen: set[str] = set()
    for position, entry in enumerate(documents, start=1):
        source = _parse_document(entry, position, name)
        if source.id in seen:
            raise ConfigError(
                f"{name}: document '{source.id}': key 'id' duplicates an earlier document"
            )
        seen.add(source.id)
        sources.append(dataclasses.replace(source, noise=global_noise.plus(source.noise)))
    _refuse_nested_ids(seen, name)
    smtp = _parse_smtp(data["smtp"], name, root) if "smtp" in data else None
    digests = _parse_digests(data.get("digests", []), name, topics, sources, schedule.timezone)
    return Config(
        path=None,
        sources=tuple(sources),
        store_path=store_path,
        index_path=index_path,
        fetch=fetch,
        templates=templates,
        topics=topics,
        schedule=schedule,
        max_failing=max_failing,
        max_stale=max_stale,
        site=site,
        smtp=smtp,
        digests=digests,
        flip_window=flip_window,
    )


def _parse_site(table: dict[str, Any], name: str, root: Path) -> SiteSettings:
    check_keys(table, SITE_KEYS, f"{name}: [site]")
    out = root / _string(table["out"], f"{name}: [site] key 'out'") if "out" in table else None
    site_url = None
    if "site_url" in table:
        site_url = _string(table["site_url"], f"{name}: [site] key 'site_url'").strip()
        site_url = _http_url(
            site_url, f"{name}: [site] key 'site_url'", "https://example.org/terms/"
        )
        site_url = site_url.rstrip("/") + "/"
    title = _string(table.get("title", "tos-tracker"), f"{name}: [site] key 'title'")
    after_run = table.get("build_after_run", False)
    if not isinstance(after_run, bool):
        raise ConfigError(f"{name}: [site] key 'build_after_run' must be true or false")
    return SiteSettings(
        out=out,
        site_url=site_url,
        title=title.strip() or "tos-tracker",
        build_after_run=after_run,
    )


def _parse_smtp(table: Any, name: str, root: Path) -> SmtpSettings:
    if not isinstance(table, dict):
        raise ConfigError(f"{name}: 'smtp' must be a table ([smtp])")
    where = f"{name}: [smtp]"
    check_keys(table, SMTP_KEYS, where)
    for key in ("host", "sender"):
        if key not in table:
            raise ConfigError(f"{where}: missing required key '{key}'")
    host = _string(table["host"], f"{where} key 'host'").strip()
    if not host or " " in host:
        raise ConfigError(f"{where} key 'host' must be a host name such as 'smtp.example.org'")
    security = _string(table.get("security", "starttls"), f"{where} key 'security'")
    if security not in SMTP_DEFAULT_PORTS:
        raise ConfigError(
            f"{where} key 'security' must be one of {', '.join(SMTP_DEFAULT_PORTS)},"
            f" got {security!r}"
        )
    port = table.get("port", SMTP_DEFAULT_PORTS[security])
    if not BOUNDS["smtp.port"].accepts(port):
        raise ConfigError(f"{where} key 'port' must be a port number (1-65535), got {port!r}")
    sender = _address(table["sender"], f"{where} key 'sender'")
    username = None
    if "username" in table:
        username = _string(table["username"], f"{where} key 'username'").strip() or None
    ca_file = None
    if "ca_file" in table:
        ca_file = root / _string(table["ca_file"], f"{where} key 'ca_file'")
        if not ca_file.is_file():
            raise ConfigError(f"{where} key 'ca_file': no such file {str(ca_file)!r}")
    timeout = check_number(table.get("timeout", 30), "smtp.timeout", f"{where} key 'timeout'")
    plaintext = _bool(
        table.get("allow_plaintext_password", False),
        f"{where} key 'allow_plaintext_password'",
    )
    if username and security == "none" and not plaintext:
        raise ConfigError(
            f"{where} key 'username' is set with security = \"none\": the password would cross"
            ' the network unencrypted; use security = "starttls" or "tls", or set'
            " allow_plaintext_password = true (a server on this machine or a trusted network)"
        )
    return SmtpSettings(host, port, security, sender, username, ca_file, timeout, plaintext)


def _parse_digests(
    entries: Any,
    name: str,
    topics: tuple[Topic, ...],
    sources: list[Source],
    timezone: str = "UTC",
) -> tuple[DigestSettings, ...]:
    if not isinstance(entries, list):
        raise ConfigError(f"{name}: 'digests' must be an array of tables ([[digests]])")
    known_topics = [t.id for t in topics]
    known_documents = [s.id for s in sources]
    digests: list[DigestSettings] = []
    for position, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{name}: digests entry #{position} must be a table")
        label = f"'{entry['id']}'" if isinstance(entry.get("id"), str) else f"#{position}"
        where = f"{name}: [[digests]] {label}"
        check_keys(entry, DIGEST_KEYS, where)
        for key in ("id", "to"):
            if key not in entry:
                raise ConfigError(f"{where}: missing required key '{key}'")
        digest_id = _string(entry["id"], f"{where}: key 'id'")
        if not DIGEST_ID.match(digest_id) or len(digest_id) > MAX_ID_PART_CHARS:
            raise ConfigError(
                f"{where}: key 'id' must be a lowercase slug such as 'daily'"
                f" (letters, digits, '-', '_'; at most {MAX_ID_PART_CHARS})"
            )
        if any(d.id == digest_id for d in digests):
            raise ConfigError(f"{where}: key 'id' duplicates an earlier digest")
        to = entry["to"]
        if isinstance(to, str):
            to = [to]
        if not isinstance(to, list) or not to:
            raise ConfigError(f"{where}: key 'to' must be a non-empty list of addresses")
        recipients = tuple(_address(a, f"{where}: key 'to'") for a in to)
        period = _string(entry.get("period", "daily"), f"{where}: key 'period'")
        if period not in DIGEST_PERIODS:
            raise ConfigError(
                f"{where}: key 'period' must be one of {', '.join(DIGEST_PERIODS)}, got {period!r}"
            )
        chosen: dict[str, tuple[str, ...]] = {}
        for key, known in (("topics", known_topics), ("documents", known_documents)):
            value = entry.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: key '{key}' must be a list of strings")
            for item in value:
                if item not in known:
                    raise ConfigError(
                        f"{where}: key '{key}': unknown {key[:-1]} {item!r}"
                        f" (known: {', '.join(known) or 'none'})"
                    )
            chosen[key] = tuple(dict.fromkeys(value))
        cosmetic = entry.get("cosmetic", False)
        if not isinstance(cosmetic, bool):
            raise ConfigError(f"{where}: key 'cosmetic' must be true or false")
        cron = _string(entry.get("schedule", ""), f"{where}: key 'schedule'").strip()
        if cron:
            parse_cron(cron, timezone, where=f"{where}: key 'schedule'")
        digests.append(
            DigestSettings(
                digest_id,
                recipients,
                period,
                chosen["topics"],
                chosen["documents"],
                cosmetic,
                cron,
            )
        )
    return tuple(digests)


def _parse_schedule(table: dict[str, Any], name: str) -> ScheduleSettings:
    check_keys(table, SCHEDULE_KEYS, f"{name}: [schedule]")
    if not table:
        return ScheduleSettings()
    values = {k: _string(v, f"{name}: [schedule] key '{k}'") for k, v in table.items()}
    settings = ScheduleSettings(**{**ScheduleSettings().__dict__, **values})
    for key in ("run", "report", "site"):
        expression = getattr(settings, key)
        if expression.strip():
            parse_cron(expression, settings.timezone, where=f"{name}: [schedule] key '{key}'")
    return settings


def _parse_fetch(table: dict[str, Any], name: str, root: Path | None = None) -> FetchSettings:
    check_keys(table, FETCH_KEYS, f"{name}: [fetch]")
    defaults = FetchSettings()
    values: dict[str, Any] = {}
    numbers = [k.removeprefix("fetch.") for k in BOUNDS if k.startswith("fetch.")]
    for key in numbers:
        if key == "max_shrink" and key in table:
            values[key] = _share(table[key], "fetch.max_shrink", f"{name}: [fetch] key '{key}'")
        elif key in table:
            values[key] = check_number(table[key], f"fetch.{key}", f"{name}: [fetch] key '{key}'")
    if "robots" in table:
        values["robots"] = _bool(table["robots"], f"{name}: [fetch] key 'robots'")
    if "user_agent" in table:
        values["user_agent"] = _string(table["user_agent"], f"{name}: [fetch] key 'user_agent'")
    if "browser_path" in table:
        browser = _string(table["browser_path"], f"{name}: [fetch] key 'browser_path'").strip()
        if not browser:
            raise ConfigError(f"{name}: [fetch] key 'browser_path' must not be empty")
        # A bare name ("chromium") is looked up on PATH; a relative path is the config's.
        if "/" in browser and root is not None:
            browser = str(root / browser)
        values["browser_path"] = browser
    if "browser_allow_hosts" in table:
        hosts = table["browser_allow_hosts"]
        if not isinstance(hosts, list) or not all(
            isinstance(h, str) and h.strip() and "/" not in h for h in hosts
        ):
            raise ConfigError(
                f"{name}: [fetch] key 'browser_allow_hosts' must be a list of host names"
                f' such as ["127.0.0.1"], got {hosts!r}'
            )
        values["browser_allow_hosts"] = tuple(h.strip().lower() for h in hosts)
    return FetchSettings(**{**defaults.__dict__, **values})


def _parse_document(entry: Any, position: int, name: str) -> Source:
    if not isinstance(entry, dict):
        raise ConfigError(f"{name}: documents entry #{position} must be a table")
    label = f"document #{position}"
    if isinstance(entry.get("id"), str):  # shortened: a 10,000-character id is one line too
        label = f"document '{entry['id'][:80]}{'…' if len(entry['id']) > 80 else ''}'"
    where = f"{name}: {label}"
    check_keys(entry, DOCUMENT_KEYS, where)
    for key in REQUIRED_DOCUMENT_KEYS:
        if key not in entry:
            raise ConfigError(f"{where}: missing required key '{key}'")
        _string(entry[key], f"{where}: key '{key}'")
        if not entry[key].strip():
            raise ConfigError(f"{where}: key '{key}' must not be empty")
    doc_id = entry["id"]
    problem = document_id_problem(doc_id)
    if problem is not None:
        raise ConfigError(f"{where}: key 'id' {problem}")
    url = _http_url(entry["url"], f"{where}: key 'url'", "https://example.org/terms")
    selectors: dict[str, tuple[str, ...]] = {}
    for key in ("select", "remove"):
        value = entry.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: key '{key}' must be a list of CSS selectors")
        for selector in value:
            if problem := selector_problem(selector):
                raise ConfigError(
                    f"{where}: key '{key}': invalid CSS selector {selector!r}: {problem}"
                )
        selectors[key] = tuple(value)
    robots = _bool(entry["robots"], f"{where}: key 'robots'") if "robots" in entry else None
    hosts = entry.get("allow_hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h.strip() for h in hosts):
        raise ConfigError(f"{where}: key 'allow_hosts' must be a list of host names")
    min_chars = entry.get("min_chars")
    if min_chars is not None:
        min_chars = check_number(min_chars, "document.min_chars", f"{where}: key 'min_chars'")
    max_shrink = entry.get("max_shrink")
    if max_shrink is not None:
        max_shrink = _share(max_shrink, "document.max_shrink", f"{where}: key 'max_shrink'")
    noise = NoiseFilters()
    if "noise" in entry:
        table = entry["noise"]
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: key 'noise' must be a table such as {{ replace = [...] }}")
        check_keys(table, DOCUMENT_NOISE_KEYS, f"{where}: key 'noise'")
        noise = parse_noise(table, f"{where}: key 'noise'")
    flags: dict[str, bool] = {}
    for key, default in (("browser", False), ("browser_fallback", True)):
        flag = entry.get(key, default)
        if not isinstance(flag, bool):
            raise ConfigError(f"{where}: key '{key}' must be true or false, got {flag!r}")
        flags[key] = flag
    return Source(
        id=doc_id,
        service=entry["service"].strip(),
        title=entry["title"].strip(),
        url=url,
        select=selectors["select"],
        remove=selectors["remove"],
        robots=robots,
        allow_hosts=tuple(h.strip().lower().removeprefix("www.") for h in hosts),
        min_chars=min_chars,
        max_shrink=max_shrink,
        noise=noise,
        browser=flags["browser"],
        browser_fallback=flags["browser_fallback"],
    )
