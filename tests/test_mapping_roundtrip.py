"""Every price the simulator quotes comes back out of our parsers unchanged, for all three books."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from engine.bookmakers import make_client
from engine.bookmakers._models import UNKNOWN_MARKET, FetchFailure
from engine.config import BOOKS
from tests.conftest import sim_settings, world_of

pytestmark = pytest.mark.integration


async def discover_and_parse(settings):
    out = {}
    for book in BOOKS:
        client = make_client(book, settings)
        try:
            disc = await client.discover()
            parsed = await asyncio.gather(*(client.fetch_event(ev) for ev in disc.events))
        finally:
            await client.aclose()
        out[book] = (disc, parsed)
    return out


def test_parsed_prices_equal_the_simulators_ground_truth(sim, tmp_path, capsys):
    world = world_of(sim)
    epoch = sim.state()["epoch"]
    results = asyncio.run(discover_and_parse(sim_settings(sim, tmp_path / "unused.duckdb")))
    lines = []
    for book, (disc, parsed) in results.items():
        listed = {ev.sr_id for ev in world.events if book in ev.books}
        assert {ev.sr_id for ev in disc.events} == listed
        raw = foreign = 0
        reasons = Counter()
        for ev, res in zip(disc.events, parsed):
            assert not isinstance(res, FetchFailure), res
            truth = sorted(world.quotes(book, ev.sr_id, epoch))
            assert sorted(res.prices) == truth, f"{book} {ev.sr_id}"
            raw += res.raw_markets
            foreign += sum(1 for u in res.unmapped if u.reason == UNKNOWN_MARKET)
            reasons.update(u.reason for u in res.unmapped)
        known = raw - foreign
        failed = sum(n for r, n in reasons.items() if r != UNKNOWN_MARKET)
        coverage = (known - failed) / known if known else 0.0
        lines.append(f"{book:<10} market instances {raw:>6}, in the catalogue {known:>6}, mapped "
                     f"{coverage:.1%} of those ({(known - failed) / raw:.1%} of all); not mapped: {dict(reasons)}")
        assert failed == 0, reasons
    with capsys.disabled():
        print("\nmapping coverage per book:\n  " + "\n  ".join(lines))
