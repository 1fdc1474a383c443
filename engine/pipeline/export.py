"""The comparison export (DESIGN.md contract): one row per available mapped price."""

from __future__ import annotations

import polars as pl

from engine.markets.margins import add_margins
from engine.store import Store

EXPORT_COLUMNS = [
    "sportradar_id", "kickoff_utc", "country", "tournament", "home_team", "away_team", "market", "line",
    "outcome", "bookmaker", "odds", "margin_pct", "fair_odds", "observed_at",
]


def comparison_frame(store: Store) -> pl.DataFrame:
    prices = store.current_prices()
    if prices.is_empty():
        return pl.DataFrame(schema={c: pl.String for c in EXPORT_COLUMNS})
    # Margins over the whole quoted set: a suspended outcome must read "suspended", not "missing".
    priced = add_margins(prices).filter(pl.col("available"))
    return (
        priced.rename({"sr_id": "sportradar_id", "kickoff": "kickoff_utc", "home": "home_team",
                       "away": "away_team", "last_seen_at": "observed_at"})
        .select(EXPORT_COLUMNS)
        .sort(["kickoff_utc", "sportradar_id", "market", "line", "bookmaker", "outcome"], nulls_last=False)
    )
