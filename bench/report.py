"""The benchmark result as a Markdown table, with the targets beside the figures."""

from __future__ import annotations

from typing import Any

# scenario → (figure, label, target text, is the target met?)
TARGETS: dict[str, list[tuple[str, str, str, Any]]] = {
    "overhead": [
        ("runs_per_s", "runs/s end to end", "≥ 300", lambda v: v >= 300),
        ("cpu_ms_per_run", "daemon CPU ms per run", "≤ 3", lambda v: v <= 3),
        ("switches_per_run", "voluntary context switches per run (hand-offs)", "", None),
        ("latency_p50_ms", "drop-to-done p50 ms", "", None),
        ("latency_p95_ms", "drop-to-done p95 ms", "", None),
        ("latency_p99_ms", "drop-to-done p99 ms", "", None),
        ("baseline_direct_calls_per_s", "baseline: direct client calls/s", "", None),
        ("ratio_to_direct", "daemon runs/s ÷ direct calls/s (2 threads)", "≥ 0.27", lambda v: v >= 0.27),
    ],
    "history": [
        *[
            (f"{figure}_{count}", f"{label}, {count:,} runs recorded before", "", None)
            for count in (0, 500, 100_000, 1_000_000)
            for figure, label in (("runs_per_s", "runs/s"), ("cpu_ms_per_run", "daemon CPU ms per run"))
        ],
        ("baseline_direct_calls_per_s", "baseline: direct client calls/s", "", None),
        ("runs_ratio_largest_to_empty", "runs/s, largest history ÷ empty", "≥ 0.9", lambda v: v >= 0.9),
        ("cpu_ratio_largest_to_empty", "CPU per run, largest history ÷ empty", "≤ 1.1", lambda v: v <= 1.1),
    ],
    "model_bound": [
        ("runs_per_s", "runs/s (ideal 20)", "", None),
        ("utilisation", "model utilisation", "≥ 0.98", lambda v: v >= 0.98),
        ("baseline_direct_calls_per_s", "baseline: direct client calls/s, 4 threads", "", None),
    ],
    "two_hosts": [
        ("runs_per_s", "runs/s (ideal 40)", "", None),
        ("utilisation", "combined utilisation of both hosts", "≥ 0.95", lambda v: v >= 0.95),
        ("share_on_a", "share of calls on host a", "", None),
        ("baseline_direct_calls_per_s", "baseline: direct client calls/s, 8 threads", "", None),
    ],
    "backlog": [
        ("first_call_s", "large backlog: launch to first model call s", "≤ 2", lambda v: v <= 2),
        ("runs_per_s", "large backlog: runs/s over the first runs (the folder's walk beside them)", "", None),
        ("runs_per_s_next", "large backlog: runs/s over as many runs next", "", None),
        ("all_queued_s", "large backlog: launch to every file queued s", "", None),
        ("peak_rss_mb", "large backlog: peak RSS MB", "≤ 150", lambda v: v <= 150),
        ("first_call_s_small", "small backlog: launch to first model call s", "", None),
        ("runs_per_s_small", "small backlog: runs/s over the first runs", "", None),
        ("runs_per_s_next_small", "small backlog: runs/s over as many runs next", "", None),
        ("peak_rss_mb_small", "small backlog: peak RSS MB", "", None),
        ("runs_ratio_large_to_small", "runs/s over the first runs, large ÷ small backlog", "≥ 1", lambda v: v >= 1),
        ("runs_ratio_next_large_to_small", "runs/s over the next runs, large ÷ small", "≥ 1", lambda v: v >= 1),
    ],
    "idle": [
        ("cpu_s_per_min", "CPU s per minute", "≤ 0.05", lambda v: v <= 0.05),
        ("rss_mb", "RSS MB", "", None),
    ],
    "scale": [
        ("runs_per_s_1_nodes", "runs/s, 1 worker node (ideal 20)", "", None),
        ("runs_per_s_2_nodes", "runs/s, 2 worker nodes (ideal 40)", "", None),
        ("runs_per_s_3_nodes", "runs/s, 3 worker nodes (ideal 60)", "", None),
        ("speedup_3_over_1", "3 nodes ÷ 1 node", "> 2.5", lambda v: v > 2.5),
        ("utilisation_3_nodes", "model utilisation, 3 nodes", "≥ 0.95", lambda v: v >= 0.95),
        ("baseline_direct_calls_per_s_12", "baseline: direct client calls/s, 12 threads", "", None),
        ("daemon_cpu_ms_per_run", "worker nodes' CPU ms per run (3 nodes)", "", None),
        ("postgres_cpu_ms_per_run", "PostgreSQL's CPU ms per run (3 nodes)", "", None),
        ("load_1m_at_start", "machine load (1-min average) at the start", "", None),
        ("ratio_3_nodes_to_direct", "3 nodes runs/s ÷ direct calls/s", "", None),
        ("instant_runs_per_s_4x4", "runs/s, instant model, 4 nodes × 4 workers", "", None),
        ("double_claims", "runs executed twice (daemons)", "0", lambda v: v == 0),
        ("claims_per_s_4x4", "bare claims/s, 4 processes × 4 threads", "", None),
        ("claim_p50_ms", "claim latency p50 ms", "", None),
        ("claim_p99_ms", "claim latency p99 ms", "", None),
        ("claim_double_claims", "ids claimed twice (bare claims)", "0", lambda v: v == 0),
        ("claim_missed", "queued runs never claimed", "0", lambda v: v == 0),
    ],
    "startup": [
        ("ready_s", "launch to ready s", "≤ 1", lambda v: v <= 1.0),
        ("baseline_python_s", "baseline: bare `python -c pass` s", "", None),
    ],
    "dashboard_idle": [
        ("cpu_s_per_min", "CPU s per minute, dashboard on", "≤ 0.05", lambda v: v <= 0.05),
        ("rss_mb", "RSS MB, dashboard on", "", None),
    ],
    "dashboard_startup": [
        ("ready_s", "launch to ready s, dashboard on", "≤ 1", lambda v: v <= 1.0),
        ("first_page_s", "launch to the first page served s", "", None),
    ],
    "dashboard_pages": [
        (key, label, target, check)
        for key, label, target, check in (
            ("runs_first_ms", "runs list, first page ms", "< 200", lambda v: v < 200),
            ("runs_deep_page_ms", "runs list, a page in the middle ms", "< 200", lambda v: v < 200),
            ("runs_filtered_ms", "runs list, workflow + status filter ms", "< 200", lambda v: v < 200),
            ("search_common_word_ms", "search, a word in every 4th run ms", "< 200", lambda v: v < 200),
            ("search_rare_ms", "search, one run ms", "< 200", lambda v: v < 200),
            ("search_prefix_ms", "search, a prefix ms", "< 200", lambda v: v < 200),
            ("search_phrase_ms", "search, a phrase ms", "< 200", lambda v: v < 200),
            ("overview_ms", "overview ms", "", None),
            ("run_ms", "one run ms", "", None),
        )
    ],
}


def markdown(document: dict[str, Any]) -> str:
    """One table: scenario, figure, median, target, met."""
    sizes = document["sizes"]
    lines = [
        f"Medians of {document['repeat']} runs, {document['when']}, {document['machine']['cpus']} CPUs, "
        f"Python {document['machine']['python']}; sizes {sizes}.",
    ]
    if strays := document["machine"].get("strays"):
        lines.append(f"Installed here, not on a fresh install, imported at every start: {', '.join(strays)}.")
    lines += ["", "| scenario | figure | median | target | met |", "|---|---|---|---|---|"]
    for scenario, result in document["results"].items():
        for key, label, target, check in TARGETS.get(scenario, []):
            value = result["median"].get(key)
            if value is None:
                continue
            met = "" if check is None else ("yes" if check(value) else "**no**")
            lines.append(f"| {scenario} | {label} | {value:.3g} | {target} | {met} |")
    return "\n".join(lines) + "\n"
