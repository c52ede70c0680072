"""Shared stores and sites are data, not trust: paths, links, ids and damaged files.

Each test builds a real store on disk (imports of dated files, no network), then edits
it by hand as a careless user or a hostile committer of a shared store would, and runs
the real commands over it.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from conftest import document_entry, files_under, invoke, write_config

from tracker.core.errors import StoreError
from tracker.storage.store import Store

SECRET = "TOP SECRET: the deploy key"
DOC = "acme/terms"  # configured, imported as HTML
OTHER = "other/doc"  # not configured, imported as text
STEMS = ("20240101T000000Z", "20240201T000000Z", "20240301T000000Z")


def html(day: str) -> str:
    return (
        "<html><body><main><h1>Terms</h1>"
        f"<p>We keep logs for {day} days.</p><p>We may use your content to train models.</p>"
        "</main></body></html>"
    )


@pytest.fixture
def store(workdir: Path) -> Path:
    """Two documents of three versions each, and a secret file beside the store."""
    write_config(workdir, [document_entry(DOC, "http://127.0.0.1:9/terms")])
    with (workdir / "tracker.toml").open("a") as config:
        config.write('\n[[digests]]\nid = "weekly"\nto = ["a@example.com"]\n')
    pages, texts = workdir / "pages", workdir / "texts"
    pages.mkdir()
    texts.mkdir()
    for day in ("2024-01-01", "2024-02-01", "2024-03-01"):
        (pages / f"{day}.html").write_text(html(day))
        (texts / f"{day}.md").write_text(f"# Other\n\nWe keep logs for {day} days.\n")
    assert invoke("import", DOC, str(pages)).exit_code == 0
    assert invoke("import", OTHER, str(texts)).exit_code == 0
    (workdir / "secret.txt").write_text(SECRET)
    return workdir / "snapshots"


def meta_path(snapshots: Path, document: str = DOC, stem: str = STEMS[-1]) -> Path:
    return snapshots.joinpath(*document.split("/"), f"{stem}.json")


def edit_meta(snapshots: Path, **changes: dict[str, object]) -> None:
    path = meta_path(snapshots)
    meta = json.loads(path.read_text())
    for key, values in changes.items():
        meta[key].update(values)
    path.write_text(json.dumps(meta))


def published(site: Path, needle: str) -> list[str]:
    """Files of the site holding `needle`, raw snapshots read decompressed."""
    found = []
    for path in site.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        if needle.encode() in data:
            found.append(str(path.relative_to(site)))
    return found


# --- item 6: paths inside the store's own files -------------------------------------------


@pytest.mark.parametrize("form", ["absolute", "dotdot", "symlink"])
def test_a_capture_naming_a_file_outside_the_store_is_never_published(
    store: Path, workdir: Path, form: str
) -> None:
    # Before: `site build` copied the named file into versions/<stem>.txt and the
    # search index, exit 0. After: the document is left out, named, and nothing leaks.
    secret = workdir / "secret.txt"
    if form == "absolute":
        edit_meta(store, version={"path": str(secret)})
    elif form == "dotdot":
        edit_meta(store, snapshot={"path": "../secret.txt"})
    else:
        text = store / "acme" / "terms" / f"{STEMS[-1]}.md"
        text.unlink()
        text.symlink_to(secret)
    result = invoke("site", "build", "--out", "site")
    assert result.exit_code == 1, result.output
    assert f"skipped {DOC}:" in result.stderr
    assert "not a path inside the store" in result.stderr or "leads outside" in result.stderr
    assert published(workdir / "site", "TOP SECRET") == []
    assert (workdir / "site" / "documents" / "other" / "doc" / "index.html").is_file()
    assert secret.read_text() == SECRET
    # verify names it; show and diff say so in one line instead of reading the file.
    checked = invoke("verify", "--json")
    assert checked.exit_code == 1
    kinds = {p["kind"] for p in json.loads(checked.output)["problems"]}
    assert kinds & {"outside", "unreadable"}
    shown = invoke("show", DOC)
    assert shown.exit_code == 1 and SECRET not in shown.output


def test_reextract_never_deletes_a_file_outside_the_store(store: Path, workdir: Path) -> None:
    # Before: a version path of '../../victim.txt' whose capture lost its version was
    # unlinked by reextract. After: the capture is refused and the document left as it was.
    victim = workdir / "victim.txt"
    victim.write_text("keep me")
    edit_meta(store, version={"path": "../../victim.txt"})
    before = files_under(store)
    result = invoke("reextract")
    assert result.exit_code == 1
    assert f"{DOC}: skipped, left as it was" in result.stderr
    assert victim.read_text() == "keep me"
    assert files_under(store) == before


def test_store_paths_refuse_links_and_climbs(store: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (store / "acme" / "linked").symlink_to(outside)
    handle = Store(store)
    assert handle.resolve_inside("acme/terms/x.md") == store / "acme" / "terms" / "x.md"
    for rel in ("/etc/passwd", "../x", "acme/../../x", "acme//x", "", "acme/./x"):
        with pytest.raises(StoreError, match="not a relative path inside the store"):
            handle.resolve_inside(rel)
    with pytest.raises(StoreError, match="leads outside the store"):
        handle.resolve_inside("acme/linked/x.md")
    with pytest.raises(StoreError):
        handle.document_dir("acme/linked")  # a document folder that is a link out
    for bad in ("../../x", ".", "..", "_runs", "/tmp/x"):
        with pytest.raises(StoreError):
            handle.document_dir(bad)


@pytest.mark.parametrize("field", ["snapshot", "version"])
def test_a_capture_naming_another_documents_file_never_reaches_it(
    store: Path, workdir: Path, field: str
) -> None:
    """A capture of acme/terms whose metadata names other/doc's raw snapshot: before,
    `reextract` deleted it and `site build` published it; now the capture is refused."""
    victim = next((store / "other" / "doc").glob("*.gz"))
    kept = victim.read_bytes()
    edit_meta(store, **{field: {"path": f"other/doc/{victim.name}"}})
    assert invoke("reextract").exit_code != 0
    build = invoke("site", "build", "--out", "site")
    assert build.exit_code == 1 and f"skipped {DOC}:" in build.stderr, build.output
    assert victim.read_bytes() == kept
    checked = invoke("verify", "--json")
    assert checked.exit_code == 1
    assert any("other/doc" in p["message"] for p in json.loads(checked.output)["problems"])


def test_a_site_manifest_naming_files_outside_deletes_nothing(store: Path, workdir: Path) -> None:
    # Before: both victims were deleted by the next build. After: ignored, said once.
    assert invoke("site", "build", "--out", "site").exit_code == 0
    near, far = workdir / "victim.txt", workdir / "far" / "victim.txt"
    far.parent.mkdir()
    near.write_text("near")
    far.write_text("far")
    manifest = workdir / "site" / ".build" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["outputs"].update({"../victim.txt": "x", str(far): "y", "documents/../../far/x": "z"})
    manifest.write_text(json.dumps(data))
    result = invoke("site", "build", "--out", "site")
    assert result.exit_code == 0, result.output
    assert near.read_text() == "near" and far.read_text() == "far"


def test_a_site_manifest_naming_files_the_build_never_makes_deletes_none(
    store: Path, workdir: Path
) -> None:
    """A gh-pages checkout used as the site folder: its `.git/` and `CNAME` are no output
    of a build, whatever the manifest says (before: both deleted by the next build)."""
    assert invoke("site", "build", "--out", "site").exit_code == 0
    site = workdir / "site"
    (site / ".git").mkdir()
    (site / ".git" / "config").write_text("[core]")
    (site / "CNAME").write_text("terms.example.org")
    manifest = site / ".build" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["outputs"].update({".git/config": "x", "CNAME": "y", "documents/.hidden": "z"})
    manifest.write_text(json.dumps(data))
    result = invoke("site", "build", "--out", "site")
    assert result.exit_code == 0, result.output
    assert (site / ".git" / "config").read_text() == "[core]"
    assert (site / "CNAME").read_text() == "terms.example.org"


def test_a_site_folder_linking_out_is_never_written_through(store: Path, workdir: Path) -> None:
    assert invoke("site", "build", "--out", "site").exit_code == 0
    outside = workdir / "outside"
    outside.mkdir()
    linked = workdir / "site" / "documents" / "other"
    for path in sorted(linked.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    linked.rmdir()
    linked.symlink_to(outside)
    result = invoke("site", "build", "--out", "site", "--full")
    assert result.exit_code == 1
    assert "leads outside the site folder" in result.output
    assert list(outside.iterdir()) == []


def test_a_planted_temporary_link_in_the_site_is_never_written_through(
    store: Path, workdir: Path
) -> None:
    # Before: copying a version wrote through `.<name>.tmp`, a fixed name: a link planted
    # there in a shared site folder overwrote its target with the version's text.
    assert invoke("site", "build", "--out", "site").exit_code == 0
    precious = workdir / "precious.txt"
    precious.write_text("precious")
    versions = workdir / "site" / "documents" / "acme" / "terms" / "versions"
    for stem in STEMS:
        (versions / f".{stem}.txt.tmp").symlink_to(precious)
    result = invoke("site", "build", "--out", "site", "--full")
    assert result.exit_code == 0, result.output
    assert precious.read_text() == "precious"


def test_a_symlinked_lock_never_truncates_its_target(store: Path, workdir: Path) -> None:
    # Before: the next command truncated the target to "pid N". After: refused, untouched.
    target = workdir / "precious.txt"
    target.write_text("precious contents\n")
    lock = store / ".lock"
    lock.unlink()
    lock.symlink_to(target)
    for command in (["reindex"], ["import", DOC, str(workdir / "pages")], ["verify"]):
        result = invoke(*command)
        assert result.exit_code == 1, (command, result.output)
        assert "is a symbolic link; refusing to use it as the lock" in result.output
    assert target.read_text() == "precious contents\n"


# --- item 7: import DOC takes the config's id rule ---------------------------------------------


@pytest.mark.parametrize("bad", ["../../x", ".", "..", "_runs", "/abs", "Acme/Terms"])
def test_import_refuses_an_id_that_is_no_document_id(store: Path, workdir: Path, bad: str) -> None:
    # Before: '../../x' wrote captures two folders above the store, '_runs' crashed with a
    # KeyError and broke reindex and site build for the whole store. After: exit 2.
    if bad == "/abs":
        bad = str(workdir / "abs")  # absolute, and under the test's own folder
    before = files_under(workdir.parent)
    result = invoke("import", bad, str(workdir / "texts"))
    assert result.exit_code == 2
    assert "is not a document id" in result.output
    assert files_under(workdir.parent) == before
    assert invoke("reindex").exit_code == 0


@pytest.mark.parametrize("command", ["diff", "history", "show", "reextract"])
def test_other_commands_refuse_unknown_ids_before_reading(store: Path, command: str) -> None:
    args = ["reextract", "--document", "../../x"] if command == "reextract" else [command, "../.."]
    result = invoke(*args)
    assert result.exit_code == 2 and "unknown document" in result.output


# --- import folders and what is published of them ----------------------------------------------


def test_import_never_follows_links_and_publishes_no_local_paths(
    store: Path, workdir: Path
) -> None:
    # Before: a link to secret.txt was imported and published, and documents.json named
    # every import file by its absolute path. After: links skipped and named; basenames.
    folder = workdir / "more"
    folder.mkdir()
    (folder / "2024-04-01.md").write_text("# Other\n\nWe keep logs for ninety days.\n")
    (folder / "2024-05-01.md").symlink_to(workdir / "secret.txt")
    linked_dir = workdir / "hidden"
    linked_dir.mkdir()
    (linked_dir / "2024-06-01.md").write_text(SECRET)
    (folder / "2024-06-01.md").symlink_to(linked_dir)
    result = invoke("import", OTHER, str(folder))
    assert result.exit_code == 0, result.output
    assert "skipped 2024-05-01.md: a symbolic link" in result.stderr
    assert "skipped 2024-06-01.md: a symbolic link" in result.stderr
    assert "1 found, 1 captures added" in result.output
    assert not any(SECRET in p.read_text(errors="replace") for p in store.rglob("*.md"))
    assert invoke("site", "build", "--out", "site").exit_code == 0
    documents = (workdir / "site" / "documents.json").read_text()
    assert str(workdir) not in documents
    entries = {d["id"]: d for d in json.loads(documents)}
    files = {v["imported"]["file"] for v in entries[OTHER]["versions"]}
    assert files == {"2024-01-01.md", "2024-02-01.md", "2024-03-01.md", "2024-04-01.md"}
    assert published(workdir / "site", str(workdir)) == []


# --- one bad file never stops whole-store commands -----------------------------------------


DAMAGE = {
    "metadata": (f"{STEMS[-1]}.json", b'{"captured_at": '),
    "text": (f"{STEMS[-1]}.md", b"\xff\xfe not UTF-8"),
    "raw": (f"{STEMS[-1]}.html.gz", b"not gzip at all"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_one_damaged_file_skips_its_document_only(store: Path, workdir: Path, damage: str) -> None:
    # Before: site build, reindex, reextract, digest and diff failed for every document
    # with a raw traceback (UnicodeDecodeError, BadGzipFile) or a StoreError.
    name, data = DAMAGE[damage]
    damaged = store / "acme" / "terms" / name
    damaged.write_bytes(data)
    where = str(damaged)

    digest = invoke("digest", "--dry-run", "--all")  # before reindex drops the rows
    built = invoke("site", "build", "--out", "site")
    reindexed = invoke("reindex")
    reextracted = invoke("reextract")
    other = invoke("diff", OTHER)
    assert other.exit_code == 0 and "2024-03-01" in other.output
    if damage == "raw":
        # Only re-extraction reads raw snapshots; the others have no reason to fail.
        assert built.exit_code == 0 and reindexed.exit_code == 0
        assert reextracted.exit_code == 1 and where in reextracted.stderr
    else:
        for result in (built, reindexed, reextracted):
            assert result.exit_code == 1, result.output
            assert where in result.stderr
        assert (workdir / "site" / "documents" / "other" / "doc" / "index.html").is_file()
        assert "other/doc" in digest.output
        assert digest.exit_code == 1  # acme/terms left out (its changes stay unsent)
        mine = invoke("diff", DOC)
        assert mine.exit_code == 1 and mine.output.startswith(f"Error: {where}: ")

    report = invoke("report", "--out", "report")
    assert report.exit_code == 0 and (workdir / "report" / "index.html").is_file()

    checked = json.loads(invoke("verify", "--json").output)
    assert not checked["ok"]
    assert any(p["path"] == where for p in checked["problems"])

    # Quarantine moves the capture aside, whole, and the store is consistent again.
    repaired = invoke("verify", "--repair", "--quarantine")
    assert repaired.exit_code == 0, repaired.output
    kept = list((store / "_quarantine").rglob(name))
    assert len(kept) == 1 and kept[0].read_bytes() == data
    assert not damaged.exists()
    assert invoke("verify").exit_code == 0
    assert invoke("site", "build", "--out", "site").exit_code == 0


@pytest.mark.timeout(60)
def test_a_fifo_in_the_store_is_refused_not_waited_on(store: Path, workdir: Path) -> None:
    # Before: `site build` stopped with a SpecialFileError traceback, and `diff` of the
    # document waited on the FIFO for ever. After: one line, the other document built.
    text = store / "acme" / "terms" / f"{STEMS[-1]}.md"
    text.unlink()
    os.mkfifo(text)
    result = invoke("site", "build", "--out", "site")
    assert result.exit_code == 1
    assert f"skipped {DOC}: {text}: cannot be read: not a plain file" in result.stderr
    assert (workdir / "site" / "documents" / "other" / "doc" / "index.html").is_file()
    shown = invoke("diff", DOC)
    assert shown.exit_code == 1 and "not a plain file" in shown.output


def test_quarantine_goes_with_repair(store: Path) -> None:
    result = invoke("verify", "--quarantine")
    assert result.exit_code == 2 and "--quarantine goes with --repair" in result.output


# --- site build --out into a folder it did not make ----------------------------------------------


def test_site_build_refuses_a_folder_it_did_not_make(store: Path, workdir: Path) -> None:
    # Before: index.html of the user's folder was overwritten, exit 0. After: exit 2.
    mine = workdir / "mine"
    mine.mkdir()
    (mine / "index.html").write_text("my own page")
    result = invoke("site", "build", "--out", str(mine))
    assert result.exit_code == 2
    assert "not empty and holds no previous build" in result.output
    assert (mine / "index.html").read_text() == "my own page"
    assert invoke("site", "build", "--out", str(mine), "--force").exit_code == 0
    assert (mine / "index.html").read_text() != "my own page"
    # A previous build, an empty folder and a new one are fine.
    assert invoke("site", "build", "--out", str(mine)).exit_code == 0
    (workdir / "empty").mkdir()
    assert invoke("site", "build", "--out", str(workdir / "empty")).exit_code == 0
    assert invoke("site", "build", "--out", str(workdir / "new")).exit_code == 0
    assert os.path.isfile(workdir / "new" / ".build" / "manifest.json")


def test_a_site_builds_for_stored_documents_the_index_does_not_list(
    store: Path, workdir: Path
) -> None:
    # Before: with the index deleted, a stored unconfigured document failed the templates
    # (jinja2 UndefinedError: no attribute 'last_checked') and the whole build.
    (workdir / "tracker.db").unlink()
    result = invoke("site", "build", "--out", "site")
    assert result.exit_code == 0, result.output
    assert (workdir / "site" / "documents" / "other" / "doc" / "index.html").is_file()


@pytest.mark.parametrize("document", ["acme/terms/index.html", "acme", "other"])
def test_an_import_into_an_id_nested_with_another_is_refused(
    store: Path, workdir: Path, document: str
) -> None:
    """`acme/terms/index.html` beside `acme/terms` (or `acme` above it): one would be a
    folder of the other. Before: imported, then every `site build` failed; now exit 2,
    nothing written, and the site still builds."""
    before = sorted(p.relative_to(store) for p in store.rglob("*") if p.is_file())
    result = invoke("import", document, str(workdir / "texts"))
    assert result.exit_code == 2, result.output
    assert "folders of each other" in result.output
    assert sorted(p.relative_to(store) for p in store.rglob("*") if p.is_file()) == before
    assert invoke("site", "build", "--out", "site").exit_code == 0
