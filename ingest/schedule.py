"""The reindex schedule: run a job on a cron expression, log each run, survive failures."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

log = logging.getLogger("archivist.schedule")


def cron_trigger(expr: str):
    """A trigger from five cron fields (minute hour day month weekday), or six with seconds first."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expr.split()
    try:
        if len(fields) == 6:
            second, minute, hour, day, month, dow = fields
            return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=dow)
        if len(fields) == 5:
            return CronTrigger.from_crontab(expr)
    except ValueError as exc:
        raise ValueError(f"schedule.cron = {expr!r} is not a valid cron expression: {exc}") from None
    raise ValueError(f"schedule.cron = {expr!r}: use five fields (minute hour day month weekday), or six with seconds first")


def guarded(job: Callable[[], object], name: str = "reindex") -> Callable[[], None]:
    """Wrap a job so that a failing run is logged and the schedule goes on."""

    def run() -> None:
        started = time.monotonic()
        log.info("%s: starting", name)
        try:
            result = job()
        except Exception as exc:  # the schedule must outlive any one run
            log.error("%s failed after %.1f s: %s", name, time.monotonic() - started, exc)
            return
        log.info("%s finished in %.1f s%s", name, time.monotonic() - started, f": {result}" if result else "")

    return run


def run_schedule(expr: str, job: Callable[[], object], *, stop: threading.Event | None = None) -> None:
    """Block, running ``job`` at each time of the cron expression, until ``stop`` is set
    (or the process is interrupted). Runs never overlap: a run still going when the next
    is due makes that one wait (or be skipped, when it is more than a minute late)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    trigger = cron_trigger(expr)
    scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60})
    scheduler.add_job(guarded(job), trigger, id="reindex", name="reindex")
    scheduler.start()
    log.info("schedule started (%s); next run at %s", expr, scheduler.get_job("reindex").next_run_time)
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        scheduler.shutdown(wait=True)
        log.info("schedule stopped")
