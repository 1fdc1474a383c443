"""The scheduler process: owns the scrape.

APScheduler 3.x jobs: the scrape cycle on the interval from the settings table, a short poll
of ``run_requests`` (the app's "scrape now" / "retry failed" / "refresh event" from another
process), retention cleanup, margin rollups, and a stale-run watchdog. One cycle runs at a
time (a lock, plus ``max_instances=1``/``coalesce``). Misfire grace is set explicitly:
APScheduler's default of 1 s silently skips a run that starts late.

Refresh mode ``tiers`` (the default): after the start-up full cycle, the tier coordinator
(``coordinator.py``) refreshes each event as often as its time to kickoff asks, through the
same ``run`` (so still one cycle at a time); mode ``full`` keeps the full cycle on its interval.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from engine.config import ConfigError, Settings
from engine.pipeline.cycle import run_cycle
from engine.pipeline.summary import format_summary
from engine.pipeline.targets import event_targets, failed_targets
from engine.store import Store
from scheduler.coordinator import TierCoordinator

log = logging.getLogger("oddsdesk.scheduler")
POLL_S = 2.0
STATUS_KEY = "scheduler_status"
#: margin rollups (engine/store/rollups.py): how often, how long one run may hold the cycle lock,
#: how long it waits for a running cycle, and the pause that lets cycles in during a long backlog.
ROLLUP_EVERY_MIN = 10
ROLLUP_BUDGET_S = 20.0
ROLLUP_WAIT_S = 60.0
ROLLUP_PAUSE_S = 15.0
ROLLUP_ERROR_KEY = "last_rollup_error"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class SchedulerService:
    def __init__(self, settings: Settings, store: Store | None = None):
        self.base = settings
        self.store = store or Store.from_settings(settings)
        self.cancel = threading.Event()
        self.cycle_lock = threading.Lock()
        self.settings = settings
        self.scheduler = BackgroundScheduler(
            timezone=timezone.utc,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )
        self.coordinator = TierCoordinator(self)

    # settings ------------------------------------------------------------------------------
    def load_settings(self) -> Settings:
        try:
            return self.base.with_saved(self.store.get_settings())
        except ConfigError as exc:
            log.error("saved settings are invalid, keeping the previous ones: %s", exc)
            return self.settings

    def refresh_settings(self) -> None:
        new = self.load_settings()
        if new.scrape_interval_min != self.settings.scrape_interval_min:
            log.info("scrape interval changed: %s → %s min", self.settings.scrape_interval_min, new.scrape_interval_min)
            self.scheduler.reschedule_job("scrape", trigger=IntervalTrigger(minutes=new.scrape_interval_min))
            if new.refresh_mode == "tiers":  # tiers: rescheduling resumed the paused full-cycle job
                self.scheduler.pause_job("scrape")
        if new.refresh_mode != self.settings.refresh_mode:  # tiers: the coordinator's tick checks the mode
            log.info("refresh mode changed: %s → %s", self.settings.refresh_mode, new.refresh_mode)
            (self.scheduler.pause_job if new.refresh_mode == "tiers" else self.scheduler.resume_job)("scrape")
        self.settings = new
        self.publish_status()

    def publish_status(self) -> None:
        job = self.scheduler.get_job("scrape")
        nxt = job.next_run_time.astimezone(timezone.utc).isoformat() if job and job.next_run_time else None
        self.store.put_settings({STATUS_KEY: {
            "pid": os.getpid(), "updated_at": utcnow().isoformat(), "next_run_at": nxt,
            "interval_min": self.settings.scrape_interval_min, "running": self.cycle_lock.locked(),
            "mode": self.settings.refresh_mode, "tiers": self.coordinator.status(),
        }})

    # jobs ----------------------------------------------------------------------------------
    def run(self, trigger: str, *, targets=None, kind: str = "full", wait: bool = False,
            settings: Settings | None = None, **cycle_kw):
        """One cycle, never two at once; a scheduled tick that finds one running is skipped.

        ``settings`` overrides the ones in force for this run; ``cycle_kw`` goes to ``run_cycle``.
        """
        if not self.cycle_lock.acquire(blocking=wait):
            log.info("a cycle is already running; %s run skipped", trigger)
            return None
        try:
            if self.cancel.is_set():
                return None
            summary = asyncio.run(run_cycle(settings or self.settings, self.store, trigger, targets=targets,
                                            kind=kind, cancel=self.cancel, **cycle_kw))
            text = format_summary(summary)
            log.info("%s", text.splitlines()[0] if kind.startswith("tier:") else text)  # tiers: one line a tick
            return summary
        finally:
            self.cycle_lock.release()

    def scrape_job(self) -> None:
        self.run("schedule")
        if self.settings.refresh_mode == "tiers":  # tiers: the start-up cycle is the only full one
            self.scheduler.pause_job("scrape")

    def poll_requests(self) -> None:
        for req in self.store.claim_run_requests():
            rid, kind, payload = req["id"], req["kind"], req.get("payload") or {}
            try:
                if kind == "scrape_now":
                    summary = self.run("request", wait=True)
                elif kind == "retry_failed":
                    targets = failed_targets(self.store, int(payload["run_id"]))
                    if not targets:
                        self.store.finish_run_request(rid, "DONE", f"run {payload['run_id']} has no failed events to retry")
                        continue
                    summary = self.run("retry", targets=targets, kind=f"retry of run {payload['run_id']}", wait=True)
                elif kind == "refresh_event":
                    targets = event_targets(self.store, str(payload["sr_id"]))
                    if not targets:
                        self.store.finish_run_request(rid, "FAILED", f"event {payload['sr_id']} is not known to any book")
                        continue
                    summary = self.run("refresh", targets=targets, kind=f"refresh event {payload['sr_id']}", wait=True)
                else:
                    self.store.finish_run_request(rid, "FAILED", f"unknown request kind {kind!r}")
                    continue
                if summary is None:
                    self.store.finish_run_request(rid, "FAILED", "scheduler is shutting down")
                else:
                    self.store.finish_run_request(rid, "DONE", f"run {summary.run_id}: {summary.status}", summary.run_id)
            except Exception as exc:
                log.exception("run request %s failed", rid)
                self.store.finish_run_request(rid, "FAILED", f"{type(exc).__name__}: {exc}")

    def rollup_job(self) -> None:
        """Margin rollups between cycles (under the cycle lock, so never during a cycle's writes),
        ``ROLLUP_BUDGET_S`` at a time; a backlog (the first build, a long stop) goes on after a
        pause in which the tier coordinator's cycles run."""
        while not self.cancel.is_set():
            if not self.cycle_lock.acquire(timeout=ROLLUP_WAIT_S):
                log.info("margin rollup: a cycle is still running; next time")
                return
            try:
                report = self.store.roll_up_margins(self.settings.history_retention_days, budget_s=ROLLUP_BUDGET_S)
            except Exception as exc:  # the margin page shows it, and keeps rebuilding from history meanwhile
                log.exception("margin rollup failed")
                self._record_rollup_error(f"{type(exc).__name__}: {exc}")
                return
            finally:
                self.cycle_lock.release()
            self._record_rollup_error(None)
            if report.hours or report.dropped:
                log.info("margin rollup: %s h in %.1fs, %s h to go, %s window(s) dropped", report.hours,
                         report.seconds, report.left, report.dropped)
            if not report.left or not report.hours:
                return
            self.cancel.wait(ROLLUP_PAUSE_S)

    def _record_rollup_error(self, error: str | None) -> None:
        """``last_rollup_error`` (setting): the last failure, cleared by the next success."""
        try:
            if error or (self.store.get_settings().get(ROLLUP_ERROR_KEY) or {}).get("error"):
                self.store.put_settings({ROLLUP_ERROR_KEY: {"at": utcnow().isoformat(), "error": error}})
        except Exception:
            log.warning("could not record the margin rollup's outcome", exc_info=True)

    def cleanup_job(self) -> None:
        try:  # archive: a failed archive raises before anything is deleted; the storage page shows why
            counts = self.store.cleanup(self.settings.history_retention_days, self.settings.run_retention_days,
                                        archive=self.settings.archive_history)
        except Exception as exc:
            log.exception("retention cleanup failed")
            self.store.put_settings({"last_cleanup": {"at": utcnow().isoformat(), "deleted": {},
                                                      "error": f"{type(exc).__name__}: {exc}"}})
            return
        self.store.put_settings({"last_cleanup": {"at": utcnow().isoformat(), "deleted": counts}})
        log.info("retention cleanup: %s", counts)

    def watchdog_job(self) -> None:
        failed = self.store.fail_stale_runs(
            self.settings.stale_run_after_s,
            f"no heartbeat for {self.settings.stale_run_after_s:g}s: the run was stuck or its process died",
        )
        if failed:
            log.warning("watchdog marked stale runs FAILED: %s", failed)

    # lifecycle -----------------------------------------------------------------------------
    def start(self, first_run_now: bool = True) -> None:
        recovered = self.store.fail_running_runs(
            "interrupted: the scheduler stopped (killed or crashed) while this run was RUNNING")
        if recovered:
            log.warning("recovered runs left RUNNING by a stopped process: %s", recovered)
        self.settings = self.load_settings()
        now = utcnow()
        s = self.scheduler
        s.add_job(self.scrape_job, IntervalTrigger(minutes=self.settings.scrape_interval_min), id="scrape",
                  next_run_time=now if first_run_now else None)
        s.add_job(self.poll_requests, IntervalTrigger(seconds=POLL_S), id="requests", misfire_grace_time=30)
        s.add_job(self.coordinator.tick, IntervalTrigger(seconds=self.settings.tier_tick_s), id="tiers",
                  misfire_grace_time=30)
        s.add_job(self.refresh_settings, IntervalTrigger(seconds=10), id="settings", next_run_time=now)
        s.add_job(self.watchdog_job, IntervalTrigger(seconds=60), id="watchdog")
        s.add_job(self.cleanup_job, IntervalTrigger(hours=1), id="cleanup", next_run_time=now + timedelta(minutes=1))
        s.add_job(self.rollup_job, IntervalTrigger(minutes=ROLLUP_EVERY_MIN), id="margin_rollup",  # margin rollups
                  next_run_time=now + timedelta(minutes=2))
        s.start()

    def stop(self, grace_s: float = 120.0) -> None:
        """Stop taking jobs, let the cycle in hand store its batch and end CANCELLED, then exit.

        ``shutdown(wait=True)`` joins the job threads while holding the scheduler's job-store
        lock, which a job calling ``get_job`` at that moment waits on forever (seen: a
        scheduler that ignored SIGTERM); so wait on our own cycle lock instead.
        """
        self.cancel.set()
        self.scheduler.pause()
        if self.cycle_lock.acquire(timeout=grace_s):
            self.cycle_lock.release()
        else:
            log.error("the running cycle did not stop within %ss; exiting anyway", grace_s)
        self.scheduler.shutdown(wait=False)
        try:
            self.store.put_settings({STATUS_KEY: {"pid": None, "updated_at": utcnow().isoformat(),
                                                  "next_run_at": None, "stopped": True}})
        except Exception:
            log.warning("could not record the scheduler stop", exc_info=True)


def run_scheduler(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every 2-s poll at INFO
    store = Store.from_settings(settings)
    guard = store.instance_lock()
    if not guard.acquire():
        print(f"oddsdesk scheduler: another scheduler ({guard.holder()}) is already running on "
              f"{store.label}; refusing to start a second one", file=sys.stderr)
        return 1
    service = SchedulerService(settings, store)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    service.start()
    log.info("scheduler started on %s (pid %s)", store.label, os.getpid())
    stop.wait()
    log.info("stopping: finishing the batch in progress, marking the run")
    service.stop()
    return 0
