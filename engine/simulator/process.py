"""Run the simulator as a separate process on loopback, for tests, benchmarks and ``oddsdesk up``.

A separate process (not a thread) so the scraper under test meets real sockets, real timeouts
and a server whose CPU does not share the scraper's GIL — what benchmarks measure then
resembles production. The child binds the port itself (port 0 = any free port) and prints its
base URLs; we read them from its stdout, so two launches in parallel never race for a port.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpx

from engine.config import BOOKS
from engine.simulator.faults import FaultConfig

ROOT = Path(__file__).resolve().parents[2]


class SimulatorError(RuntimeError):
    """The simulator process did not come up (or its control API refused a request)."""


class SimProcess:
    """A running simulator process: its URLs, its control API, and a clean stop."""

    def __init__(self, proc: subprocess.Popen[str], base_url: str, reader: threading.Thread | None = None):
        self.proc = proc
        self.base_url = base_url
        self.urls = {book: f"{base_url}/{book}" for book in BOOKS}
        self._reader = reader
        self._http = httpx.Client(base_url=base_url, timeout=10.0, trust_env=False)

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        resp = self._http.request(method, path, json=body)
        if resp.status_code != 200:
            raise SimulatorError(f"{method} {path}: HTTP {resp.status_code} {resp.text}")
        return resp.json()

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/_sim/state")

    def advance(self, n: int = 1) -> dict[str, Any]:
        return self._call("POST", "/_sim/advance", {"n": n})

    def warm(self) -> dict[str, Any]:
        """Pre-render every event detail of the current epoch (can take a while on big worlds)."""
        resp = self._http.post("/_sim/warm", timeout=600.0)
        if resp.status_code != 200:
            raise SimulatorError(f"POST /_sim/warm: HTTP {resp.status_code} {resp.text}")
        return resp.json()

    def set_epoch(self, epoch: int) -> dict[str, Any]:
        return self._call("POST", "/_sim/epoch", {"epoch": epoch})

    def truth(self, pairs: list[tuple[str, str, float | None]]) -> dict[str, Any]:
        """Current prices of (book, sr_id) pairs with their change times since each pair's
        ``since`` (unix seconds); see ``Simulator.truth``."""
        body = {"pairs": [{"book": b, "sr_id": s, "since": since} for b, s, since in pairs]}
        resp = self._http.post("/_sim/truth", json=body, timeout=120.0)
        if resp.status_code != 200:
            raise SimulatorError(f"POST /_sim/truth: HTTP {resp.status_code} {resp.text}")
        return resp.json()

    def plant(self, book: str, sr_id: str, market: str, line: float | None, outcome: str, factor: float,
              from_epoch: int | None = None) -> dict[str, Any]:
        """From ``from_epoch`` on (default: the current epoch), ``book`` quotes that price × ``factor``:
        a planted mispricing or competitor move. ``clear_plants`` removes them all."""
        body = {"book": book, "sr_id": sr_id, "market": market, "line": line, "outcome": outcome, "factor": factor}
        return self._call("POST", "/_sim/plant", body | ({} if from_epoch is None else {"from_epoch": from_epoch}))

    def clear_plants(self) -> dict[str, Any]:
        return self._call("DELETE", "/_sim/plant")

    def set_faults(self, cfg: FaultConfig | str | None) -> dict[str, Any]:
        """Replace the fault config (a FaultConfig, or a spec in the faults.py grammar); None clears it."""
        body: Any = (cfg or FaultConfig()).to_json() if not isinstance(cfg, str) else cfg
        return self._call("PUT", "/_sim/faults", body)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait, SIGKILL if it will not go; returns the exit code."""
        self._http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)  # it ends at the pipe's EOF, now the child is gone
        if self.proc.stdout and (self._reader is None or not self._reader.is_alive()):
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self) -> "SimProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pump(stream: IO[str], lines: "queue.Queue[str]") -> None:
    """Hand the child's stdout over line by line, and keep draining it so the child never blocks."""
    for line in stream:
        lines.put(line)


def start_simulator(port: int = 0, seed: int = 1, events: int = 300, faults: FaultConfig | str | None = None,
                    drift_every_s: float | None = None, anchor: datetime | None = None,
                    startup_timeout_s: float = 60.0) -> SimProcess:
    """Launch ``python -m engine.simulator.server`` and return once ``/_sim/state`` answers."""
    cmd = [sys.executable, "-m", "engine.simulator.server", "--port", str(port), "--seed", str(seed),
           "--events", str(events)]
    if isinstance(faults, str) and faults:
        cmd += ["--faults", faults]
    if drift_every_s is not None:
        cmd += ["--drift-every", str(drift_every_s)]
    if anchor is not None:
        cmd += ["--anchor", anchor.isoformat()]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True, name="simulator-stdout")
    reader.start()

    deadline = time.monotonic() + startup_timeout_s
    urls: dict[str, str] = {}
    sim: SimProcess | None = None
    try:
        while len(urls) < len(BOOKS):
            if proc.poll() is not None:
                raise SimulatorError(f"simulator exited with code {proc.returncode} before serving")
            try:
                line = lines.get(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise SimulatorError(f"simulator printed no URLs within {startup_timeout_s:g}s") from None
                continue
            name, _, url = line.strip().partition(" ")
            if name in BOOKS:
                urls[name] = url.strip()
        base_url = urls[BOOKS[0]].rsplit("/", 1)[0]
        sim = SimProcess(proc, base_url, reader)
        while True:
            try:
                sim.state()
                break
            except (httpx.TransportError, SimulatorError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SimulatorError(f"simulator at {base_url} did not answer /_sim/state") from None
                time.sleep(0.05)
        if isinstance(faults, FaultConfig):
            sim.set_faults(faults)
        return sim
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if sim is not None:
            sim.stop()
        raise
