"""Hostile or careless configuration (issue 15): one clear line naming the file and key, exit 2.

Non-finite and absurd numbers, malformed URLs, ids that would break the store or the
site, crons that never fire, passwords over plain connections, and imports dated in
the future. Each was accepted silently or ended in a traceback before.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import CliRunner

from tracker.cli import cli
from tracker.config.settings import SmtpSettings, load_config, parse_config
from tracker.core.bounds import BOUNDS
from tracker.core.errors import ConfigError
from tracker.publish.mail import send

ROOT = Path(__file__).resolve().parents[1]
DOC = '[[documents]]\nid = "a"\nservice = "S"\ntitle = "T"\nurl = "https://example.org/"\n'


def doc(doc_id: str = "a", url: str = "https://example.org/") -> str:
    return f'[[documents]]\nid = "{doc_id}"\nservice = "S"\ntitle = "T"\nurl = "{url}"\n'


def refused(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, name="t.toml", root=Path("/srv/t"))
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[fetch]\ntimeout = inf\n", "t.toml: [fetch] key 'timeout' must be a number > 0"),
        ("[fetch]\ntimeout = nan\n", "t.toml: [fetch] key 'timeout' must be a number > 0"),
        ("[fetch]\ntimeout = 0\n", "t.toml: [fetch] key 'timeout' must be a number > 0"),
        ("[fetch]\nhost_delay = nan\n", "t.toml: [fetch] key 'host_delay' must be a number >= 0"),
        ("[fetch]\nbackoff = -inf\n", "t.toml: [fetch] key 'backoff' must be a number >= 0"),
        ("[fetch]\nworkers = 100000000\n", "[fetch] key 'workers' must be an integer >= 1 and <="),
        ("[fetch]\nworkers = 4.0\n", "t.toml: [fetch] key 'workers' must be an integer"),
        ("[fetch]\nmax_bytes = 1e30\n", "t.toml: [fetch] key 'max_bytes' must be an integer"),
        ("[fetch]\nretries = 1000000\n", "t.toml: [fetch] key 'retries' must be an integer"),
        ("[fetch]\nmax_shrink = nan\n", "t.toml: [fetch] key 'max_shrink' must be a share"),
        ("[noise]\nflip_window = 10000000\n", "t.toml: [noise] key 'flip_window' must be an"),
        (
            '[status]\nmax_failing = "99999999999999999d"\n',
            "t.toml: [status] key 'max_failing' must be a duration from 0 to 3650d",
        ),
        ("[status]\nmax_stale = 1e300\n", "t.toml: [status] key 'max_stale' must be a duration"),
        ("[status]\nmax_stale = inf\n", "t.toml: [status] key 'max_stale' must be a duration"),
        ("[status]\nmax_stale = nan\n", "t.toml: [status] key 'max_stale' must be a duration"),
    ],
)
def test_numbers_must_be_finite_and_in_range(text: str, message: str) -> None:
    assert message in refused(text + DOC)


def test_every_bound_is_enforced_at_both_ends_and_accepts_its_limits() -> None:
    """Each row of the table, through the file: its limits load, one step past does not."""
    for key, bound in BOUNDS.items():
        section, name = key.split(".")
        step = 1 if bound.integer else 0.5
        highest = int(bound.high) if bound.integer else bound.high
        inside = [highest] + ([] if bound.above else [int(bound.low)])
        outside = [highest + step, bound.low - step, float("inf"), float("nan")]
        for value, ok in [(v, True) for v in inside] + [(v, False) for v in outside]:
            text = _with_number(section, name, value)
            if ok:
                parse_config(text, name="t.toml", root=Path("/srv/t"))
            else:
                assert f"key '{name}'" in refused(text), (key, value)


def _with_number(section: str, name: str, value: float) -> str:
    literal = {"inf": "inf", "nan": "nan"}.get(str(value), repr(value))
    if section == "document":
        return doc() + f"{name} = {literal}\n"
    if section == "smtp":
        return (
            DOC
            + f'[smtp]\nhost = "mail.example.org"\nsender = "t@example.org"\n{name} = {literal}\n'
        )
    return f"[{section}]\n{name} = {literal}\n" + DOC


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://example.org:99999/", "Port out of range"),
        ("http://example.org:http/", "Port could not be cast"),
        ("http://example.org:0/", "port 0"),
        ("https://exa mple.org/", "spaces or control characters"),
        ("https://example.org/\\u0007", "spaces or control characters"),  # TOML's escape
        ("ftp://example.org/", "not http or https"),
        ("https:///terms", "no host"),
        ("https://example.org/" + "a" * 9000, "longer than 8192 characters"),
    ],
)
def test_malformed_urls_are_config_errors(url: str, problem: str) -> None:
    message = refused(doc(url=url))
    assert message.startswith("t.toml: document 'a': key 'url' must be an http(s) URL")
    assert problem in message and len(message) < 400
    site = refused(DOC + f'[site]\nsite_url = "{url}"\n')
    assert site.startswith("t.toml: [site] key 'site_url' must be an http(s) URL")


def test_ids_that_would_nest_or_overflow_a_file_name_are_refused() -> None:
    message = refused(doc("openai") + doc("openai/terms"))
    assert message.startswith("t.toml: document 'openai/terms': key 'id' lies inside document")
    assert "'openai'" in message
    # Deeper, and in either order: 'a/b/c' inside 'a/b'.
    assert "lies inside document 'a/b'" in refused(doc("a/b/c") + doc("x") + doc("a/b"))
    # Siblings and a shared prefix that is not a whole part are fine.
    parse_config(doc("a/b") + doc("a/c") + doc("ab") + doc("a-b/c"), name="t", root=Path("/"))

    longest = "/".join(["p" * 64, "q" * 63])  # 128 characters, parts of 64 and 63
    parse_config(doc(longest), name="t.toml", root=Path("/srv/t"))
    assert "key 'id' is too long (129 characters" in refused(doc(longest + "q"))
    message = refused(doc("p" * 65))
    assert "key 'id' is too long (65 characters, longest part 65)" in message
    assert "document '" + "p" * 80 + "…'" in refused(doc("p" * 300))  # the label is shortened
    digest = '[[digests]]\nid = "' + "d" * 65 + '"\nto = "a@example.org"\n'
    assert "key 'id' must be a lowercase slug" in refused(DOC + digest)


@pytest.mark.parametrize("where", ["[schedule]\nrun", "[schedule]\nsite", "[[digests]]\nschedule"])
def test_a_cron_that_never_fires_is_refused(where: str) -> None:
    table, key = where.split("\n")
    extra = 'id = "d"\nto = "a@example.org"\n' if table == "[[digests]]" else ""
    for never in ("0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"):
        message = refused(DOC + f'{table}\n{extra}{key} = "{never}"\n')
        assert f"'{never}' never fires" in message and f"key '{key}'" in message
    # 29 February comes every four years: it fires.
    parse_config(DOC + f'{table}\n{extra}{key} = "0 0 29 2 *"\n', name="t", root=Path("/"))


def test_the_cli_says_one_line_and_exits_2(tmp_path: Path) -> None:
    """A real process: no traceback, one line naming the file and the key."""
    cases = {
        "[fetch]\ntimeout = inf\n" + DOC: "[fetch] key 'timeout'",
        doc(url="http://[::1"): "document 'a': key 'url'",
        '[status]\nmax_failing = "99999999999999999d"\n' + DOC: "[status] key 'max_failing'",
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for text, key in cases.items():
        config = tmp_path / "tracker.toml"
        config.write_text(text, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "tracker", "--config", str(config), "status"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
        assert done.stderr.startswith(f"Error: {config}: {key}")


def test_duration_options_on_the_command_line_are_bounded(tmp_path: Path) -> None:
    (tmp_path / "tracker.toml").write_text(DOC, encoding="utf-8")
    config = str(tmp_path / "tracker.toml")
    runner = CliRunner()
    for option in ("--max-failing", "--max-stale"):
        result = runner.invoke(
            cli,
            ["--config", config, "status", option, "99999999999999999d"],
            catch_exceptions=False,
        )
        assert result.exit_code == 2
        assert f"Error: {option} must be a duration from 0 to 3650d" in result.output


# --- a password over a plain connection -----------------------------------------------------


@pytest.fixture
def plain_smtp() -> Iterator[tuple[int, list[Any], list[Any]]]:
    """aiosmtpd on 127.0.0.1 offering AUTH without TLS; records logins and messages."""
    logins: list[Any] = []
    received: list[Any] = []

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        logins.append(data)
        return AuthResult(success=isinstance(data, LoginPassword))

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(
        Handler(), hostname="127.0.0.1", port=port, authenticator=check, auth_require_tls=False
    )
    controller.start()
    yield port, logins, received
    controller.stop()


def test_a_password_is_not_sent_in_the_clear_without_the_opt_in(
    plain_smtp: tuple[int, list[Any], list[Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, logins, received = plain_smtp
    monkeypatch.setenv("TOS_TRACKER_SMTP_PASSWORD", "hunter2-but-longer")
    smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
    smtp += 'sender = "t@example.org"\nusername = "tracker"\n'
    digests = '[[digests]]\nid = "d"\nto = "r@example.org"\n'
    (tmp_path / "tracker.toml").write_text(DOC + smtp + digests, encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--config", str(tmp_path / "tracker.toml"), "digest", "--all"], catch_exceptions=False
    )
    assert result.exit_code == 2
    assert "[smtp] key 'username' is set with security = \"none\"" in result.output
    assert "allow_plaintext_password = true" in result.output
    assert "hunter2" not in result.output

    # Settings made in code are held to the same rule, before any connection.
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "t@example.org", "r@example.org", "x"
    message.set_content("body")
    settings = SmtpSettings("127.0.0.1", port, "none", "t@example.org", "tracker", timeout=5)
    with pytest.raises(ConfigError, match=r"would send the password to 127\.0\.0\.1"):
        send(message, settings)
    assert logins == [] and received == []

    # Said explicitly, it is sent (the server above does see a login when there is one).
    (tmp_path / "tracker.toml").write_text(
        DOC + smtp + "allow_plaintext_password = true\n" + digests, encoding="utf-8"
    )
    config = load_config(tmp_path / "tracker.toml")
    assert config.smtp is not None and config.smtp.allow_plaintext_password
    send(message, config.smtp)
    assert len(logins) == 1 and len(received) == 1
    assert "key 'allow_plaintext_password' must be true or false" in refused(
        DOC + smtp + 'allow_plaintext_password = "yes"\n'
    )


# --- imports dated in the future -------------------------------------------------------------


def test_captures_dated_ahead_are_skipped_as_future(tmp_path: Path) -> None:
    """By file name and by manifest.json: skipped and counted, the others imported."""
    (tmp_path / "tracker.toml").write_text(DOC, encoding="utf-8")
    folder = tmp_path / "history"
    folder.mkdir()
    text = "These are the terms of the service, long enough to be the document itself.\n"
    (folder / "2024-01-01.txt").write_text(text * 3, encoding="utf-8")
    (folder / "2099-01-01.txt").write_text(text * 4, encoding="utf-8")
    (folder / "2024-02-01.txt").write_text(text * 5, encoding="utf-8")
    manifest = '[{"file": "2024-02-01.txt", "captured_at": "2098-06-01T00:00:00Z"}]'
    (folder / "manifest.json").write_text(manifest, encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["--config", str(tmp_path / "tracker.toml"), "import", "a", str(folder)],
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output
    assert "1 captures added (1 new versions)" in result.output
    assert "2 failed (future 2)" in result.output
    assert "dated 2099-01-01T00:00:00Z, more than a day ahead of now" in result.output
    history = CliRunner().invoke(
        cli, ["--config", str(tmp_path / "tracker.toml"), "history", "a", "--json"]
    )
    assert history.exit_code == 0 and history.output.count('"captured_at"') == 1
    assert "2024-01-01" in history.output


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e9"])
def test_seconds_on_the_command_line_are_finite_and_bounded(tmp_path: Path, value: str) -> None:
    """click's FloatRange lets nan through: `--wait nan` and `--delay nan` are refused."""
    (tmp_path / "tracker.toml").write_text(DOC, encoding="utf-8")
    config = str(tmp_path / "tracker.toml")
    for args in (["verify", "--wait", value], ["import", "a", "--wayback", "--delay", value]):
        result = CliRunner().invoke(cli, ["--config", config, *args], catch_exceptions=False)
        assert result.exit_code == 2, result.output
        option = args[-2]
        assert f"Error: Invalid value for '{option}':" in result.output
    assert not (tmp_path / "snapshots").exists()
