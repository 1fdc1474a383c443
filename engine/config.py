"""The one configuration object.

Environment (prefix ``ODDSDESK_``) gives the start-up values; the ``settings`` table lets the
app change the runtime knobs (interval, concurrency, pacing, retention) without a restart:
``Settings.with_overrides`` validates those the same way, so a bad value in the table is
reported exactly like a bad environment variable.
"""

from __future__ import annotations

import re

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BOOKS: tuple[str, ...] = ("betpawa", "sportybet", "bet9ja")
Book = Literal["betpawa", "sportybet", "bet9ja"]
#: How analysts write the books' names (pages, exports, alert messages).
BOOK_LABELS: dict[str, str] = {"betpawa": "BetPawa", "sportybet": "SportyBet", "bet9ja": "Bet9ja"}

# tiers: refresh by time to kickoff (engine/pipeline/tiers.py); all of them change live.
TIER_KEYS: tuple[str, ...] = (
    "refresh_mode",
    "tier_near_hours",
    "tier_near_interval_min",
    "tier_day_hours",
    "tier_day_interval_min",
    "tier_far_interval_min",
    "discovery_interval_min",
)

# alerts: thresholds of the movement alerts (engine/markets/alerts.py); all of them change live.
ALERT_KEYS: tuple[str, ...] = ("alert_steam_pct", "alert_steam_window_min", "alert_margin_gap_pts", "alert_disappear")

#: Settings the app may change at run time (stored in the ``settings`` table).
RUNTIME_KEYS: tuple[str, ...] = (
    "scrape_interval_min",
    "batch_size",
    "betpawa_concurrency",
    "sportybet_concurrency",
    "bet9ja_concurrency",
    "betpawa_delay_ms",
    "sportybet_delay_ms",
    "bet9ja_delay_ms",
    "history_retention_days",
    "run_retention_days",
    "archive_history",  # archive
    *TIER_KEYS,
    *ALERT_KEYS,
)


_URL_FORM = "postgresql+psycopg://user:password@host:port/database"


def postgres_url(value: str | Any) -> Any:
    """``value`` as the SQLAlchemy URL the store connects with (driver psycopg 3), or a
    ValueError saying what is wrong with it. The one place a database URL is judged, so the
    settings, the store and the messages agree on it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value.strip() if isinstance(value, str) else value)
    except ArgumentError:
        raise ValueError(f"is not a database URL: use {_URL_FORM}") from None
    if url.get_backend_name() != "postgresql" or url.get_driver_name() not in ("psycopg", "psycopg2"):
        raise ValueError(f"only PostgreSQL is supported: {_URL_FORM} "
                         "(leave it unset for the embedded DuckDB file db_path)")
    if not url.database:
        raise ValueError(f"names no database: {_URL_FORM}")
    return url.set(drivername="postgresql+psycopg")


def masked(url: str | Any) -> str:
    """A database URL as messages show it: without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class ConfigError(ValueError):
    """A setting is invalid; the message names the environment variable or setting."""


class StoreUnreachable(RuntimeError):
    """The database server a setting names does not answer: the entry points print the message
    (URL without password, the server's reason) on one line and exit 2, as for a bad setting."""

    def __init__(self, url: str | Any, exc: BaseException) -> None:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        super().__init__(f"cannot reach the database at {masked(url)}: {reason}")


@dataclass(frozen=True)
class BookConfig:
    name: str
    url: str
    concurrency: int
    delay_s: float
    timeout_s: float
    attempts: int
    backoff_s: float


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ODDSDESK_", extra="ignore", validate_default=True)

    db_path: Path = Path("data/oddsdesk.duckdb")
    database_url: str | None = None

    betpawa_url: str = "https://www.betpawa.ng"
    sportybet_url: str = "https://www.sportybet.com"
    bet9ja_url: str = "https://sports.bet9ja.com"

    betpawa_concurrency: int = Field(50, ge=1, le=200)
    sportybet_concurrency: int = Field(50, ge=1, le=200)
    bet9ja_concurrency: int = Field(15, ge=1, le=100)
    betpawa_delay_ms: int = Field(0, ge=0, le=5000)
    sportybet_delay_ms: int = Field(0, ge=0, le=5000)
    bet9ja_delay_ms: int = Field(25, ge=0, le=5000)
    request_timeout_s: float = Field(20.0, gt=0, le=300)
    attempts: int = Field(3, ge=1, le=10)
    backoff_s: float = Field(1.0, ge=0, le=60)

    batch_size: int = Field(50, ge=1, le=500)
    # Processes that decode event payloads off the event loop (0 = decode inline).
    decode_workers: int = Field(1, ge=0, le=16)
    scrape_interval_min: float = Field(5.0, ge=0.1, le=1440)
    cycle_timeout_s: float = Field(1800.0, gt=0)
    history_retention_days: int = Field(14, ge=1, le=3650)
    run_retention_days: int = Field(30, ge=1, le=3650)
    # archive: cleanup first writes the history it is about to delete to date-partitioned Parquet
    # beside the database (engine/store/archive.py), where the SQL notebook can still query it.
    archive_history: bool = False
    stale_run_after_s: float = Field(300.0, gt=0)

    # alerts, evaluated after each stored batch: a competitor moving an outcome by more than
    # alert_steam_pct % within alert_steam_window_min while BetPawa stands still; BetPawa's margin
    # more than alert_margin_gap_pts points above the best competitor's; a market on one side only.
    alert_steam_pct: float = Field(8.0, gt=0, le=100)
    alert_steam_window_min: float = Field(30.0, gt=0, le=1440)
    alert_margin_gap_pts: float = Field(3.0, gt=0, le=100)
    alert_disappear: bool = True

    # tiers: "tiers" = the coordinator refreshes each event as often as its time to kickoff asks
    # (start-up is still one full cycle); "full" = a full cycle every scrape_interval_min.
    refresh_mode: Literal["tiers", "full"] = "tiers"
    tier_near_hours: float = Field(2.0, gt=0, le=24 * 14)  # kickoff within this → near tier
    tier_near_interval_min: float = Field(1.0, ge=0.5, le=1440)
    tier_day_hours: float = Field(24.0, gt=0, le=24 * 14)  # else within this → day tier, later → far
    tier_day_interval_min: float = Field(5.0, ge=0.5, le=1440)
    tier_far_interval_min: float = Field(15.0, ge=0.5, le=1440)
    discovery_interval_min: float = Field(15.0, ge=0.5, le=1440)
    tier_tick_s: float = Field(15.0, ge=1, le=300)  # how often the coordinator looks for due work

    app_address: str = "127.0.0.1"
    app_port: int = Field(8501, ge=1, le=65535)

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, v: str | None) -> str | None:
        if not v or not v.strip():
            return None
        return postgres_url(v).render_as_string(hide_password=False)

    @field_validator("betpawa_url", "sportybet_url", "bet9ja_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("tier_day_hours")
    @classmethod
    def _tiers_increase(cls, v: float, info: ValidationInfo) -> float:
        near = info.data.get("tier_near_hours")
        if near is not None and v <= near:
            raise ValueError(f"must be greater than tier_near_hours ({near:g}): tier boundaries increase")
        return v

    def store_label(self) -> str:
        """The store these settings name, for messages: the PostgreSQL URL without its password,
        or the DuckDB file."""
        if self.database_url:
            return masked(self.database_url)
        return str(self.db_path.expanduser().resolve())

    def book(self, name: str) -> BookConfig:
        return BookConfig(
            name=name,
            url=getattr(self, f"{name}_url"),
            concurrency=getattr(self, f"{name}_concurrency"),
            delay_s=getattr(self, f"{name}_delay_ms") / 1000.0,
            timeout_s=self.request_timeout_s,
            attempts=self.attempts,
            backoff_s=self.backoff_s,
        )

    def runtime_values(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in RUNTIME_KEYS}

    def with_saved(self, saved: dict[str, Any]) -> "Settings":
        """These settings with the runtime values of the settings table applied; the table also
        holds non-setting rows (scheduler status, last cleanup), which are ignored."""
        runtime = {k: v for k, v in saved.items() if k in RUNTIME_KEYS}
        return self.with_overrides(runtime) if runtime else self

    def with_overrides(self, overrides: dict[str, Any]) -> "Settings":
        """These settings with values from the settings table applied (validated)."""
        unknown = set(overrides) - set(RUNTIME_KEYS)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        data = self.model_dump()
        data.update(overrides)
        try:
            return Settings.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, prefix="")) from None


def _describe(exc: ValidationError, prefix: str) -> str:
    parts = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "?"
        label = f"{prefix}{name.upper()}" if prefix else name
        got = err.get("input")
        if name == "database_url" and isinstance(got, str):
            got = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", got)  # never print a password
        parts.append(f"{label}: {err['msg']} (got {got!r})")
    return "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; a bad value raises ConfigError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("invalid configuration: " + _describe(exc, prefix="ODDSDESK_")) from None
