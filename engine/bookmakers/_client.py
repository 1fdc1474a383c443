"""The one HTTP client factory and the request discipline every book shares.

Each book gets one ``httpx.AsyncClient`` (base URL, browser-like headers, timeout) and one
``BookClient`` around it that owns the book's concurrency limit, pacing and retries. Retries
happen only for what can clear by itself (403/429/5xx, timeouts, transport errors) and honour
``Retry-After``; anything else comes back at once as a typed ``FetchError`` so one bad event
costs one request, never the run.
"""

from __future__ import annotations

import asyncio
import importlib
import ssl
import time
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar

import httpx
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from engine.bookmakers._models import Discovery, DiscoveredEvent, FetchFailure, ParsedEvent
from engine.config import BookConfig

USER_AGENT_144 = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/144.0.0.0 Safari/537.36"
)
RETRY_STATUSES = frozenset({403, 429, 500, 502, 503, 504})


class FetchError(Exception):
    def __init__(self, kind: str, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.attempts = 1  # set by request_json to the attempts actually made

    @property
    def retryable(self) -> bool:
        return self.kind in ("timeout", "transport") or (
            self.kind == "http_status" and self.status in RETRY_STATUSES
        )

    def to_failure(self, book: str, book_event_id: str | None = None, attempts: int | None = None) -> FetchFailure:
        return FetchFailure(
            book=book, kind=self.kind, message=str(self), status=self.status,
            book_event_id=book_event_id, attempts=attempts or self.attempts,
        )  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One CA bundle load per process, shared by every shard (loading it costs ~20 ms)."""
    return httpx.create_ssl_context()


class ShardedTransport(httpx.AsyncBaseTransport):
    """Several small connection pools behind one transport.

    httpcore scans every connection of its pool on each request start and finish, so one
    50-connection pool costs O(connections) per request; measured, that scan was the largest
    CPU cost of a cycle. Small shards keep the scan short; each request goes to the shard with
    the fewest requests in flight.
    """

    def __init__(self, connections: int, shard_size: int = 8, **transport_kw):
        shards = max(1, -(-connections // shard_size))
        per_shard = -(-connections // shards)
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        transport_kw.setdefault("verify", _ssl_context())
        self._shards = [httpx.AsyncHTTPTransport(limits=limits, **transport_kw) for _ in range(shards)]
        self._busy = [0] * shards

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        i = min(range(len(self._shards)), key=self._busy.__getitem__)
        self._busy[i] += 1
        try:
            response = await self._shards[i].handle_async_request(request)
            await response.aread()  # release the connection before the shard counts it free
            return response
        finally:
            self._busy[i] -= 1

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


def make_http_client(cfg: BookConfig, headers: dict[str, str] | None = None,
                     transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The only place an httpx client is built (tests pass a transport or use respx)."""
    limit = max(cfg.concurrency, 4)  # as many connections as request slots
    return httpx.AsyncClient(
        base_url=cfg.url,
        headers=headers or {},
        timeout=httpx.Timeout(cfg.timeout_s, connect=min(cfg.timeout_s, 10.0)),
        transport=transport or ShardedTransport(limit),
        follow_redirects=False,
    )


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, min(float(value), 60.0))
    except ValueError:
        return None


class BookClient:
    """Base class of the three book clients: request discipline here, shapes in subclasses."""

    name: ClassVar[str] = ""
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, cfg: BookConfig, http: httpx.AsyncClient | None = None):
        self.cfg = cfg
        self.http = http or make_http_client(cfg, headers=dict(self.headers))
        self._slots = asyncio.Semaphore(cfg.concurrency)
        self.requests = 0

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> "BookClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, FetchError) and exc.retry_after is not None:
            return exc.retry_after
        return min(self.cfg.backoff_s * (2 ** (state.attempt_number - 1)), 10.0)

    async def request_bytes(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                            json_body: Any = None, headers: dict[str, str] | None = None) -> tuple[bytes, int]:
        """Body of one successful (2xx) request, and the attempts it took; raises FetchError."""
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.cfg.attempts),
            retry=retry_if_exception(lambda e: isinstance(e, FetchError) and e.retryable),
            wait=self._wait,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    content = await self._once(method, path, params, json_body, headers)
        except FetchError as exc:
            exc.attempts = attempts
            raise
        return content, attempts

    async def request_json(self, method: str, path: str, **kw: Any) -> tuple[Any, int]:
        """JSON body of one request, and the attempts it took; raises FetchError when it fails."""
        content, attempts = await self.request_bytes(method, path, **kw)
        return decode_json(content, attempts), attempts

    def _free_slot(self) -> None:
        """Pacing: a slot rests ``delay_s`` after its request ends. A timer gives it back, so the
        request's task goes on at once; sleeping in the task cost the slot one more wake-up of a
        busy event loop (measured +12 ms on a 25 ms rest)."""
        if self.cfg.delay_s:
            asyncio.get_running_loop().call_later(self.cfg.delay_s, self._slots.release)
        else:
            self._slots.release()

    async def _once(self, method: str, path: str, params: dict[str, Any] | None, json_body: Any,
                    headers: dict[str, str] | None) -> bytes:
        await self._slots.acquire()
        try:
            self.requests += 1
            resp = await self.http.request(method, path, params=params, json=json_body, headers=headers)
            content = resp.content
        except httpx.TimeoutException as exc:
            raise FetchError("timeout", f"timed out after {self.cfg.timeout_s:g}s ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise FetchError("transport", f"{type(exc).__name__}: {exc}") from None
        finally:
            self._free_slot()
        if resp.status_code == 404:
            raise FetchError("not_found", "HTTP 404", status=404)
        if resp.status_code >= 400:
            raise FetchError("http_status", f"HTTP {resp.status_code}", status=resp.status_code,
                             retry_after=_retry_after(resp))
        return content

    # The book-specific half -------------------------------------------------------------

    async def discover(self, now: datetime | None = None) -> Discovery:  # pragma: no cover - abstract
        raise NotImplementedError

    def event_request(self, event: DiscoveredEvent) -> tuple[str, dict[str, Any] | None]:  # pragma: no cover
        """Path and query parameters of the event-detail request."""
        raise NotImplementedError

    async def fetch_event_body(self, event: DiscoveredEvent) -> tuple[bytes, int] | FetchFailure:
        """The raw detail body (and attempts), so the CPU-bound decode can run elsewhere."""
        path, params = self.event_request(event)
        try:
            return await self.request_bytes("GET", path, params=params)
        except FetchError as exc:
            return self.request_failure(exc, event)

    def request_failure(self, exc: FetchError, event: DiscoveredEvent) -> FetchFailure:
        return exc.to_failure(self.name, event.book_event_id)

    async def fetch_event(self, event: DiscoveredEvent) -> ParsedEvent | FetchFailure:
        """The event's canonical prices, or why not; one bad event never raises into the run."""
        raw = await self.fetch_event_body(event)
        if isinstance(raw, FetchFailure):
            return raw
        return decode_event(self.name, raw[0], event, raw[1])


def decode_json(content: bytes, attempts: int = 1) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        err = FetchError("malformed", f"invalid JSON ({len(content)} bytes): {exc}")
        err.attempts = attempts
        raise err from None


def decode_event(book: str, content: bytes, event: DiscoveredEvent, attempts: int) -> ParsedEvent | FetchFailure:
    """Detail body → canonical prices or a typed failure; pure and picklable, so a process
    pool can run it off the event loop."""
    module = importlib.import_module(f"engine.bookmakers.{book}")
    return module.decode_event(content, event, attempts)


def now_ms() -> int:
    return int(time.time() * 1000)
