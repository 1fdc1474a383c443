"""What one run did, per book, in the form the run table, the CLI and the app all show."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime


@dataclass
class BookStats:
    listed: int = 0  # events the book listed at discovery
    tournaments: int = 0
    requested: int = 0  # event-detail requests made
    scraped: int = 0  # details fetched and parsed
    failed: int = 0
    unreachable: bool = False
    discovery_failures: int = 0
    discovery_s: float = 0.0
    fetch_s: float = 0.0  # summed request time
    prices: int = 0
    raw_markets: int = 0  # market instances in the payloads
    mapped_markets: int = 0  # of which turned into canonical prices
    unmapped: int = 0
    errors: Counter = field(default_factory=Counter)  # failure kind -> count
    error_samples: list[str] = field(default_factory=list)

    def note_error(self, text: str, kind: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text)

    @property
    def mapping_coverage(self) -> float | None:
        return self.mapped_markets / self.raw_markets if self.raw_markets else None


@dataclass
class RunSummary:
    run_id: int
    trigger: str
    kind: str
    started_at: datetime
    status: str = "RUNNING"
    finished_at: datetime | None = None
    events_total: int = 0
    events_scraped: int = 0  # events with at least one book stored
    events_failed: int = 0  # events where some requested book failed
    batches_total: int = 0
    batches_done: int = 0
    history_rows: int = 0
    store_s: float = 0.0
    error: str | None = None
    books: dict[str, BookStats] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        end = self.finished_at or datetime.now(self.started_at.tzinfo)
        return (end - self.started_at).total_seconds()

    def as_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("books", "started_at", "finished_at")}
        out["seconds"] = round(self.seconds, 2)
        out["books"] = {
            b: {**{k: v for k, v in asdict(s).items() if k != "errors"}, "errors": dict(s.errors),
                "mapping_coverage": s.mapping_coverage}
            for b, s in self.books.items()
        }
        return out


def format_summary(s: RunSummary) -> str:
    lines = [
        f"run {s.run_id} ({s.trigger}): {s.status} in {s.seconds:.1f}s — "
        f"{s.events_scraped}/{s.events_total} events stored, {s.events_failed} with failures, "
        f"{s.batches_done}/{s.batches_total} batches, {s.history_rows} price changes",
    ]
    if s.error:
        lines.append(f"  error: {s.error}")
    lines.append(f"  {'book':<10} {'listed':>7} {'scraped':>8} {'failed':>7} {'prices':>8} {'mapped':>7}  errors")
    for book, b in s.books.items():
        cov = f"{b.mapping_coverage:.0%}" if b.mapping_coverage is not None else "-"
        errs = "UNREACHABLE " if b.unreachable else ""
        errs += ", ".join(f"{k}×{v}" for k, v in b.errors.most_common()) or ("" if errs else "none")
        lines.append(f"  {book:<10} {b.listed:>7} {b.scraped:>8} {b.failed:>7} {b.prices:>8} {cov:>7}  {errs}")
        for sample in b.error_samples[:2]:
            lines.append(f"  {'':<10} e.g. {sample}")
    return "\n".join(lines)
