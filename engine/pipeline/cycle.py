"""One scrape run: discover → match → fetch in parallel → store in order.

Fetching and storing overlap: batch N is written by the single writer task while batch N+1
is fetched, so storage time hides behind network time. There is one writer and one write
transaction at a time, and a batch that cannot be stored fails the run loudly instead of
being dropped. Requests never touch the database.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
import polars as pl

from engine.bookmakers import make_client
from engine.bookmakers._client import BookClient
from engine.bookmakers._models import DiscoveredEvent, FetchFailure
from engine.config import BOOKS, Settings
from engine.markets.alerts import AlertThresholds
from engine.pipeline import decoding
from engine.pipeline.decoding import Decoded
from engine.pipeline.matching import MatchedEvent, batches, match_events
from engine.pipeline.summary import BookStats, RunSummary
from engine.store import Store
from engine.store.types import (
    PRICE_SCHEMA,
    UNMAPPED_SCHEMA,
    BatchWrite,
    BookEventRow,
    EventRow,
    ScrapeStatusRow,
)

log = logging.getLogger("oddsdesk.pipeline")
HEARTBEAT_S = 10.0
# Batches whose requests may be in flight at once: the next batch starts while the slowest
# book finishes the previous one, so no book idles at a batch boundary.
FETCH_AHEAD = 2
# tiers: in a tier run each request gets this many seconds from when it is issued, slot wait
# included (None = no limit), so one slow book cannot hold the tick's run hostage.
_request_limit: contextvars.ContextVar[float | None] = contextvars.ContextVar("request_limit", default=None)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _StartMarker:
    batch_no: int
    events: int


class _Cancelled(Exception):
    pass


async def run_cycle(
    settings: Settings,
    store: Store,
    trigger: str = "schedule",
    *,
    targets: list[MatchedEvent] | None = None,
    kind: str = "full",
    cancel: threading.Event | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    discover_only: bool = False,
    request_limit_s: float | None = None,
) -> RunSummary:
    """Run one cycle and return its summary; the run row is always finished, whatever happens.

    ``targets`` skips discovery and fetches exactly those events (retry failed / refresh one /
    a tier's due events). ``discover_only`` stores what discovery listed (events, book event
    ids) and fetches no detail; ``request_limit_s`` ends a detail request still unanswered that
    long after it was issued as a timeout failure.
    """
    cancel = cancel or threading.Event()
    _request_limit.set(request_limit_s)
    run_id = await asyncio.to_thread(store.start_run, trigger, list(BOOKS), kind)
    summary = RunSummary(run_id=run_id, trigger=trigger, kind=kind, started_at=utcnow(),
                         books={b: BookStats() for b in BOOKS})
    await asyncio.to_thread(store.add_progress, run_id, "CYCLE_START", f"{kind} run started ({trigger})")
    clients = {b: make_client(b, settings, transport) for b in BOOKS}
    decoding.configure(settings.decode_workers)
    beat = asyncio.create_task(_heartbeat(store, run_id))
    try:
        await asyncio.wait_for(_run(settings, store, summary, clients, targets, cancel, discover_only),
                               timeout=settings.cycle_timeout_s)
    except _Cancelled:
        summary.status = "CANCELLED"
        summary.error = "stopped on request (shutdown) before all batches were fetched"
    except asyncio.TimeoutError:
        summary.status = "FAILED"
        summary.error = f"cycle exceeded its time limit of {settings.cycle_timeout_s:g}s"
    except Exception as exc:  # the run must end with a status, never stay RUNNING
        log.exception("run %s failed", run_id)
        summary.status = "FAILED"
        summary.error = summary.error or f"{type(exc).__name__}: {exc}"
    finally:
        beat.cancel()
        await asyncio.gather(*(c.aclose() for c in clients.values()), return_exceptions=True)
    summary.finished_at = utcnow()
    await asyncio.to_thread(store.add_progress, run_id, "CYCLE_COMPLETE",
                            f"{summary.status}: {summary.events_scraped}/{summary.events_total} events",
                            {"status": summary.status})
    await asyncio.to_thread(store.finish_run, run_id, summary.status, summary.as_json(), summary.error)
    return summary


def run_cycle_sync(settings: Settings, store: Store, trigger: str = "cli", **kw) -> RunSummary:
    return asyncio.run(run_cycle(settings, store, trigger, **kw))


async def _heartbeat(store: Store, run_id: int) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        try:
            await asyncio.to_thread(store.heartbeat, run_id)
        except Exception:  # a busy lock must not kill the run; the next beat retries
            log.warning("heartbeat for run %s failed", run_id, exc_info=True)


async def _run(settings: Settings, store: Store, summary: RunSummary, clients: dict[str, BookClient],
               targets: list[MatchedEvent] | None, cancel: threading.Event, discover_only: bool = False) -> None:
    if targets is None:
        targets = await _discover(store, summary, clients)
        if targets is None:
            return
        if discover_only:
            await _store_listings(store, summary, targets)
            return
    summary.events_total = len(targets)
    todo = batches(targets, settings.batch_size)
    summary.batches_total = len(todo)
    await asyncio.to_thread(store.update_run, summary.run_id, events_total=len(targets))

    queue: asyncio.Queue = asyncio.Queue(maxsize=FETCH_AHEAD + 1)
    writer = asyncio.create_task(_writer(store, summary, queue))
    pending: deque[asyncio.Task] = deque()
    try:
        for n, batch in enumerate(todo, start=1):
            if cancel.is_set():
                raise _Cancelled()
            if summary.error:
                break  # the writer failed: stop fetching, its error is raised below
            await queue.put(_StartMarker(n, len(batch)))
            pending.append(asyncio.create_task(_fetch_batch(summary, clients, batch, n,
                                                            AlertThresholds.from_settings(settings))))
            if len(pending) > FETCH_AHEAD:
                await queue.put(await pending.popleft())
        while pending and not summary.error:
            await queue.put(await pending.popleft())
    finally:
        for task in pending:
            task.cancel()
        await queue.put(None)
        await writer  # drains what was fetched: a fetched batch is stored, never dropped
    _finish_status(summary)


async def _discover(store: Store, summary: RunSummary, clients: dict[str, BookClient]) -> list[MatchedEvent] | None:
    now = utcnow()
    results = await asyncio.gather(*(clients[b].discover(now=now) for b in BOOKS), return_exceptions=True)
    listings: list[DiscoveredEvent] = []
    counts = {}
    for book, res in zip(BOOKS, results):
        stats = summary.books[book]
        if isinstance(res, BaseException):
            stats.unreachable = True
            stats.note_error(f"discovery crashed: {type(res).__name__}: {res}", "discovery")
            counts[book] = {"events": 0, "unreachable": True}
            continue
        stats.listed = len(res.events)
        stats.tournaments = res.tournaments
        stats.discovery_s = round(res.seconds, 2)
        stats.discovery_failures = len(res.failures)
        stats.unreachable = res.tree_failed
        for f in res.failures[:5]:
            stats.note_error(f"discovery: {f.kind} {f.message}", f.kind)
        listings.extend(res.events)
        counts[book] = {"events": len(res.events), "tournaments": res.tournaments,
                        "failures": len(res.failures), "unreachable": res.tree_failed,
                        "seconds": round(res.seconds, 2)}
    matched = match_events(listings)
    msg = ", ".join(f"{b} {c['events']}" + (" (UNREACHABLE)" if c.get("unreachable") else "") for b, c in counts.items())
    await asyncio.to_thread(store.add_progress, summary.run_id, "DISCOVERY_COMPLETE",
                            f"{len(matched)} events matched by SportRadar id — {msg}",
                            {"books": counts, "matched": len(matched)})
    if all(summary.books[b].unreachable for b in BOOKS):
        summary.status = "CONNECTION_FAILED"
        summary.error = "no bookmaker was reachable at discovery"
        return None
    return matched


async def _store_listings(store: Store, summary: RunSummary, matched: list[MatchedEvent]) -> None:
    """A discovery run's one batch: the events and book event ids, no prices (tier runs use them)."""
    summary.events_total = len(matched)
    summary.batches_total = 1
    await asyncio.to_thread(store.update_run, summary.run_id, events_total=len(matched))
    batch = BatchWrite(
        run_id=summary.run_id, batch_no=1, observed_at=utcnow(), events=[_event_row(ev, {}) for ev in matched],
        book_events=[BookEventRow(b, l.book_event_id, ev.sr_id) for ev in matched for b, l in ev.listings.items()],
        prices=pl.DataFrame(schema=PRICE_SCHEMA), scraped=[], statuses=[],
        unmapped=pl.DataFrame(schema=UNMAPPED_SCHEMA), batches_total=1,
    )
    t0 = time.perf_counter()
    await asyncio.to_thread(store.store_batch, batch)
    summary.store_s += time.perf_counter() - t0
    summary.batches_done = 1
    _finish_status(summary)


async def _fetch_body(client: BookClient, listing: DiscoveredEvent) -> tuple[bytes, int] | FetchFailure:
    limit = _request_limit.get()
    if limit is None:
        return await client.fetch_event_body(listing)
    try:
        return await asyncio.wait_for(client.fetch_event_body(listing), limit)
    except asyncio.TimeoutError:
        return FetchFailure(book=client.name, kind="timeout", book_event_id=listing.book_event_id,
                            message=f"no answer within the tier run's {limit:g}s per request; retried later")


async def _fetch_one(client: BookClient, listing: DiscoveredEvent) -> tuple[Decoded | FetchFailure, float]:
    t0 = time.perf_counter()
    try:
        raw = await _fetch_body(client, listing)
        secs = time.perf_counter() - t0
        if isinstance(raw, FetchFailure):
            return raw, secs
        return await decoding.decode(client.name, raw[0], listing, raw[1]), secs
    except Exception as exc:  # a client bug must cost one event, not the run
        res = FetchFailure(book=client.name, kind="malformed", message=f"{type(exc).__name__}: {exc}",
                           book_event_id=listing.book_event_id)
    return res, time.perf_counter() - t0


async def _fetch_event(clients: dict[str, BookClient], ev: MatchedEvent):
    t0 = time.perf_counter()
    books = ev.books
    results = await asyncio.gather(*(_fetch_one(clients[b], ev.listings[b]) for b in books))
    return ev, dict(zip(books, results)), int((time.perf_counter() - t0) * 1000)


async def _fetch_batch(summary: RunSummary, clients: dict[str, BookClient], batch: list[MatchedEvent],
                       batch_no: int, alerts: AlertThresholds | None = None) -> BatchWrite:
    fetched = await asyncio.gather(*(_fetch_event(clients, ev) for ev in batch))
    observed_at = utcnow()
    frames: list[pl.DataFrame] = []
    events, book_events, scraped, statuses = [], [], [], []
    unmapped: Counter = Counter()
    samples: dict[tuple, str] = {}
    for ev, per_book, ms in fetched:
        ok, failed, errors = [], [], {}
        details: dict[str, Decoded] = {}
        for book, (res, secs) in per_book.items():
            stats = summary.books[book]
            stats.requested += 1
            stats.fetch_s += secs
            listing = ev.listings[book]
            book_events.append(BookEventRow(book, listing.book_event_id, ev.sr_id))
            if isinstance(res, FetchFailure):
                failed.append(book)
                stats.failed += 1
                errors[book] = f"{res.kind}: {res.message}" + (f" (after {res.attempts} attempts)" if res.attempts > 1 else "")
                stats.note_error(f"{ev.sr_id}: {errors[book]}", res.kind)
                continue
            ok.append(book)
            stats.scraped += 1
            details[book] = res
            scraped.append((ev.sr_id, book))
            stats.raw_markets += res.raw_markets
            stats.mapped_markets += res.mapped_markets
            stats.prices += res.prices.height
            stats.unmapped += res.unmapped_count
            frames.append(res.prices)
            for market_id, name, reason, detail, n in res.unmapped:
                key = (book, market_id, name, reason)
                unmapped[key] += n
                samples.setdefault(key, detail)
        events.append(_event_row(ev, details))
        statuses.append(ScrapeStatusRow(
            sr_id=ev.sr_id, books_requested=ev.books, books_scraped=tuple(ok), books_failed=tuple(failed),
            errors=errors, duration_ms=ms, book_event_ids={b: l.book_event_id for b, l in ev.listings.items()},
        ))
        if ok:
            summary.events_scraped += 1
        if failed:
            summary.events_failed += 1
    prices = (pl.concat(frames) if frames else pl.DataFrame(schema=PRICE_SCHEMA)).unique(
        subset=["sr_id", "bookmaker", "market", "line", "outcome"], keep="last", maintain_order=True)
    unmapped_frame = pl.DataFrame(
        {
            "bookmaker": [k[0] for k in unmapped], "market_id": [k[1] for k in unmapped],
            "name": [k[2] for k in unmapped], "reason": [k[3] for k in unmapped],
            "detail": [samples[k] for k in unmapped], "occurrences": list(unmapped.values()),
        },
        schema=UNMAPPED_SCHEMA,
    )
    return BatchWrite(run_id=summary.run_id, batch_no=batch_no, observed_at=observed_at, events=events,
                      book_events=book_events, prices=prices, scraped=scraped, statuses=statuses,
                      unmapped=unmapped_frame, batches_total=summary.batches_total, alert_thresholds=alerts)


def _event_row(ev: MatchedEvent, details: dict[str, Decoded]) -> EventRow:
    """Event facts from the reference book first (BetPawa), then the competitors, then listings."""
    for book in BOOKS:
        d = details.get(book)
        if d is not None and d.home and d.away:
            return EventRow(ev.sr_id, d.kickoff or ev.kickoff, d.country, d.tournament, d.home, d.away)
    first = ev.listings[ev.books[0]]
    return EventRow(ev.sr_id, first.kickoff, first.country, first.tournament, first.home, first.away)


async def _writer(store: Store, summary: RunSummary, queue: asyncio.Queue) -> None:
    """The single writer: stores fetched batches in order, one short transaction each."""
    failure: BaseException | None = None
    while True:
        item = await queue.get()
        if item is None:
            break
        if failure is not None:
            continue  # keep draining so the fetch side is never blocked
        try:
            if isinstance(item, _StartMarker):
                await asyncio.to_thread(store.add_progress, summary.run_id, "BATCH_START",
                                        f"batch {item.batch_no}/{summary.batches_total}: {item.events} events",
                                        None, summary.batches_done, summary.batches_total)
                continue
            t0 = time.perf_counter()
            result = await asyncio.to_thread(store.store_batch, item)
            summary.store_s += time.perf_counter() - t0
            summary.batches_done = item.batch_no
            summary.history_rows += result.history_rows
        except Exception as exc:
            failure = exc
            summary.error = f"storing batch {getattr(item, 'batch_no', '?')} failed: {type(exc).__name__}: {exc}"
            log.error(summary.error)
    if failure is not None:
        raise failure


def _finish_status(summary: RunSummary) -> None:
    books = summary.books.values()
    if summary.status != "RUNNING":
        return
    if any(b.unreachable for b in books):
        down = [name for name, b in summary.books.items() if b.unreachable]
        summary.status = "CONNECTION_FAILED"
        summary.error = summary.error or f"unreachable at discovery: {', '.join(down)} (other books were scraped)"
    elif summary.events_failed or any(b.failed or b.discovery_failures for b in books):
        summary.status = "PARTIAL"
    else:
        summary.status = "COMPLETED"
