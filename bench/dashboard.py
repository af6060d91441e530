"""The dashboard's scenarios: what it costs an idle daemon and its start-up, and pages over 100,000 runs."""

from __future__ import annotations

import json
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx

from bench.harness import BenchHome, Daemon, free_port, polls, wait_until
from daemon.store.searchtext import name_words, output_words

WORKFLOWS = ("sort-inbox", "invoices", "daily-digest")
WORDS = (
    "payment invoice receipt letter contract renewal insurance policy bakery garden kitten meeting schedule "
    "delivery order shipment refund account statement balance tax return council parking permit school "
    "newsletter appointment doctor dentist pharmacy prescription warranty repair plumber electricity water "
    "heating rent landlord tenant deposit salary payslip pension bank transfer reminder overdue notice"
).split()
LABELS = ("invoice", "receipt", "letter")
VENDORS = ("ACME Tools GmbH", "Globex Corporation", "Initech", "Corner Bakery", "Umbrella Insurance")


def _until_page(url: str, timeout: float = 60) -> None:
    def answers() -> bool:
        try:
            return polls().get(url, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout, f"{url} to answer")


def dashboard_idle(sizes) -> dict[str, float]:
    """The idle scenario's daemon with the dashboard on and its stack loaded (one page viewed)."""
    from bench.scenarios import idle_home, idle_window, standin

    port = free_port()
    with standin() as url:
        daemon = Daemon(idle_home(), url, http=f"127.0.0.1:{port}")
        daemon.wait_ready()
        _until_page(f"http://127.0.0.1:{port}/")
        return idle_window(daemon, sizes)


def dashboard_startup(sizes) -> dict[str, float]:
    """Launch to the ready line, and to the first page served, with the dashboard on."""
    from bench.scenarios import CLASSIFY_WORKFLOW, standin

    home = BenchHome()
    home.workflow("bench", CLASSIFY_WORKFLOW.format(name="bench", folder="Inbox"))
    ready, page = [], []
    with standin() as url:
        for _ in range(sizes.startups):
            port = free_port()
            daemon = Daemon(home, url, http=f"127.0.0.1:{port}")
            ready.append(daemon.wait_ready())
            _until_page(f"http://127.0.0.1:{port}/healthz")
            page.append(time.monotonic() - daemon.launched)
            daemon.stop()
    return {"ready_s": statistics.median(ready), "first_page_s": statistics.median(page)}


def fill(home: BenchHome, count: int, seed: int = 7) -> None:
    """`count` finished runs with summaries, labels and fields, written through the schema's own triggers."""
    subprocess.run([sys.executable, "-m", "daemon", "db", "upgrade"], env=home.env("http://127.0.0.1:9", 1),
                   check=True, capture_output=True)  # fmt: skip
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=30)
    rows = []
    for n in range(1, count + 1):
        rows.append(_row(rng, n, start + timedelta(seconds=n * 30 * 86400 / count)))
        if len(rows) == 5000 or n == count:
            with sqlite3.connect(home.db) as conn:
                conn.executemany(
                    "INSERT INTO runs (workflow, status, trigger, input_path, sha256, dedupe_key, context, outputs,"
                    " attempts, max_attempts, error, created_at, started_at, finished_at, search_name, search_text)"
                    " VALUES (?, ?, 'file', ?, ?, ?, '{}', ?, 1, 3, ?, ?, ?, ?, ?, ?)", rows,
                )  # fmt: skip
            rows = []


def _row(rng: random.Random, n: int, created: datetime) -> tuple:
    workflow = WORKFLOWS[n % 3]
    failed = rng.random() < 0.03
    name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{n}.pdf"
    summary = " ".join(rng.choice(WORDS) for _ in range(40)).capitalize() + "."
    outputs = {
        "summary": {"text": summary},
        "kind": {"label": rng.choice(LABELS), "confidence": 0.9},
        "fields": {
            "vendor": rng.choice(VENDORS),
            "invoice_number": f"INV-{n:06d}",
            "total": round(rng.random() * 900, 2),
        },
    }
    path = f"/home/anna/Inbox/{name}"
    stamp = created.replace(tzinfo=None).isoformat(sep=" ")
    return (
        workflow, "failed" if failed else "succeeded", path, f"{n:064x}", f"{n:064x}", json.dumps(outputs),
        "the model's answer was unusable twice" if failed else None, stamp, stamp, stamp,
        name_words(path), output_words(outputs),
    )  # fmt: skip


PAGES = {
    "runs_first_ms": "/runs",
    "runs_deep_page_ms": "/runs?before={middle}",
    "runs_filtered_ms": "/runs?workflow=invoices&status=failed",
    "search_common_word_ms": "/runs?q=payment",
    "search_rare_ms": "/runs?q=INV-000777",
    "search_prefix_ms": "/runs?q=insur*",
    "search_phrase_ms": '/runs?q="bank+transfer"',
    "overview_ms": "/",
    "run_ms": "/runs/{middle}",
}


def dashboard_pages(sizes) -> dict[str, float]:
    """`gristmill web` over `sizes.dashboard_runs` recorded runs: medians of each page's load time."""
    home = BenchHome()
    fill(home, sizes.dashboard_runs)
    port = free_port()
    env = home.env("http://127.0.0.1:9", 1, http=f"127.0.0.1:{port}")
    web = subprocess.Popen([sys.executable, "-m", "daemon", "web"], env=env, cwd=home.root,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _until_page(base + "/healthz")
        middle = sizes.dashboard_runs // 2
        with httpx.Client(timeout=60) as client:
            return {key: _median_ms(client, base + path.format(middle=middle), sizes.page_requests)
                    for key, path in PAGES.items()} | {"runs": sizes.dashboard_runs}  # fmt: skip
    finally:
        web.terminate()
        web.wait(30)


def _median_ms(client: httpx.Client, url: str, times: int) -> float:
    client.get(url).raise_for_status()  # warm: the first view of a page loads its template
    took = []
    for _ in range(times):
        started = time.perf_counter()
        client.get(url).raise_for_status()
        took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took)
