"""bench/replay.py: the same captures replayed as live runs and as an import agree."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import SHARED_CORPUS

BENCH = Path(__file__).resolve().parents[1] / "bench" / "replay.py"
REAL_WEB = SHARED_CORPUS / "real-web"
SENTENCE = "The provider may change these terms of service after giving notice to users. "


def load_replay() -> ModuleType:
    spec = importlib.util.spec_from_file_location("replay", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["replay"] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def page(paragraphs: int, extra: str = "", where: str = "main") -> bytes:
    body = "".join(f"<p>{n}. {SENTENCE}</p>" for n in range(paragraphs))
    body += f"<h2>Use</h2><ul><li>{extra}</li></ul>" if extra else ""
    head = "<html><head><title>Terms</title></head>"
    return f"{head}<body><{where}>{body}</{where}></body></html>".encode()


WALL = (
    b"<html><head><title>Just a moment...</title></head><body><main>"
    b"<p>Checking your browser before accessing the site.</p></main></body></html>"
)


def synthetic_folder(root: Path) -> Path:
    """Two documents in the real-web layout: gzipped and plain captures, walls, a
    selector break, a flip, a shrink and real changes; one manifest entry without its
    list of captures."""
    a, b = page(10), page(10, "No military use of the service.")
    terms = [a, WALL, a, b, a, b, page(10, where="div"), page(3), b]
    privacy = [page(8), page(8, "We sell no data."), page(8, "We sell no data.")]
    documents = []
    for doc_id, captures in (("acme/terms", terms), ("acme/privacy", privacy)):
        folder = root / doc_id
        folder.mkdir(parents=True)
        entries = []
        for n, body in enumerate(captures):
            stem = f"202401{n + 1:02d}T120000Z"
            name = f"{stem}.html.gz" if n % 2 else f"{stem}.html"
            (folder / name).write_bytes(gzip.compress(body) if n % 2 else body)
            entries.append({"file": name, "captured_at": f"2024-01-{n + 1:02d}T12:00:00Z"})
        documents.append(
            {
                "id": doc_id,
                "url": f"https://acme.test/{doc_id}",
                "select": ["main"],
                "remove": [],
                "captures": entries,
            }
        )
    del documents[1]["captures"]  # the files' names give the times, as `import` reads them
    (root / "manifest.json").write_text(json.dumps({"documents": documents}))
    return root


def test_replay_of_a_synthetic_folder_agrees_live_and_import(tmp_path: Path) -> None:
    replay = load_replay()
    results = {r.document: r for r in replay.replay(synthetic_folder(tmp_path / "set"))}
    terms = results["acme/terms"]
    assert terms.agree, (terms.live, terms.imported)
    for outcome in (terms.live, terms.imported):
        assert (outcome.captures, outcome.versions, outcome.changes) == (9, 2, 1)
        assert outcome.flagged == 1  # "military", once: the flips back raise nothing
        assert outcome.failures == {"bot_wall": 1, "selector": 1, "shrank": 1}
        assert outcome.verify_ok
    privacy = results["acme/privacy"]
    assert privacy.agree and privacy.live.versions == 2 and privacy.live.failures == {}
    assert privacy.captures == privacy.imported.captures == 3
    table = replay.table(list(results.values()))
    assert "| acme/terms | import | 9 | 2 | 1 | 1 | 1 | bot_wall 1, selector 1, shrank 1 |" in table


def test_replay_main_prints_json_and_exits_0_when_all_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replay = load_replay()
    folder = synthetic_folder(tmp_path / "set")
    assert replay.main([str(folder), "--document", "acme/privacy", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["document"] == "acme/privacy" and row["agree"] is True
    assert row["live"]["versions"] == row["import"]["versions"] == 2


@pytest.mark.timeout(120)
def test_real_llama_api_captures_agree_live_and_import() -> None:
    """The Llama API AUP flips between the policy and a bot-check page: no version comes
    from the bot-check page, live or imported."""
    if not (REAL_WEB / "manifest.json").is_file():
        pytest.skip(f"the real-web captures are not at {REAL_WEB}")
    replay = load_replay()
    (result,) = replay.replay(REAL_WEB, ["llama-api/acceptable-use-policy"])
    assert result.agree, (result.live, result.imported)
    for outcome in (result.live, result.imported):
        assert outcome.versions == 1 and outcome.changes == 0
        assert outcome.failures == {"bot_wall": 27}
        assert outcome.verify_ok


@pytest.mark.timeout(120)
def test_real_copilot_captures_keep_the_real_change_and_report_the_selector_break() -> None:
    """Microsoft Copilot's terms, June 2024: one real change on 2024-06-11, then a generic
    Bing page where the selector matches nothing: failures, never a version, both ways."""
    if not (REAL_WEB / "manifest.json").is_file():
        pytest.skip(f"the real-web captures are not at {REAL_WEB}")
    replay = load_replay()
    (result,) = replay.replay(REAL_WEB, ["microsoft-copilot/terms-of-service"])
    assert result.agree, (result.live, result.imported)
    for outcome in (result.live, result.imported):
        assert [t[:10] for t in outcome.versions_at] == ["2024-06-06", "2024-06-11"]
        assert outcome.failures == {"selector": 13}
        assert outcome.verify_ok


def test_an_error_page_served_with_200_is_no_version_live_or_imported(tmp_path: Path) -> None:
    """A site's own error page with no bot-wall marker ("This page isn't available"), as
    Llama API served between good loads: `error_page`, never a version, both ways."""
    error = (
        b"<html><head><title>Meta</title></head><body><main><h2>This page isn\xe2\x80\x99t"
        b" available</h2><p>An unexpected error has occurred. Try reloading the page or come"
        b" back later.</p></main></body></html>"
    )
    policy = page(10, "No military use of the service.")
    folder = tmp_path / "set" / "acme" / "aup"
    folder.mkdir(parents=True)
    for n, body in enumerate([policy, error, error, error, error, policy, error]):
        (folder / f"202401{n + 1:02d}T120000Z.html").write_bytes(body)
    manifest = {
        "documents": [
            {"id": "acme/aup", "url": "https://acme.test/aup", "select": ["main"], "remove": []}
        ]
    }
    (tmp_path / "set" / "manifest.json").write_text(json.dumps(manifest))
    (result,) = load_replay().replay(tmp_path / "set")
    assert result.agree, (result.live, result.imported)
    for outcome in (result.live, result.imported):
        assert (outcome.versions, outcome.changes) == (1, 0)
        assert outcome.failures == {"error_page": 5}
        assert outcome.verify_ok


@pytest.mark.timeout(180)
def test_real_wordtune_behind_cloudflare_email_obfuscation_replays_as_served_plainly() -> None:
    """Every load re-encodes the addresses with new keys (as Cloudflare serves them): the
    history is the one the plain captures give, live and imported, not a version a load."""
    if not (REAL_WEB / "manifest.json").is_file():
        pytest.skip(f"the real-web captures are not at {REAL_WEB}")
    replay = load_replay()
    document = ["wordtune/privacy-policy"]
    (plain,) = replay.replay(REAL_WEB, document)
    (hidden,) = replay.replay(REAL_WEB, document, cloudflare_emails=True)
    assert hidden.agree and plain.agree
    assert hidden.live.same_history(plain.live) and hidden.imported.same_history(plain.imported)
    assert hidden.live.versions < hidden.captures // 4
