"""Fault injection for the simulator: what can go wrong with a real bookmaker, on demand.

The real books answer slowly (p95 ≈ 4–6 s), throttle with 403 (Bet9ja) or possibly 429, fail
with 5xx, hang, and sometimes return an HTML block page or a cut-off body instead of JSON. The
scraper must survive every one of those without losing the rest of the cycle, so each can be
switched on per book at a chosen rate. Decisions come from one seeded RNG per book, so a given
seed and request sequence always produces the same faults (a failing test can be replayed).

Compact grammar (``--faults`` on the command line)::

    spec     := section (";" section)*
    section  := target ":" setting ("," setting)*   |   "seed=" INT
    target   := "all" | "betpawa" | "sportybet" | "bet9ja"
    setting  := key "=" value

    keys: latency=<mean ms>  jitter=<ms, std dev>  403=<rate>  429=<rate>  500=<rate>
          503=<rate>  timeout=<rate>  truncated=<rate>  malformed=<rate>
          retry_after=<s, sent with 429>  hang=<s a timeout hangs>  scope=all|detail

e.g. ``"all:latency=150,jitter=50;bet9ja:429=0.1,timeout=0.02"``. Rates are probabilities per
request (their sum per book must not exceed 1). Book sections override ``all`` key by key.
``scope=detail`` limits a book's faults (latency included) to the event-detail endpoint.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine.config import BOOKS

Endpoint = Literal["tree", "list", "detail"]
#: Fault kinds, in the order their rates are stacked on one uniform draw.
KINDS: tuple[str, ...] = ("403", "429", "500", "503", "timeout", "truncated", "malformed")
TARGETS: tuple[str, ...] = ("all", *BOOKS)

_KEYS = {
    "latency": "mean_ms", "jitter": "jitter_ms", "retry_after": "retry_after_s", "hang": "hang_s",
    "scope": "scope", **{k: f"rate_{k}" for k in KINDS},
}


class FaultSpecError(ValueError):
    """A fault spec string or JSON body that cannot be understood; the message says where."""


class BookFaults(BaseModel):
    """Faults of one book (or of ``all``); fields left unset fall back to ``all``, then to 0."""

    model_config = ConfigDict(extra="forbid")

    mean_ms: float = Field(0.0, ge=0, le=600_000)
    jitter_ms: float = Field(0.0, ge=0, le=600_000)
    rate_403: float = Field(0.0, ge=0, le=1)
    rate_429: float = Field(0.0, ge=0, le=1)
    rate_500: float = Field(0.0, ge=0, le=1)
    rate_503: float = Field(0.0, ge=0, le=1)
    rate_timeout: float = Field(0.0, ge=0, le=1)
    rate_truncated: float = Field(0.0, ge=0, le=1)
    rate_malformed: float = Field(0.0, ge=0, le=1)
    retry_after_s: int = Field(1, ge=0, le=3600)
    hang_s: float = Field(120.0, gt=0, le=3600)
    scope: Literal["all", "detail"] = "all"

    def rates(self) -> tuple[float, ...]:
        return tuple(getattr(self, f"rate_{k}") for k in KINDS)

    @model_validator(mode="after")
    def _sum(self) -> "BookFaults":
        if sum(self.rates()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates add up to {sum(self.rates()):.3f} > 1")
        return self

    @property
    def active(self) -> bool:
        return self.mean_ms > 0 or self.jitter_ms > 0 or any(self.rates())


class FaultConfig(BaseModel):
    """Per-book fault settings; JSON-serialisable (``PUT /_sim/faults``) and parseable from a spec."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    books: dict[Literal["all", "betpawa", "sportybet", "bet9ja"], BookFaults] = Field(default_factory=dict)

    def for_book(self, book: str) -> BookFaults:
        merged: dict[str, Any] = {}
        for target in ("all", book):
            if target in self.books:
                merged.update(self.books[target].model_dump(exclude_unset=True))  # type: ignore[index]
        return BookFaults(**merged)

    @model_validator(mode="after")
    def _merged(self) -> "FaultConfig":
        for book in BOOKS:
            self.for_book(book)  # "all" plus a book section must still add up to at most 1
        return self

    def to_json(self) -> dict[str, Any]:
        """JSON form keeping only what was set, so the ``all`` fallback survives a round trip."""
        return {"seed": self.seed,
                "books": {t: f.model_dump(mode="json", exclude_unset=True) for t, f in self.books.items()}}

    @classmethod
    def parse(cls, spec: str) -> "FaultConfig":
        """A config from the compact grammar of this module's docstring."""
        seed = 0
        books: dict[str, dict[str, Any]] = {}
        for section in (s.strip() for s in spec.split(";")):
            if not section:
                continue
            if section.startswith("seed="):
                try:
                    seed = int(section[5:])
                except ValueError:
                    raise FaultSpecError(f"seed must be an integer: {section!r}") from None
                continue
            target, sep, body = section.partition(":")
            target = target.strip()
            if not sep or target not in TARGETS:
                raise FaultSpecError(f"section {section!r}: expected <{'|'.join(TARGETS)}>:key=value,...")
            settings = books.setdefault(target, {})
            for item in (i.strip() for i in body.split(",")):
                if not item:
                    continue
                key, eq, value = item.partition("=")
                field = _KEYS.get(key.strip())
                if not eq or field is None:
                    raise FaultSpecError(f"{target}: unknown setting {item!r} (keys: {', '.join(_KEYS)})")
                settings[field] = value.strip()
        parsed = {t: _book_faults(t, v) for t, v in books.items()}
        try:
            return cls(seed=seed, books=parsed)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise FaultSpecError(f"{spec!r}: {exc.errors()[0]['msg']}") from None


def _book_faults(target: str, settings: dict[str, Any]) -> BookFaults:
    """Validated settings of one spec section; errors speak the spec's keys, not field names."""
    try:
        return BookFaults(**settings)
    except ValidationError as exc:
        spec_key = {field: key for key, field in _KEYS.items()}
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            where = f"{spec_key[field]}={settings[field]}" if field in settings else "rates"
            problems.append(f"{where}: {err['msg']}")
        raise FaultSpecError(f"{target}: " + "; ".join(problems)) from None


@dataclass(frozen=True)
class Decision:
    """What to do with one request: wait ``delay_s``, then serve it normally (``fault`` None)
    or fail it the ``fault`` way; ``cut`` in [0, 1) says where a truncation or garbage variant
    falls."""

    fault: str | None
    delay_s: float
    cut: float
    settings: BookFaults


class FaultInjector:
    """Draws per-request decisions from one RNG per book, in request arrival order.

    Every request consumes the same three draws whatever the settings, so changing one rate does
    not reshuffle which requests get the others.
    """

    def __init__(self, config: FaultConfig | None = None):
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self._books = {book: config.for_book(book) for book in BOOKS}
        self._rngs = {book: random.Random(f"faults:{config.seed}:{book}") for book in BOOKS}

    def decide(self, book: str, endpoint: Endpoint) -> Decision:
        settings = self._books[book]
        rng = self._rngs[book]
        u, gauss, cut = rng.random(), rng.gauss(0.0, 1.0), rng.random()
        if settings.scope == "detail" and endpoint != "detail":
            return Decision(None, 0.0, cut, settings)
        delay = max(0.0, settings.mean_ms + settings.jitter_ms * gauss) / 1000.0
        edge = 0.0
        for kind, rate in zip(KINDS, settings.rates()):
            edge += rate
            if u < edge:
                return Decision(kind, delay, cut, settings)
        return Decision(None, delay, cut, settings)
