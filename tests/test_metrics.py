"""/metrics of a real daemon, read with prometheus_client's own parser: the counts equal what happened."""

from __future__ import annotations

import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from daemon.domain import RunStatus
from daemon.metrics import Metrics, expect, install, run_finished
from tests.dashboard_support import serve, wait_finished
from tests.support import INVOICE, LETTER, RECEIPT
from tests.test_crash import fast_home

NAMES = {
    "gristmill_runs", "gristmill_run_duration_seconds", "gristmill_model_calls",
    "gristmill_model_call_duration_seconds", "gristmill_model_tokens", "gristmill_queue_depth",
    "gristmill_model_server_up",
}  # fmt: skip


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_counts_equal_what_happened(tmp_path, standin):
    home = fast_home(tmp_path, standin.url)
    daemon, base = serve(home)
    try:
        home.drop("invoice.txt", INVOICE)
        home.drop("receipt.md", RECEIPT)
        home.drop("letter.txt", LETTER)
        home.drop("broken.pdf", "%PDF-1.7\nthis is not a PDF body at all\n")
        wait_finished(home, 4)
        text = httpx.get(base + "/metrics").text
    finally:
        daemon.stop()

    families = {family.name for family in text_string_to_metric_families(text)}
    assert families == NAMES
    samples = _samples(text)
    runs = home.runs()
    statuses = [r["status"] for r in runs]
    assert statuses.count("succeeded") == 3 and statuses.count("failed") == 1
    wf = ("workflow", "sort-inbox")
    assert samples[("gristmill_runs_total", (("status", "succeeded"), wf))] == 3
    assert samples[("gristmill_runs_total", (("status", "failed"), wf))] == 1
    assert samples[("gristmill_run_duration_seconds_count", ())] == 4

    calls = [c for r in runs for c in json.loads(home.cli("show", str(r["id"]), "--json", check=True).stdout)["calls"]]
    model = (("model", "llama3.2"), ("outcome", "ok"), ("server", "local"))
    assert samples[("gristmill_model_calls_total", model)] == len(calls) == 6  # summary and classify, 3 times
    labels = (("model", "llama3.2"), ("server", "local"))
    assert samples[("gristmill_model_call_duration_seconds_count", labels)] == len(calls)
    tokens_in = sum(c["prompt_tokens"] for c in calls)
    tokens_out = sum(c["completion_tokens"] for c in calls)
    assert samples[("gristmill_model_tokens_total", (("direction", "in"), *labels))] == tokens_in
    assert samples[("gristmill_model_tokens_total", (("direction", "out"), *labels))] == tokens_out
    assert samples[("gristmill_queue_depth", (wf,))] == 0
    assert samples[("gristmill_model_server_up", (("server", "local"),))] == 1


def test_events_before_the_dashboard_is_up_are_counted_not_lost():
    """The daemon's workers may end runs while the dashboard's thread is still importing."""
    from daemon.domain import Origin, Run

    run = Run(1, "w", RunStatus.SUCCEEDED, Origin.FILE, None, None, None, {}, {}, 1, 3, None,
              None, None, None, None, None, None)  # type: ignore[arg-type]  # fmt: skip
    run_finished(run, RunStatus.SUCCEEDED, 1.0)  # nobody expects metrics: dropped
    expect()
    run_finished(run, RunStatus.SUCCEEDED, 2.0)
    run_finished(run, RunStatus.FAILED, 3.0)
    metrics = Metrics(queue_depth=dict, servers_up=dict)
    install(metrics)
    try:
        run_finished(run, RunStatus.SUCCEEDED, 4.0)
        samples = _samples(metrics.exposition()[0].decode())
    finally:
        install(None)
    assert samples[("gristmill_runs_total", (("status", "succeeded"), ("workflow", "w")))] == 2
    assert samples[("gristmill_runs_total", (("status", "failed"), ("workflow", "w")))] == 1
    assert samples[("gristmill_run_duration_seconds_sum", ())] == 9.0
