"""One module per bookmaker (client + parser); `make_client` builds the right one from settings."""

from __future__ import annotations

import importlib

import httpx

from engine.bookmakers._client import BookClient
from engine.config import Settings

_CLASSES = {"betpawa": "BetPawaClient", "sportybet": "SportyBetClient", "bet9ja": "Bet9jaClient"}


def make_client(book: str, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> BookClient:
    module = importlib.import_module(f"engine.bookmakers.{book}")
    cls = getattr(module, _CLASSES[book])
    cfg = settings.book(book)
    http = None
    if transport is not None:
        from engine.bookmakers._client import make_http_client

        http = make_http_client(cfg, headers=dict(cls.headers), transport=transport)
    return cls(cfg, http=http)
