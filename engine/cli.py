"""`oddsdesk` command line: the product's entry points (see DESIGN.md "Interfaces")."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.config import BOOKS, ConfigError, StoreUnreachable, load_settings

ROOT = Path(__file__).resolve().parent.parent


def _settings():
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"oddsdesk: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


#: polars' jemalloc keeps freed pages for 10 s by default; a cycle frees a batch's frames every
#: second or so, so that held ~30 MB of a scrape's peak RSS (measured). Read when polars loads.
POLARS_MALLOC_CONF = ("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")


def cmd_scrape(args: argparse.Namespace) -> int:
    os.environ.setdefault(*POLARS_MALLOC_CONF)
    from engine.pipeline.cycle import run_cycle_sync
    from engine.pipeline.summary import format_summary
    from engine.store import Store

    settings = _settings()
    store = Store.from_settings(settings)
    settings = effective_settings(settings, store)
    summary = run_cycle_sync(settings, store, trigger="cli")
    print(format_summary(summary))
    return 0 if summary.status in ("COMPLETED", "PARTIAL") else 1


def effective_settings(settings, store):
    """Environment settings with the app's saved runtime settings applied (bad ones reported, not fatal)."""
    try:
        return settings.with_saved(store.get_settings())
    except ConfigError as exc:
        print(f"oddsdesk: ignoring saved settings: {exc}", file=sys.stderr)
        return settings


def cmd_export(args: argparse.Namespace) -> int:
    from engine.pipeline.export import comparison_frame
    from engine.store import Store

    settings = _settings()
    frame = comparison_frame(Store.from_settings(settings))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "csv":
        frame.write_csv(out)
    else:
        frame.write_parquet(out)
    print(f"wrote {frame.height} rows to {out}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from engine.simulator.faults import FaultConfig
    from engine.simulator.server import serve

    faults = FaultConfig.parse(args.faults) if args.faults else None
    serve(port=args.port, seed=args.seed, events=args.events, faults=faults, drift_every_s=args.drift_every)
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    os.environ.setdefault(*POLARS_MALLOC_CONF)
    from scheduler.main import run_scheduler

    return run_scheduler(_settings())


def app_command(settings, port: int | None = None) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
        "--server.address", settings.app_address,
        "--server.port", str(port or settings.app_port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]


def cmd_app(args: argparse.Namespace) -> int:
    settings = _settings()
    os.chdir(ROOT)
    return subprocess.call(app_command(settings, args.port))


def cmd_up(args: argparse.Namespace) -> int:
    """Simulator (optional) + scheduler + app as child processes; Ctrl-C stops them all."""
    settings = _settings()
    env = dict(os.environ)
    procs: list[tuple[str, subprocess.Popen]] = []

    def stop_all(*_: object) -> None:
        for _name, p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        deadline = time.time() + 15
        for _name, p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    try:
        if args.simulate:
            from engine.simulator.process import start_simulator

            sim = start_simulator(port=args.sim_port, seed=args.seed, events=args.events,
                                  drift_every_s=args.drift_every)
            procs.append(("simulator", sim.proc))
            for book in BOOKS:
                env[f"ODDSDESK_{book.upper()}_URL"] = sim.urls[book]
            print(f"simulator  {sim.base_url}  ({args.events} events, seed {args.seed})", flush=True)
        procs.append(("scheduler", subprocess.Popen([sys.executable, "-m", "engine.cli", "scheduler"], env=env, cwd=ROOT)))
        procs.append(("app", subprocess.Popen(app_command(settings, args.port), env=env, cwd=ROOT,
                                              stdout=subprocess.DEVNULL)))
        url = f"http://{settings.app_address}:{args.port or settings.app_port}"
        print(f"database   {settings.store_label()}", flush=True)
        print(f"\n  oddsdesk is starting: open {url}\n  (Ctrl-C stops everything)\n", flush=True)
        while True:
            for name, p in procs:
                if p.poll() is not None:
                    print(f"oddsdesk: {name} exited with code {p.returncode}; stopping", file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oddsdesk", description="BetPawa vs SportyBet vs Bet9ja odds desk")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start scheduler + app (+ simulator with --simulate)")
    up.add_argument("--simulate", action="store_true", help="serve the three books from the built-in simulator")
    up.add_argument("--port", type=int, default=None, help="app port (default ODDSDESK_APP_PORT or 8501)")
    up.add_argument("--sim-port", type=int, default=8601)
    up.add_argument("--seed", type=int, default=1)
    up.add_argument("--events", type=int, default=300)
    up.add_argument("--drift-every", type=float, default=120.0, help="simulated prices move every N seconds")
    up.set_defaults(func=cmd_up)

    sc = sub.add_parser("scrape", help="run one full scrape cycle now")
    sc.add_argument("--once", action="store_true", required=True)
    sc.set_defaults(func=cmd_scrape)

    ex = sub.add_parser("export", help="export tables")
    ex.add_argument("what", choices=["comparison"])
    ex.add_argument("--format", choices=["csv", "parquet"], default="csv")
    ex.add_argument("--out", required=True)
    ex.set_defaults(func=cmd_export)

    sim = sub.add_parser("simulate", help="serve the simulated books on loopback")
    sim.add_argument("--port", type=int, default=8601)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--events", type=int, default=300)
    sim.add_argument("--faults", default="", help='e.g. "all:latency=150,jitter=50;bet9ja:429=0.1"')
    sim.add_argument("--drift-every", type=float, default=None)
    sim.set_defaults(func=cmd_simulate)

    sub.add_parser("scheduler", help="run the background scheduler").set_defaults(func=cmd_scheduler)
    app = sub.add_parser("app", help="run the Streamlit app")
    app.add_argument("--port", type=int, default=None)
    app.set_defaults(func=cmd_app)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except StoreUnreachable as exc:
        print(f"oddsdesk: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
