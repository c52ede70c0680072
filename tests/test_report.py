"""Change reports from real history, fetched over HTTP: what the readers are promised."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import Clock, document_entry
from pytest_httpserver import HTTPServer

from tracker.app.history import change_for
from tracker.app.pipeline import run
from tracker.publish.report import diff_segments, terminal_diff, write_report


def track(httpserver: HTTPServer, make_tracker, clock: Clock, doc: dict, bodies: list[bytes]):
    """Serve each body in turn and run the pipeline once per body."""
    for body in bodies:
        httpserver.expect_ordered_request("/doc").respond_with_data(
            body, content_type="text/html; charset=utf-8"
        )
    tracker = make_tracker([{**doc, "url": httpserver.url_for("/doc")}])
    for _ in bodies:
        summary = run(tracker, clock=clock)
        assert summary.failed == 0, summary.outcomes
        clock.advance(days=17)
    return tracker


def report_soup(tracker, out: Path) -> BeautifulSoup:
    _, pages = write_report(tracker, out)
    assert len(pages) == 1
    return BeautifulSoup(pages[0].read_text(encoding="utf-8"), "lxml")


AZURE = document_entry(
    "azure-openai/code-of-conduct",
    "http://placeholder/",
    select=["main .content"],
    remove=["nav", "form", "button", ".feedback"],
)
OPENAI = document_entry(
    "openai/usage-policies",
    "http://placeholder/",
    select=["main", "#content"],
    remove=['select[name="Locale Select"]', "main .sr-only"],
)


def test_azure_police_clause_is_inserted(
    httpserver: HTTPServer, make_tracker, clock: Clock, bundled, tmp_path: Path
) -> None:
    tracker = track(httpserver, make_tracker, clock, AZURE, bundled["azure-openai/code-of-conduct"])
    soup = report_soup(tracker, tmp_path / "report")
    inserted = " ".join(i.get_text() for i in soup.find_all("ins") if i.find_parent(class_="diff"))
    assert "by or for a police department in the United States" in inserted
    assert "real-time facial recognition technology on mobile cameras" in inserted
    deleted = " ".join(d.get_text() for d in soup.find_all("del") if d.find_parent(class_="diff"))
    assert "use by state or local police in the United States" in deleted
    # The page names both dates and links both snapshots.
    facts = soup.find("dl", class_="facts")
    assert [t["datetime"] for t in facts.find_all("time")] == [
        "2024-05-01T12:00:00Z",
        "2024-05-18T12:00:00Z",
    ]
    assert "1 May 2024, 12:00 UTC" in facts.get_text(" ")
    links = [a["href"] for a in soup.find_all("a") if "snapshot" in a.get_text()]
    assert len(links) == 2
    for href in links:
        page_dir = tmp_path / "report" / "azure-openai" / "code-of-conduct"
        assert (page_dir / href).resolve().is_file()


def test_openai_military_and_warfare_is_deleted(
    httpserver: HTTPServer, make_tracker, clock: Clock, bundled, tmp_path: Path
) -> None:
    bodies = bundled["openai/usage-policies"][:2]  # 2023-03-23 and 2024-01-10
    tracker = track(httpserver, make_tracker, clock, OPENAI, bodies)
    soup = report_soup(tracker, tmp_path / "report")
    deleted = [d.get_text() for d in soup.find_all("del")]
    assert any("Military and warfare" in d for d in deleted)
    assert not any("Military and warfare" in i.get_text() for i in soup.find_all("ins"))


def test_terminal_diff_of_the_azure_change(
    httpserver: HTTPServer, make_tracker, clock: Clock, bundled
) -> None:
    tracker = track(httpserver, make_tracker, clock, AZURE, bundled["azure-openai/code-of-conduct"])
    change = change_for(tracker, "azure-openai/code-of-conduct")
    text = terminal_diff(change, color=False)
    assert "Article • [-04/15-]{+05/02+}/2024" in text
    # The reworded clause is shown inline; the two new clauses are whole inserted lines.
    removed = "[-, including, for example, use by state or local police in the United States-]"
    assert f"valid consent{removed};\n" in text
    assert "\n{+- be used for facial recognition purposes by or for a police department" in text
    assert "Responsible AI mandatory practices" in text.splitlines()[1]


HOSTILE = """<html><body><main><h1>Terms</h1>
<p>Version one.</p>
<p>&lt;script&gt;alert("x")&lt;/script&gt; and &lt;img src=x onerror=alert(1)&gt;</p>
</main></body></html>"""


def test_page_content_is_escaped_in_reports(
    httpserver: HTTPServer, make_tracker, clock: Clock, tmp_path: Path
) -> None:
    second = HOSTILE.replace(
        "Version one.", "Version two. <b>&lt;/del&gt;&lt;script&gt;bad()&lt;/script&gt;</b>"
    )
    tracker = track(
        httpserver,
        make_tracker,
        clock,
        document_entry("evil/page", "http://placeholder/", select=["main"]),
        [HOSTILE.encode(), second.encode()],
    )
    _, pages = write_report(tracker, tmp_path / "report")
    html = pages[0].read_text()
    soup = BeautifulSoup(html, "lxml")
    assert soup.find_all("script") == []
    assert not any(tag.has_attr("onerror") for tag in soup.find_all(True))
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<img src=x onerror=alert(1)>" in soup.find(class_="diff").get_text()
    assert "</del><script>bad()</script>" in "".join(i.get_text() for i in soup.find_all("ins"))


def test_user_templates_are_searched_first(
    httpserver: HTTPServer, make_tracker, clock: Clock, bundled, tmp_path: Path
) -> None:
    tracker = track(httpserver, make_tracker, clock, AZURE, bundled["azure-openai/code-of-conduct"])
    custom = tmp_path / "my-templates"
    custom.mkdir()
    (custom / "change.html").write_text(
        "CUSTOM {{ change.document }} {% for s in segments %}{% if s.kind == 'ins' %}"
        "<ins>{{ s.text }}</ins>{% endif %}{% endfor %}"
    )
    from dataclasses import replace

    tracker.config = replace(tracker.config, templates=custom)
    _, pages = write_report(tracker, tmp_path / "report")
    html = pages[0].read_text()
    assert html.startswith("CUSTOM azure-openai/code-of-conduct")
    assert "by or for a police department" in html
    assert (tmp_path / "report" / "index.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("ops", "kinds"),
    [
        (((0, "a\n" * 20), (1, "x"), (0, "b\n" * 20)), ["skip", "eq", "ins", "eq", "skip"]),
        (((0, "a\nb\n"), (-1, "\nc\n"), (0, "d\n")), ["eq", "eq", "del", "eq", "eq"]),
    ],
)
def test_diff_segments_fold_long_unchanged_stretches(ops, kinds) -> None:
    segments = diff_segments(ops)
    assert [s.kind for s in segments] == kinds
    assert "".join(s.text for s in segments) == "".join(t for _, t in ops)


def test_a_change_caused_by_new_extraction_settings_is_labelled(
    httpserver: HTTPServer, tmp_path: Path, clock: Clock
) -> None:
    from conftest import write_config

    from tracker.app.pipeline import Tracker
    from tracker.config.settings import load_config

    page = "<div id='cookie'>We use cookies.</div><main><p>Terms.</p></main>"
    httpserver.expect_request("/p").respond_with_data(page, content_type="text/html")
    for select in (["#cookie"], ["main"]):
        write_config(tmp_path, [document_entry("test/p", httpserver.url_for("/p"), select=select)])
        with Tracker.open(load_config(tmp_path / "tracker.toml")) as tracker:
            run(tracker, clock=clock)
            clock.advance(hours=1)
    with Tracker.open(load_config(tmp_path / "tracker.toml")) as tracker:
        _, pages = write_report(tracker, tmp_path / "report")
    text = BeautifulSoup(pages[0].read_text(), "lxml").get_text(" ")
    assert "settings changed between these versions" in text


def test_flags_lead_the_change_report_with_marked_words(
    httpserver: HTTPServer, make_tracker, clock: Clock, bundled, tmp_path: Path
) -> None:
    tracker = track(httpserver, make_tracker, clock, AZURE, bundled["azure-openai/code-of-conduct"])
    soup = report_soup(tracker, tmp_path / "report")
    section = soup.find("section", class_="flags")
    assert section is not None
    first_heading_after_title = soup.find_all("h2")[0]
    assert first_heading_after_title.get_text() == "Flagged clauses"
    items = [li.get_text(" ", strip=True) for li in section.find_all("li")]
    assert any(
        i.startswith("Flagged: law enforcement, facial recognition") and "police department" in i
        for i in items
    )
    marks = {(m["data-topic"], m.get_text()) for m in section.find_all("mark")}
    assert ("law-enforcement", "police") in marks
    assert ("facial-recognition", "facial recognition") in marks
    # The modified clause shows the deleted words that raised its flag.
    deleted = [d.get_text() for d in section.find_all("del")]
    assert any("use by state or local police" in d for d in deleted)


def test_flags_are_stored_in_the_index(
    httpserver: HTTPServer, make_tracker, clock: Clock, bundled
) -> None:
    tracker = track(httpserver, make_tracker, clock, AZURE, bundled["azure-openai/code-of-conduct"])
    rows = list(tracker.index.db.query("select topic, kind from flags order by position"))
    assert rows == [
        {"topic": "law-enforcement", "kind": "modified"},
        {"topic": "law-enforcement", "kind": "added"},
        {"topic": "facial-recognition", "kind": "added"},
        {"topic": "law-enforcement", "kind": "added"},
        {"topic": "facial-recognition", "kind": "added"},
    ]
    change = tracker.index.changes("azure-openai/code-of-conduct")[0]
    assert change["flagged_topics"] == ["facial-recognition", "law-enforcement"]
    assert change["cosmetic"] is False
    assert change["cosmetic_reason"] is None
    kinds = [r["kind"] for r in tracker.index.db.query("select kind from clause_changes")]
    assert kinds.count("added") == 2 and "modified" in kinds


def test_two_flagged_clauses_with_the_same_text_stay_apart(tmp_path: Path) -> None:
    """A lost ban in one section must not hide behind an identical clause in another."""
    from tracker.analysis.change import Change
    from tracker.analysis.clauses import compare
    from tracker.analysis.segments import segment
    from tracker.analysis.topics import default_topics, flags_for
    from tracker.core.models import DiffResult, Version
    from tracker.publish.report import flag_views

    old = "## A\n\n- no surveillance of people\n\n## B\n\n- no military use\n"
    new = "## A\n\n- no warfare or planning\n\n## B\n\n- no warfare or planning\n"
    clauses = tuple(compare(segment(old), segment(new)))
    flags = tuple(flags_for(clauses, default_topics()))
    version = Version("d", datetime.now(UTC), "x", "p", 0, None, None)
    change = Change("d", version, version, DiffResult((), 0, 0, ()), clauses, flags)
    views = flag_views(change, default_topics())
    entries = [(v["kind"], v["section"]) for v in views]
    # The same new text in two sections is two entries, and the lost ban is its own.
    assert ("added", ("A",)) in entries and ("added", ("B",)) in entries
    assert ("removed", ("B",)) in entries
    removed = next(v for v in views if v["kind"] == "removed" and v["section"] == ("B",))
    assert "military" in "".join(text for _, runs in removed["parts"] for text, _ in runs)
