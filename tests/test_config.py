"""Configuration errors name the file, the document and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.config.settings import load_config, parse_config
from tracker.core.errors import ConfigError

GOOD_DOC = """
[[documents]]
id = "openai/usage-policies"
service = "OpenAI"
title = "Usage policies"
url = "https://openai.com/policies/usage-policies/"
select = ["main"]
remove = ["main .sr-only"]
"""


def parse(text: str):
    return parse_config(text, name="tracker.toml", root=Path("/srv/t"))


def test_built_in_default_tracks_the_real_documents(tmp_path: Path) -> None:
    config = load_config(base=tmp_path)
    ids = [s.id for s in config.sources]
    assert {"azure-openai/code-of-conduct", "openai/usage-policies", "openai/terms-of-use"} <= set(
        ids
    )
    assert len(ids) >= 4
    assert config.path is None
    assert config.store_path == tmp_path.resolve() / "snapshots"
    assert config.index_path == tmp_path.resolve() / "tracker.db"


def test_tracker_toml_in_the_working_directory_wins(tmp_path: Path) -> None:
    (tmp_path / "tracker.toml").write_text(GOOD_DOC + '\n[store]\npath = "archive"\n')
    config = load_config(base=tmp_path)
    assert [s.id for s in config.sources] == ["openai/usage-policies"]
    assert config.store_path == tmp_path.resolve() / "archive"


def test_relative_store_paths_follow_the_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "mine.toml").write_text(GOOD_DOC)
    config = load_config(folder / "mine.toml", base=tmp_path)
    assert config.store_path == folder.resolve() / "snapshots"


def test_a_valid_document_parses_into_a_source() -> None:
    source = parse(GOOD_DOC).sources[0]
    assert source.select == ("main",) and source.remove == ("main .sr-only",)
    assert source.service == "OpenAI"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD_DOC.replace('select = ["main"]', 'selct = ["main"]'),
            "tracker.toml: document 'openai/usage-policies': unknown key 'selct'",
        ),
        (
            GOOD_DOC + GOOD_DOC,
            "document 'openai/usage-policies': key 'id' duplicates an earlier document",
        ),
        (
            GOOD_DOC.replace("https://openai.com/policies/usage-policies/", "openai.com/policies"),
            "tracker.toml: document 'openai/usage-policies': key 'url' must be an http(s) URL",
        ),
        (
            GOOD_DOC.replace("https://openai.com/policies/usage-policies/", "ftp://example.org/x"),
            "key 'url' must be an http(s) URL",
        ),
        (
            GOOD_DOC.replace('select = ["main"]', 'select = ["main[" ]'),
            "document 'openai/usage-policies': key 'select': invalid CSS selector 'main['",
        ),
        (
            GOOD_DOC.replace('remove = ["main .sr-only"]', 'remove = ["..x"]'),
            "tracker.toml: document 'openai/usage-policies': key 'remove': invalid CSS selector",
        ),
        (
            GOOD_DOC.replace('title = "Usage policies"\n', ""),
            "tracker.toml: document 'openai/usage-policies': missing required key 'title'",
        ),
        (
            GOOD_DOC.replace('id = "openai/usage-policies"', 'id = "OpenAI Usage"'),
            "tracker.toml: document 'OpenAI Usage': key 'id' must be a lowercase slug",
        ),
        (
            GOOD_DOC.replace('id = "openai/usage-policies"', 'id = "../etc"'),
            "key 'id' must be a lowercase slug",
        ),
        (GOOD_DOC.replace('service = "OpenAI"', "service = 3"), "key 'service' must be a string"),
        ("[fetch]\ntimeout = -1\n", "tracker.toml: [fetch] key 'timeout' must be a number > 0"),
        ("[fetch]\nworkers = 0\n", "tracker.toml: [fetch] key 'workers' must be an integer >= 1"),
        ("[fetch]\nspeed = 3\n", "tracker.toml: [fetch]: unknown key 'speed'"),
        ("[stor]\npath = 'x'\n", "tracker.toml: top level: unknown key 'stor'"),
        ("documents = 3\n", "'documents' must be an array of tables"),
        ("[[documents]\n", "tracker.toml: not valid TOML"),
    ],
)
def test_config_errors_name_file_document_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert message in str(info.value)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.toml")


def test_second_document_is_named_by_position_when_its_id_is_missing() -> None:
    text = GOOD_DOC + '\n[[documents]]\nservice = "x"\ntitle = "y"\nurl = "https://e.org/"\n'
    with pytest.raises(ConfigError, match="document #2: missing required key 'id'"):
        parse(text)


SMTP = """
[smtp]
host = "smtp.example.org"
username = "tracker"
sender = "tos-tracker <tracker@example.org>"
"""
DIGEST = """
[[digests]]
id = "daily"
to = ["reader@example.org", "Desk <desk@example.org>"]
topics = ["law-enforcement"]
documents = ["openai/usage-policies"]
"""


def test_smtp_and_digests_parse_with_defaults() -> None:
    config = parse(GOOD_DOC + SMTP + DIGEST)
    assert config.smtp is not None
    assert (config.smtp.host, config.smtp.port, config.smtp.security) == (
        "smtp.example.org",
        587,
        "starttls",
    )
    assert config.smtp.username == "tracker" and config.smtp.ca_file is None
    (digest,) = config.digests
    assert digest.to == ("reader@example.org", "Desk <desk@example.org>")
    assert (digest.period, digest.cosmetic) == ("daily", False)
    assert digest.topics == ("law-enforcement",)
    assert digest.documents == ("openai/usage-policies",)
    assert parse(GOOD_DOC).smtp is None and parse(GOOD_DOC).digests == ()


@pytest.mark.parametrize(("security", "port"), [("tls", 465), ("none", 25), ("starttls", 587)])
def test_smtp_port_defaults_follow_security(security: str, port: int) -> None:
    # SMTP has a username: without encryption the password needs the explicit opt-in.
    opt_in = "allow_plaintext_password = true\n" if security == "none" else ""
    config = parse(SMTP + f'security = "{security}"\n' + opt_in)
    assert config.smtp is not None and config.smtp.port == port


def test_smtp_ca_file_is_relative_to_the_config_and_must_exist(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    config = parse_config(SMTP + 'ca_file = "ca.pem"\n', name="t.toml", root=tmp_path)
    assert config.smtp is not None and config.smtp.ca_file == tmp_path / "ca.pem"
    with pytest.raises(ConfigError, match=r"\[smtp\] key 'ca_file': no such file"):
        parse_config(SMTP + 'ca_file = "nope.pem"\n', name="t.toml", root=tmp_path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (SMTP + 'security = "ssl"\n', r"\[smtp\] key 'security' must be one of starttls, tls"),
        (SMTP + "port = 0\n", r"\[smtp\] key 'port' must be a port number"),
        (SMTP + 'password = "x"\n', r"\[smtp\]: unknown key 'password'"),
        ('[smtp]\nhost = "h"\n', r"\[smtp\]: missing required key 'sender'"),
        (SMTP.replace("tos-tracker <tracker@example.org>", "nobody"), r"key 'sender' must be an"),
        (DIGEST.replace('"law-enforcement"', '"police"'), r"'daily': key 'topics': unknown topic"),
        (DIGEST.replace('"openai/usage-policies"', '"x/y"'), r"key 'documents': unknown document"),
        (DIGEST.replace('id = "daily"', 'id = "Daily Mail"'), r"key 'id' must be a lowercase slug"),
        (DIGEST + DIGEST, r"'daily': key 'id' duplicates an earlier digest"),
        (DIGEST.replace("to = [", "to = [] #"), r"key 'to' must be a non-empty list"),
        (DIGEST.replace("reader@example.org", "a@b.org, c@d.org"), r"key 'to' must be an email"),
        (DIGEST + 'period = "hourly"\n', r"key 'period' must be one of daily, weekly"),
        (DIGEST + 'cosmetic = "no"\n', r"key 'cosmetic' must be true or false"),
        (DIGEST + 'subject = "x"\n', r"\[\[digests\]\] 'daily': unknown key 'subject'"),
    ],
)
def test_smtp_and_digest_errors_name_the_table_and_key(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^tracker\.toml: .*" + message):
        parse(GOOD_DOC + extra)


@pytest.mark.parametrize(
    ("table", "allowed"),
    [
        (
            "fetch",
            "backoff, browser_allow_hosts, browser_path, confirm_shrink, host_delay,"
            " max_bytes, max_retry_after, max_shrink, min_chars, per_host, retries, robots,"
            " timeout, user_agent, workers",
        ),
        ("site", "build_after_run, out, site_url, title"),
        ("schedule", "report, report_out, run, site, timezone"),
        ("noise", "drop_params, flip_window, remove, replace"),
    ],
)
def test_a_tables_keys_are_its_settings_fields(table: str, allowed: str) -> None:
    # Derived from the dataclasses (`fields_of`): the keys, and the error, as they were.
    with pytest.raises(ConfigError) as caught:
        parse_config(f"[{table}]\nbogus = 1\n", name="t.toml", root=Path("/tmp"))
    assert str(caught.value) == f"t.toml: [{table}]: unknown key 'bogus' (allowed: {allowed})"
