"""The scheduler's jobs, built from the configuration: a run, the report, the site, and
one job per digest. `tos-tracker schedule` hands them to `config.cron.serve`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from tracker.app.pipeline import Tracker
from tracker.app.pipeline import run as run_pipeline
from tracker.config.settings import Config
from tracker.core.errors import TrackerError
from tracker.core.statuses import FAILED, OUTCOMES
from tracker.publish.report import write_report
from tracker.publish.site import build_site

log = logging.getLogger("tracker.schedule")  # the name log lines have always shown

Job = Callable[[threading.Event], None]


def build_jobs(config: Config) -> dict[str, tuple[str, Job]]:
    """name -> (cron expression, function of the stop event); empty when nothing is
    scheduled. Digests are left out, with a warning, when [smtp] is missing."""

    def run_job(stop: threading.Event) -> None:
        try:
            with Tracker.open(config) as tracker:
                summary = run_pipeline(tracker, stop=stop, wait=60)
        except TrackerError as exc:
            log.error("run skipped: %s", exc)
            return
        counts = ", ".join(f"{summary.count(s)} {s}" for s in OUTCOMES)
        log.info("run %s: %d documents: %s", summary.id, len(summary.outcomes), counts)
        if config.site.build_after_run:
            site_job(stop)

    def digest_job(digest_id: str) -> Job:
        def send_digest(stop: threading.Event) -> None:
            from tracker.publish.digest import run_digests

            try:
                with Tracker.open(config) as tracker:
                    # A run may hold the store for a while; a digest can wait for it.
                    (outcome,) = run_digests(tracker, [digest_id], wait=600)
            except TrackerError as exc:
                log.error("digest %s skipped: %s", digest_id, exc)
                return
            if outcome.status == FAILED:
                log.error("digest %s not sent (retried next time): %s", digest_id, outcome.error)
            else:
                count = len(outcome.changes)
                log.info("digest %s: %s, %d changes", digest_id, outcome.status, count)

        return send_digest

    def site_job(stop: threading.Event) -> None:
        try:
            with Tracker.open(config) as tracker:
                log.info("%s", build_site(tracker).line())
        except (TrackerError, OSError) as exc:
            log.error("site build failed: %s", exc)

    def report_job(stop: threading.Event) -> None:
        base = config.path.parent if config.path else Path.cwd()
        with Tracker.open(config) as tracker:
            index, pages = write_report(tracker, base / config.schedule.report_out)
        log.info("report: %d change pages in %s", len(pages), index.parent)

    jobs: dict[str, tuple[str, Job]] = {}
    if config.schedule.run.strip():
        jobs["run"] = (config.schedule.run, run_job)
    if config.schedule.report.strip():
        jobs["report"] = (config.schedule.report, report_job)
    if config.schedule.site.strip():
        jobs["site"] = (config.schedule.site, site_job)
    if config.digests and config.smtp is None:
        log.warning("digests are configured but [smtp] is not: no digest will be sent")
    elif config.digests:
        for settings in config.digests:
            jobs[f"digest:{settings.id}"] = (settings.cron, digest_job(settings.id))
    return jobs
