"""Noise: filters as data, built-in noise, flipping pages, and `reextract`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Clock, files_under, invoke
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracker.app.importer import folder_items, import_items
from tracker.app.pipeline import Tracker, run
from tracker.app.reextract import reextract
from tracker.config.settings import load_config, parse_config
from tracker.core.errors import ConfigError
from tracker.core.models import NoiseFilters
from tracker.extract.engine import extract_text, extraction_key
from tracker.storage.index import Index

DOC = "test/page"


def write_toml(folder: Path, url: str, *, document: str = "", noise: str = "") -> Path:
    """A tracker.toml with one document; `document` and `noise` are extra TOML lines."""
    text = (
        "[fetch]\ntimeout = 3\nretries = 0\nbackoff = 0.01\n"
        "robots = false\nhost_delay = 0\nmin_chars = 0\nmax_shrink = 1\n\n"
        f'[[documents]]\nid = "{DOC}"\nservice = "Test"\ntitle = "Page"\nurl = "{url}"\n'
        f"{document}\n\n{noise}\n"
    )
    path = folder / "tracker.toml"
    path.write_text(text, encoding="utf-8")
    return path


def open_tracker(folder: Path, url: str, **extra: str) -> Tracker:
    return Tracker.open(load_config(write_toml(folder, url, **extra)))


# --- configuration ---------------------------------------------------------------------------


def test_global_and_document_filters_are_merged(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        "https://example.org/",
        document='noise = { replace = [{ pattern = "foo", with = "bar" }], drop_params = ["ref"] }',
        noise=(
            "[noise]\n"
            'replace = [{ pattern = "^Updated \\\\d+ days? ago$" }]\n'
            'remove = [".cookie-banner"]\n'
            'drop_params = ["utm_*", "token"]\n'
            "flip_window = 3\n"
        ),
    )
    config = load_config(path)
    assert config.flip_window == 3
    assert config.sources[0].noise == NoiseFilters(
        replace=(("^Updated \\d+ days? ago$", ""), ("foo", "bar")),
        remove=(".cookie-banner",),
        drop_params=("utm_*", "token", "ref"),
    )


def test_defaults_without_noise_table(tmp_path: Path) -> None:
    config = load_config(write_toml(tmp_path, "https://example.org/"))
    assert config.flip_window == 5
    assert config.sources[0].noise == NoiseFilters()
    assert not config.sources[0].noise


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[noise]\nreplace = [{ pattern = "(" }]',
            "t.toml: [noise]: 'replace' entry #1: invalid regular expression '('",
        ),
        (
            '[noise]\nreplace = [{ pattern = "a", with = "\\\\2" }]',
            "t.toml: [noise]: 'replace' entry #1: invalid replacement '\\\\2'",
        ),
        (
            '[noise]\nreplace = [{ pattern = "x*" }]',
            "t.toml: [noise]: 'replace' entry #1: pattern 'x*' matches the empty text",
        ),
        (
            '[noise]\nreplace = [{ patern = "x" }]',
            "t.toml: [noise]: 'replace' entry #1: unknown key 'patern' (allowed: pattern, with)",
        ),
        ('[noise]\nremove = ["p["]', "t.toml: [noise]: 'remove': invalid CSS selector 'p['"),
        ('[noise]\ndrop_params = ["a=b"]', "t.toml: [noise]: 'drop_params': 'a=b' is not a"),
        ("[noise]\nflip_window = -1", "t.toml: [noise] key 'flip_window' must be an integer"),
        ("[noise]\nflip = 2", "t.toml: [noise]: unknown key 'flip'"),
        (
            '[[documents]]\nid = "a/b"\nservice = "S"\ntitle = "T"\nurl = "https://e.org/"\n'
            "noise = { flip_window = 2 }",
            "t.toml: document 'a/b': key 'noise': unknown key 'flip_window'",
        ),
        (
            '[[documents]]\nid = "a/b"\nservice = "S"\ntitle = "T"\nurl = "https://e.org/"\n'
            'noise = { replace = [{ pattern = "[" }] }',
            "t.toml: document 'a/b': key 'noise': 'replace' entry #1: invalid regular expression",
        ),
    ],
)
def test_bad_noise_settings_name_file_document_and_key(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(toml, name="t.toml", root=Path("/tmp"))
    assert str(caught.value).startswith(message)


# --- each filter kind, and the built-ins ------------------------------------------------------

PAGE = """<main><h1>Terms</h1><p>Updated 3 days ago</p>
<div class="cookie-banner">We use cookies. Accept?</div>
<p>Read the <a href="/privacy?lang=en&amp;token=abc123&amp;utm_source=x">privacy policy</a>.</p>
<p>Do not misuse the service.</p></main>"""


def test_replace_remove_and_drop_params() -> None:
    plain = extract_text(PAGE)
    assert plain == (
        "# Terms\n\nUpdated 3 days ago\n\nWe use cookies. Accept?\n\n"
        "Read the [privacy policy](/privacy?lang=en&token=abc123).\n\nDo not misuse the service.\n"
    )
    only_replace = NoiseFilters(replace=((r"^Updated \d+ days? ago$", ""),))
    assert "Updated" not in extract_text(PAGE, noise=only_replace)
    assert "# Terms\n\nWe use cookies" in extract_text(PAGE, noise=only_replace)  # no gap left
    only_remove = NoiseFilters(remove=(".cookie-banner",))
    assert "cookies" not in extract_text(PAGE, noise=only_remove)
    only_params = NoiseFilters(drop_params=("TOK*",))  # globs, case-insensitive
    assert "[privacy policy](/privacy?lang=en)." in extract_text(PAGE, noise=only_params)
    groups = NoiseFilters(replace=((r"^(Updated) \d+ days? ago$", r"\1 recently"),))
    assert "\n\nUpdated recently\n\n" in extract_text(PAGE, noise=groups)


def test_session_tokens_and_cache_busters_are_dropped_from_links() -> None:
    html = (
        '<p><a href="/terms;jsessionid=0A1B2C?section=3&amp;sid=77f&amp;_=1719830000">terms</a>'
        ' <a href="https://x.org/p?PHPSESSID=9&amp;__cf_chl_tk=zz&amp;page=2">page</a>'
        ' <a href="/q?v=2">versioned</a></p>'
    )
    assert extract_text(html) == (
        "[terms](/terms?section=3) [page](https://x.org/p?page=2) [versioned](/q?v=2)\n"
    )


def test_filters_are_part_of_the_extraction_key() -> None:
    base = extraction_key(["main"], [])
    assert extraction_key(["main"], [], NoiseFilters()) == base
    keys = {
        base,
        extraction_key(["main"], [], NoiseFilters(replace=(("a", ""),))),
        extraction_key(["main"], [], NoiseFilters(replace=(("a", "b"),))),
        extraction_key(["main"], [], NoiseFilters(remove=(".x",))),
        extraction_key(["main"], [], NoiseFilters(drop_params=("token",))),
    }
    assert len(keys) == 5


class Pages:
    """Serves whatever `body` is now, with an ETag, and records conditional requests."""

    def __init__(self, server: HTTPServer, bodies: list[str] | None = None) -> None:
        self.bodies = list(bodies or [])
        self.body = ""
        self.conditional: list[bool] = []
        server.expect_request("/page").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        if self.bodies:
            self.body = self.bodies.pop(0)
        etag = f'"{abs(hash(self.body))}"'
        self.conditional.append("If-None-Match" in request.headers)
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response(self.body, content_type="text/html; charset=utf-8", headers={"ETag": etag})


def test_a_filter_change_is_labelled_as_ours_and_not_conditional(
    httpserver: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    pages = Pages(httpserver)
    pages.body = PAGE
    url = httpserver.url_for("/page")
    with open_tracker(tmp_path, url) as tracker:
        assert run(tracker, clock=clock).outcomes[0].status == "new"
        clock.advance(hours=1)
        assert run(tracker, clock=clock).outcomes[0].status == "unchanged"
    assert pages.conditional == [False, True]
    noise = '[noise]\nreplace = [{ pattern = "^Updated \\\\d+ days? ago$" }]\n'
    with open_tracker(tmp_path, url, noise=noise) as tracker:
        clock.advance(hours=1)
        outcome = run(tracker, clock=clock).outcomes[0]
        assert outcome.status == "changed"
        assert outcome.change is not None
        assert outcome.change.extraction_changed
        assert outcome.change.summary.endswith("(after the extraction settings changed)")
        assert outcome.change.diff.deleted == ["\nUpdated 3 days ago\n"]
    assert pages.conditional == [False, True, False]  # not asked "changed?" across settings


# --- pages that flip between variants ---------------------------------------------------------

VARIANT_A = "<main><h1>Terms</h1><p>Be nice.</p><p>Offer: try our new app!</p></main>"
VARIANT_B = "<main><h1>Terms</h1><p>Be nice.</p><p>Offer: save 20% today!</p></main>"


def assert_index_equals_rebuild(tracker: Tracker, tmp_path: Path) -> None:
    rebuilt = Index(tmp_path / "rebuilt.db", tracker.config.topics)
    try:
        rebuilt.rebuild(tracker.store, tracker.config.sources)
        assert rebuilt.dump() == tracker.index.dump()
    finally:
        rebuilt.close()


def test_a_page_flipping_between_two_variants_is_one_change(
    httpserver: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    Pages(httpserver, [VARIANT_A, VARIANT_B] * 3)
    with open_tracker(tmp_path, httpserver.url_for("/page")) as tracker:
        outcomes = []
        for _ in range(6):
            outcomes.append(run(tracker, clock=clock).outcomes[0])
            clock.advance(hours=1)
        assert [o.status for o in outcomes] == [
            "new",
            "changed",
            "unchanged",
            "unchanged",
            "unchanged",
            "unchanged",
        ]
        assert outcomes[2].note == (
            "same as the version of 2024-05-01T12:00:00Z: the page flips between variants"
        )
        assert outcomes[3].note is None  # B again: equal to the current version
        assert len(tracker.store.versions(DOC)) == 2
        assert len(tracker.index.changes(DOC)) == 1
        captures = tracker.store.captures(DOC)
        assert len(captures) == 6  # every raw variant is kept as evidence
        assert [c.meta.get("flip_of") for c in captures] == [
            None,
            None,
            "2024-05-01T12:00:00Z",
            None,
            "2024-05-01T12:00:00Z",
            None,
        ]
        assert_index_equals_rebuild(tracker, tmp_path)


def test_flip_detection_can_be_turned_off(
    httpserver: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    Pages(httpserver, [VARIANT_A, VARIANT_B, VARIANT_A])
    noise = "[noise]\nflip_window = 0\n"
    with open_tracker(tmp_path, httpserver.url_for("/page"), noise=noise) as tracker:
        for _ in range(3):
            run(tracker, clock=clock)
            clock.advance(hours=1)
        assert len(tracker.store.versions(DOC)) == 3


def test_a_flip_only_looks_back_flip_window_versions(
    httpserver: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    bodies = [VARIANT_A.replace("Be nice", f"Rule {n}") for n in range(3)] + [VARIANT_A]
    bodies[0] = VARIANT_A
    Pages(httpserver, bodies)  # A, A1, A2, A: A is 3 versions back
    noise = "[noise]\nflip_window = 2\n"
    with open_tracker(tmp_path, httpserver.url_for("/page"), noise=noise) as tracker:
        for _ in range(4):
            run(tracker, clock=clock)
            clock.advance(hours=1)
        assert len(tracker.store.versions(DOC)) == 4


# --- reextract ---------------------------------------------------------------------------------


def page(rule: str, ad: str) -> str:
    return f'<main><h1>Terms</h1><p>{rule}</p><aside class="ad">{ad}</aside></main>'


HISTORY = [
    page("No weapons.", "Try Pro"),
    page("No weapons.", "Try Team"),  # only the ad changed
    page("No weapons or police use.", "Try Team"),
    page("No weapons or police use.", "Try Pro"),  # only the ad changed
]


def build_history(server: HTTPServer, folder: Path, clock: Clock) -> str:
    Pages(server, HISTORY)
    url = server.url_for("/page")
    with open_tracker(folder, url) as tracker:
        for _ in HISTORY:
            run(tracker, clock=clock)
            clock.advance(days=1)
        assert len(tracker.store.versions(DOC)) == 4
    return url


def contents(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in files_under(folder)}


def test_reextract_after_a_selector_change_rebuilds_versions_and_changes(
    httpserver: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    url = build_history(httpserver, tmp_path, clock)
    store_root = tmp_path / "snapshots"
    raw_before = {k: v for k, v in contents(store_root).items() if k.endswith(".gz")}
    with open_tracker(tmp_path, url, document='remove = [".ad"]') as tracker:
        [report] = reextract(tracker)
        assert (report.versions_before, report.versions_after) == (4, 2)
        assert (report.changes_before, report.changes_after) == (3, 1)
        assert (report.flagged_before, report.flagged_after) == (1, 1)  # police: still flagged
        assert report.reextracted == report.captures == 4
        assert [(c.captured_at, c.note) for c in report.text_changed] == [
            ("2024-05-01T12:00:00Z", "new text"),
            ("2024-05-02T12:00:00Z", "no longer a version: same text as the version before it"),
            ("2024-05-03T12:00:00Z", "new text"),
            ("2024-05-04T12:00:00Z", "no longer a version: same text as the version before it"),
        ]
        assert report.line().startswith(
            f"{DOC}: re-extracted 4 of 4 captures; versions 4 → 2, changes 3 → 1,"
            " flagged changes 1 → 1; text changed: 2024-05-01T12:00:00Z (new text)"
        )
        versions = tracker.store.versions(DOC)
        assert [tracker.store.read_text(v) for v in versions] == [
            "# Terms\n\nNo weapons.\n",
            "# Terms\n\nNo weapons or police use.\n",
        ]
        [change] = tracker.index.changes(DOC)
        assert not change["extraction_changed"]  # both sides made with the same settings
        assert change["flagged_topics"] == ["law-enforcement"]
        assert_index_equals_rebuild(tracker, tmp_path)
        # The superseded text is named in the metadata; raw snapshots are untouched.
        meta = tracker.store.captures(DOC)[1].meta
        assert meta["version"] is None
        assert meta["reextracted"][0]["version"]["sha256"]
    after = contents(store_root)
    assert {k: v for k, v in after.items() if k.endswith(".gz")} == raw_before
    assert sum(name.endswith(".md") for name in after) == 2  # no orphaned text files
    with open_tracker(tmp_path, url, document='remove = [".ad"]') as tracker:
        [again] = reextract(tracker)
        assert again.text_changed == [] and again.files_written == 0  # idempotent
        # The next live run is conditional again: the stored copy has the current settings.
        clock.advance(days=1)
        assert run(tracker, clock=clock).outcomes[0].status == "unchanged"


def test_reextract_dry_run_changes_nothing(
    httpserver: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    url = build_history(httpserver, tmp_path, clock)
    before = contents(tmp_path / "snapshots")
    with open_tracker(tmp_path, url, document='remove = [".ad"]') as tracker:
        dump = tracker.index.dump()
        [report] = reextract(tracker, dry_run=True)
        assert (report.versions_before, report.versions_after) == (4, 2)
        assert report.files_written == 0
        assert report.line().startswith(f"{DOC}: would re-extract 4 of 4 captures")
        assert tracker.index.dump() == dump
    assert contents(tmp_path / "snapshots") == before


def test_reextract_command(httpserver: HTTPServer, workdir: Path, clock: Clock) -> None:
    build_history(httpserver, workdir, clock)
    url = httpserver.url_for("/page")
    write_toml(workdir, url, document='remove = [".ad"]')
    dry = invoke("reextract", "--dry-run")
    assert dry.exit_code == 0
    assert "would re-extract 4 of 4 captures; versions 4 → 2, changes 3 → 1" in dry.output
    assert dry.output.endswith("Dry run: nothing was written.\n")
    done = invoke("reextract", "--document", DOC, "--json")
    assert done.exit_code == 0
    [data] = json.loads(done.output)
    assert data["versions"] == {"before": 4, "after": 2}
    assert data["flagged_changes"] == {"before": 1, "after": 1}
    assert len(data["text_changed"]) == 4
    assert invoke("reextract", "--document", "nope/doc").exit_code == 2
    history = json.loads(invoke("history", DOC, "--json").output)
    assert len(history) == 2


def test_html_imports_use_the_filters(tmp_path: Path) -> None:
    folder = tmp_path / "import"
    folder.mkdir()
    (folder / "2024-01-01.html").write_text(PAGE)
    noise = '[noise]\nremove = [".cookie-banner"]\ndrop_params = ["token"]\n'
    with open_tracker(tmp_path, "https://example.org/", noise=noise) as tracker:
        import_items(tracker, DOC, folder_items(folder)[0])
        [version] = tracker.store.versions(DOC)
        text = tracker.store.read_text(version)
        assert "cookies" not in text and "[privacy policy](/privacy?lang=en)." in text
        source = tracker.config.sources[0]
        assert version.extraction == extraction_key((), (), source.noise)


def test_reextract_keeps_text_imports(tmp_path: Path) -> None:
    folder = tmp_path / "import"
    folder.mkdir()
    (folder / "2024-01-01.md").write_text("# Terms\n\nOld rule.\n")
    (folder / "2024-02-01.md").write_text("# Terms\n\nNew rule.\n")
    with open_tracker(tmp_path, "https://example.org/") as tracker:
        import_items(tracker, DOC, folder_items(folder)[0])
        [report] = reextract(tracker)
        assert report.reextracted == 0
        assert report.kept == [
            "2024-01-01T00:00:00Z: imported as text",
            "2024-02-01T00:00:00Z: imported as text",
        ]
        assert (report.versions_before, report.versions_after) == (2, 2)
        assert report.text_changed == []


# --- built-in cosmetic noise -------------------------------------------------------------------


def test_a_table_of_contents_label_coming_and_going_is_cosmetic() -> None:
    from tracker.analysis.clauses import compare
    from tracker.analysis.segments import segment

    old = "# Terms\n\nTable of contents\n\nUpdated: 14 days ago\n\nNo weapons.\n"
    new = "# Terms\n\nUpdated: 15 days ago\n\nNo weapons.\n"
    assert all(c.cosmetic for c in compare(segment(old), segment(new)))
    mention = "# Terms\n\nSee the table of contents for the rules.\n\nNo weapons.\n"
    [change] = compare(segment(mention), segment("# Terms\n\nNo weapons.\n"))
    assert change.kind == "removed" and not change.cosmetic


def test_quote_style_flips_are_cosmetic() -> None:
    from tracker.analysis.clauses import compare
    from tracker.analysis.segments import segment

    straight = "# Changelog\n\n- 2025-10-29: We've updated our Usage Policies.\n"
    curly = straight.replace("'", "\u2019")
    assert [c.cosmetic for c in compare(segment(straight), segment(curly))] == [True]


# --- the EU corpus: real day-to-day churn -------------------------------------------------------

EU_REAL_CHANGES = {
    # Real edits, each read by hand; everything else in the set is churn.
    "2025-11-24T15:50:19Z": [],  # deceased public figures added to the likeness rule
    "2025-12-05T23:30:17Z": [],  # "character cameos" became "side characters"
    "2026-05-26T10:30:13Z": ["children", "elections"],  # Sora discontinued: sections replaced
    "2026-06-29T10:30:18Z": [],  # page layout: the agent policy's table of contents moved
}


def test_eu_corpus_churn_raises_no_alert(corpus: Path, tmp_path: Path) -> None:
    """Every change in the EU set is cosmetic and unflagged, except the known real edits."""
    folder = corpus / "openai-usage-policies-combined-eu"
    items, ignored = folder_items(folder)
    assert ignored == [] and len(items) == 54
    with open_tracker(tmp_path, "https://openai.com/policies/usage-policies/") as tracker:
        import_items(tracker, DOC, items)
        changes = tracker.index.changes(DOC)
    assert len(changes) == 53
    alerting = {c["to_captured_at"]: c["flagged_topics"] for c in changes if not c["cosmetic"]}
    assert alerting == EU_REAL_CHANGES
    assert [c for c in changes if c["cosmetic"] and c["flagged_topics"]] == []
