"""What the browser test needs around the product: start/stop `oddsdesk up`, see its processes
in /proc, drive Debian's chromium, and read Streamlit's canvas grids through their DOM mirror.

Kept apart from the test so the test reads as the user's walk through the app.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
from playwright.sync_api import BrowserContext, Locator, Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
EXCEPTION = '[data-testid="stException"]'

T = TypeVar("T")


def wait_until(probe: Callable[[], T | None], timeout: float, what: str, every: float = 0.25,
               on_timeout: Callable[[], str] = lambda: "") -> T:
    """Poll a condition (never a fixed sleep): a loaded 2-core machine makes every step slower."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{on_timeout()}".rstrip())
        time.sleep(every)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the product as a user starts it -------------------------------------------------------------


@dataclass
class Product:
    """A running `oddsdesk up --simulate`: its process (leader of its own session) and log."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    db_path: Path
    url: str = ""

    def log_tail(self, chars: int = 4000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- oddsdesk up log (tail) ---\n{text[-chars:]}"

    def alive(self) -> bool:
        return self.proc.poll() is None


def start_product(workdir: Path, events: int, env_extra: dict[str, str], timeout: float = 90) -> Product:
    """`python -m engine.cli up --simulate` in a new session, so its whole process tree is findable.

    stdout goes to a file: the scheduler inherits it and logs every few seconds, and a pipe
    nobody drains would block it.
    """
    db_path = workdir / "oddsdesk.duckdb"
    log_path = workdir / "up.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODDSDESK_")}
    env.update(ODDSDESK_DB_PATH=str(db_path), **env_extra)
    cmd = [sys.executable, "-m", "engine.cli", "up", "--simulate", "--port", str(free_port()),
           "--sim-port", str(free_port()), "--events", str(events)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    product = Product(proc=proc, log_path=log_path, db_path=db_path)

    def printed_url() -> str | None:
        if not product.alive():
            raise AssertionError(f"oddsdesk up exited with {proc.returncode}\n{product.log_tail()}")
        found = re.search(r"open (http://\S+)", log_path.read_text(errors="replace"))
        return found.group(1) if found else None

    try:
        product.url = wait_until(printed_url, timeout, "oddsdesk up to print its URL", on_timeout=product.log_tail)
        wait_until(lambda: _app_answers(product), timeout, f"the app at {product.url} to answer",
                   on_timeout=product.log_tail)
    except BaseException:
        kill_product(product)
        raise
    return product


def _app_answers(product: Product) -> bool:
    if not product.alive():
        raise AssertionError(f"oddsdesk up exited with {product.proc.returncode}\n{product.log_tail()}")
    try:
        resp = httpx.get(f"{product.url}/_stcore/health", timeout=5, trust_env=False)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200 and resp.text.strip() == "ok"


def stop_product(product: Product, timeout: float = 45) -> int:
    """SIGTERM to `up` alone (it turns it into the same path as Ctrl-C): it must stop its children."""
    product.proc.send_signal(signal.SIGTERM)
    try:
        return product.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"oddsdesk up did not stop within {timeout:g} s\n{product.log_tail()}") from None


def kill_product(product: Product) -> None:
    """Cleanup after a failure: nothing of ours may outlive the test."""
    try:
        os.killpg(product.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    product.proc.wait(timeout=10)


# --- processes, read from /proc ----------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    session: int
    state: str
    started: int  # clock ticks after boot: tells a reused pid from the original
    cmdline: str


def processes() -> dict[int, Proc]:
    found: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        found[int(entry.name)] = Proc(pid=int(entry.name), ppid=int(fields[1]), session=int(fields[3]),
                                      state=fields[0], started=int(fields[19]), cmdline=cmdline)
    return found


def descendants(pid: int) -> list[Proc]:
    table = processes()
    out: list[Proc] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p in table.values() if p.ppid == parent]
        out += kids
        frontier += [k.pid for k in kids]
    return out


def still_running(known: list[Proc], session: int) -> list[Proc]:
    """Processes of the product still alive: any of ``known``, or anything left in its session.

    A zombie is not running (in a container nobody may reap it).
    """
    table = processes()
    alive = [p for p in table.values() if p.state != "Z"]
    same = [p for p in alive if any(p.pid == k.pid and p.started == k.started for k in known)]
    return same + [p for p in alive if p.session == session and p not in same]


# --- the browser ---------------------------------------------------------------------------------


@contextmanager
def chromium(user_data_dir: Path) -> Iterator[BrowserContext]:
    """Debian's chromium (never a downloaded one), a fresh profile, UTC so times read as stored."""
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=False,
            viewport={"width": 1600, "height": 1000}, timezone_id="UTC", accept_downloads=True,
        )
        try:
            yield context
        finally:
            context.close()


def grid_rows(grid: Locator) -> list[dict[str, str]]:
    """The rows a canvas grid (glide-data-grid) currently renders, by column title.

    The canvas carries an accessibility table with the cells in view; it is the only DOM text
    of st.dataframe, and it holds the unformatted values (odds as stored, not rounded).
    """
    table = grid.locator("table").first
    if table.count() == 0:
        return []
    return table.evaluate("""t => {
        const heads = {};
        t.querySelectorAll('thead th').forEach(th => { heads[th.getAttribute('aria-colindex')] = th.textContent; });
        return Array.from(t.querySelectorAll('tbody tr')).map(tr => {
            const row = {};
            tr.querySelectorAll('td').forEach(td => {
                const name = heads[td.getAttribute('aria-colindex')];
                if (name !== undefined) row[name] = td.textContent;
            });
            return row;
        });
    }""")


def keyed(page: Page, key: str) -> Locator:
    """A keyed widget's container: Streamlit marks it ``st-key-<key>`` (a plain st.dataframe gets no mark)."""
    return page.locator(f".st-key-{key}")


def metric(page: Page, label: str) -> str | None:
    found = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^{re.escape(label)}$")))
    if found.count() == 0:
        return None
    return found.first.locator('[data-testid="stMetricValue"]').inner_text().strip()


def exceptions(page: Page) -> list[str]:
    return page.locator(EXCEPTION).all_inner_texts()
