"""Model servers end to end: the real CLI in a subprocess against stand-ins on loopback.

OpenAI-compatible servers sort the inbox as Ollama does; two Ollama hosts share the work and one
may go away; `models` and `pull`; one num_ctx per model; and what is an attempt and what an outage
(a timeout while the server answers, a model that cannot load, a URL that is no model server).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.domain import RunStatus
from daemon.standin import StandinConfig, StandinServer
from tests.support import INVOICE, LETTER, RECEIPT, Home, free_port, make_home, wait_for
from tests.test_crash import DEADLINE, Daemon, all_runs, fast_home, finished, read_store

DOCS = {"invoice.txt": INVOICE, "receipt.md": RECEIPT, "letter.txt": LETTER}


def servers_env(home: Home, servers: dict[str, dict]) -> None:
    home.extra_env["GRISTMILL_SERVERS"] = json.dumps(servers)


def sorted_inbox(home: Home) -> dict[str, dict]:
    """Per file: where it went, its label and summary, and the servers its calls went to."""
    for name, text in DOCS.items():
        home.drop(name, text)
    result = home.cli("run", "--once")
    assert result.returncode == 0, result.stderr
    outcome = {}
    for run in home.runs():
        shown = json.loads(home.cli("show", str(run["id"]), "--json", check=True).stdout)
        outcome[Path(run["input"]).name] = {
            "status": run["status"],
            "attempts": run["attempts"],
            "label": run["outputs"]["kind"]["label"],
            "summary": run["outputs"]["summary"]["text"],
            "destination": str(Path(run["outputs"]["filed"]["destination"]).relative_to(home.root)),
            "servers": {c["server"] for c in shown["calls"]},
        }
    return outcome


@pytest.mark.parametrize("quirks", [[], ["refuse_json_schema"]])
def test_an_openai_compatible_server_sorts_the_inbox_exactly_as_ollama(tmp_path, standin, quirks):
    reference = make_home(tmp_path / "ollama", standin.url)
    reference.use_example("sort-inbox.yaml")
    expected = sorted_inbox(reference)

    config = StandinConfig(api="openai", models=["llama3.2"], quirks=set(quirks))
    with StandinServer(config) as lmstudio:
        home = make_home(tmp_path / "openai", f"http://127.0.0.1:{free_port()}")  # no Ollama anywhere
        home.use_example("sort-inbox.yaml")
        servers_env(home, {"lmstudio": {"kind": "openai", "url": f"{lmstudio.url}/v1", "slots": 2}})
        got = sorted_inbox(home)
        assert not any(r["path"].startswith("/api/") for r in lmstudio.recorded())

    assert {name: r["servers"] for name, r in expected.items()} == dict.fromkeys(DOCS, {"local"})
    assert {name: r["servers"] for name, r in got.items()} == dict.fromkeys(DOCS, {"lmstudio"})
    drop = lambda outcome: {n: {k: v for k, v in r.items() if k != "servers"} for n, r in outcome.items()}  # noqa: E731
    assert drop(got) == drop(expected)
    assert got["invoice.txt"]["destination"] == "Documents/Invoices/invoice.txt" and got["invoice.txt"]["attempts"] == 1


def test_two_ollama_hosts_share_the_work_and_one_going_away_costs_no_attempt(tmp_path):
    hosts = [StandinServer(StandinConfig(latency=0.3, slots=4)).start() for _ in range(2)]
    a, b = hosts
    home = fast_home(tmp_path, f"http://127.0.0.1:{free_port()}")
    servers_env(home, {"a": {"url": a.url, "slots": 2}, "b": {"url": b.url, "slots": 2}})
    daemon = Daemon(home).start()
    try:
        wait_for(lambda: "gristmill ready" in daemon.log, timeout=DEADLINE, what="the daemon to be ready")
        for n in range(16):
            home.drop(f"letter-{n:02d}.txt", f"{LETTER}\nLetter number {n}.\n")
        wait_for(lambda: len(b.recorded()) >= 4, timeout=DEADLINE, what="host b to take some of the work")
        b.stop()  # mid-way: calls in flight on b are cut
        wait_for(lambda: finished(home, 16), timeout=DEADLINE, what="every run")
        assert daemon.stop() == 0
    finally:
        daemon.kill()
        for host in hosts:
            host.stop()

    runs = all_runs(home)
    assert len(runs) == 16 and {r.status for r in runs} == {RunStatus.SUCCEEDED}
    assert {r.attempts for r in runs} == {1}  # b going away used up no attempt
    store = read_store(home)
    servers = [c.server for r in runs for c in store.calls(r.id)]
    store._engine.dispose()
    assert servers.count("a") > 0 and servers.count("b") > 0
    lines = daemon.log.splitlines()
    assert sum("model server 'b' unavailable" in line for line in lines) == 1, daemon.log
    assert "model servers: a " in daemon.log and "b " in daemon.log


def test_models_lists_every_server_and_pull_shows_progress(tmp_path, standin):
    standin.config.update({"pull_steps": 3, "pull_interval": 0.01})
    home = make_home(tmp_path, standin.url)
    dead = f"http://127.0.0.1:{free_port()}"
    servers_env(home, {"gpu": {"url": standin.url, "slots": 4}, "old": {"url": dead}})

    listed = json.loads(home.cli("models", "--json", check=True).stdout)

    gpu, old = listed
    assert (gpu["server"], gpu["up"], gpu["version"], gpu["slots"]) == ("gpu", True, "0.12.6", 4)
    assert gpu["models"][0] | {"size": None} == {
        "name": "llama3.2:latest",
        "size": None,
        "parameter_size": "3.2B",
        "quantisation": "Q4_K_M",
        "context_length": 8192,
        "capabilities": ["completion"],
        "loaded": None,
    }
    assert (old["server"], old["up"], old["models"]) == ("old", False, [])
    assert "unreachable" in old["error"]

    pulled = home.cli("pull", "hf.co/bob/Tiny-GGUF:Q4_K_M", "--server", "gpu")

    assert pulled.returncode == 0, pulled.stderr
    assert "pulling manifest" in pulled.stderr and "success" in pulled.stderr and "GB" in pulled.stderr
    assert "hf.co/bob/Tiny-GGUF:Q4_K_M is on server gpu" in pulled.stdout
    after = json.loads(home.cli("models", "--json", check=True).stdout)
    assert "hf.co/bob/Tiny-GGUF:Q4_K_M" in [m["name"] for m in after[0]["models"]]
    ambiguous = home.cli("pull", "qwen3:8b")
    assert ambiguous.returncode == 2 and "--server gpu | old" in ambiguous.stderr


def test_pull_onto_an_openai_compatible_server_says_how_it_gets_models(tmp_path):
    home = make_home(tmp_path, f"http://127.0.0.1:{free_port()}")
    servers_env(home, {"lmstudio": {"kind": "openai", "url": f"http://127.0.0.1:{free_port()}/v1"}})

    result = home.cli("pull", "qwen3:8b")

    assert result.returncode == 2 and "lms get" in result.stderr and "Traceback" not in result.stderr


def test_one_num_ctx_per_model_across_short_and_long_documents(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.use_example("sort-inbox.yaml")
    home.extra_env["GRISTMILL_CONTEXT_TOKENS"] = "1024"  # the long one is summarised in pieces
    home.drop("short.txt", LETTER)
    home.drop("long.txt", "\n\n".join(f"Paragraph {i}. " + " ".join(f"w{i}-{j}" for j in range(80)) for i in range(40)))

    home.cli("run", "--once", check=True)
    home.drop("another.txt", RECEIPT)
    home.cli("run", "--once", check=True)  # a second process decides the same

    long_run = next(r for r in home.runs() if r["input"].endswith("long.txt"))
    assert long_run["outputs"]["summary"]["split"]["strategy"] == "map-reduce"
    assert set(standin.loaded.num_ctx_sent("llama3.2")) == {1024}
    assert standin.loaded.loads("llama3.2") == 1 and standin.loaded.reloads("llama3.2") == 0


def test_a_timeout_while_the_server_answers_is_an_attempt_naming_the_setting(tmp_path, standin):
    standin.config.update({"quirks": ["stall"], "stall_seconds": 60})
    home = make_home(tmp_path, standin.url)
    home.use_example("sort-inbox.yaml")
    home.extra_env.update(GRISTMILL_MODEL_TIMEOUT="1", GRISTMILL_MAX_ATTEMPTS="2")
    home.drop("letter.txt", LETTER)

    result = home.cli("run", "--once")

    assert result.returncode == 1
    (run,) = home.runs()
    assert (run["status"], run["attempts"]) == ("failed", 2)
    assert "sent nothing for 1 s although the server answers; raise GRISTMILL_MODEL_TIMEOUT" in run["error"]


def test_a_model_that_cannot_load_fails_with_the_model_problem(tmp_path, standin):
    standin.config.unloadable = ["llama3.2"]
    home = make_home(tmp_path, standin.url)
    home.use_example("sort-inbox.yaml")
    home.extra_env["GRISTMILL_MAX_ATTEMPTS"] = "2"
    home.drop("letter.txt", LETTER)

    home.cli("run", "--once")

    (run,) = home.runs()
    assert (run["status"], run["attempts"]) == ("failed", 2)
    assert "could not run model 'llama3.2' (llama runner process has terminated" in run["error"]
    assert "smaller model or quantisation" in run["error"]


@pytest.mark.parametrize("mode", ["html", "501", "garbage"])
def test_a_url_that_is_no_model_server_keeps_runs_queued_until_it_is_one(tmp_path, standin, mode):
    standin.config.impostor = mode
    home = make_home(tmp_path, standin.url)
    home.use_example("sort-inbox.yaml")
    home.drop("letter.txt", LETTER)
    sentence = f"the model server 'local' at {standin.url} answers but is not an Ollama server"

    checked = home.cli("check")
    waiting = home.cli("run", "--once")

    assert checked.returncode == 1 and sentence in checked.stdout and "<" not in checked.stdout
    assert "point GRISTMILL_OLLAMA_URL at the server and restart gristmill" in checked.stdout
    assert waiting.returncode == 1
    assert sum(sentence in line for line in waiting.stderr.splitlines()) == 2  # the log line, the summary
    (run,) = home.runs()
    assert (run["status"], run["attempts"]) == ("queued", 0) and sentence in run["error"]
    shown = home.cli("show", str(run["id"]), "--json", check=True).stdout
    assert "<" not in run["error"] and "nginx" not in shown and "DOCTYPE" not in shown

    standin.config.impostor = None  # the URL is a model server now
    assert home.cli("run", "--once").returncode == 0
    assert home.runs()[0]["status"] == "succeeded"


def test_a_pinned_server_that_does_not_exist_is_a_workflow_error(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.write_workflow("pinned.yaml", "name: pinned\nmodel: llama3.2@gpu\ntrigger: {watch: {path: ~/Inbox}}\n"
                        "steps:\n  - summarise: {}\n")  # fmt: skip

    result = home.cli("check")

    assert result.returncode == 2
    assert "pinned.yaml, line 2, key 'model': 'gpu' after @ is not a configured model server (servers: local)" in (
        result.stdout
    )
