"""Routing over several servers, with real stand-ins on loopback: slots, pins, failover, outages, lists."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from daemon.domain import ModelCall
from daemon.engine.outage import OutageGate
from daemon.errors import ModelError, ModelMissing, ModelUnavailable
from daemon.llm.configured import build_router, kind_of
from daemon.llm.router import Router
from daemon.llm.upstream import Upstream
from daemon.settings import Settings
from daemon.standin import StandinConfig, StandinServer
from tests.support import free_port, wait_for


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pair():
    """Two Ollama stand-ins, `a` and `b`, each answering 4 at once."""
    servers = [StandinServer(StandinConfig(slots=4)).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


def settings_for(urls: dict[str, str], slots: int = 2, **extra) -> Settings:
    servers = {name: {"kind": "ollama", "url": url, "slots": slots} for name, url in urls.items()}
    return Settings(servers=servers, **{"connect_timeout": 1, "model_timeout": 10, **extra})


def router_for(urls: dict[str, str], slots: int = 2, clock: Clock | None = None, **extra) -> Router:
    """A router as the app builds it; with `clock`, gates and lists follow it (no jitter)."""
    settings = settings_for(urls, slots, **extra)
    if clock is None:
        return build_router(settings)
    upstreams = []
    for config in settings.model_servers.values():
        kind = kind_of(config)
        gate = OutageGate(cap=8, clock=clock, jitter=lambda: 1.0, name=config.name, url=config.url)
        upstreams.append(Upstream(config, kind, kind.backend(config, settings), gate, list_seconds=60, clock=clock))
    return Router(upstreams, model_timeout=settings.model_timeout)


def chat(router: Router, model: str = "llama3.2", text: str = "hello there") -> ModelCall:
    return router.chat(ModelCall(model=model, messages=[{"role": "user", "content": f"<document>{text}</document>"}]))


def test_calls_spread_over_both_servers_within_each_ones_slots(pair):
    a, b = pair
    for server in pair:
        server.config.latency = 0.3
    router = router_for({"a": a.url, "b": b.url}, slots=2)

    with ThreadPoolExecutor(6) as pool:
        calls = list(pool.map(lambda n: chat(router, text=f"doc {n}"), range(12)))

    assert {c.server for c in calls} == {"a", "b"}
    # Never more than a server's own slots: a third call to a server starts only once one of the two
    # before it has had its 0.3 s. (Its own count of calls in flight may see a third for the moment
    # between the client reading an answer's last line and the server's thread letting go of it.)
    for server in pair:
        started = sorted(r["time"] for r in server.recorded())
        assert all(third - first >= 0.25 for first, third in zip(started, started[2:], strict=False)), started
    assert len(a.recorded()) + len(b.recorded()) == 12
    assert router.slots == 4


def test_a_pinned_model_runs_only_on_its_server(pair):
    a, b = pair
    router = router_for({"a": a.url, "b": b.url})

    calls = [chat(router, model="llama3.2@b") for _ in range(3)]

    assert [c.server for c in calls] == ["b"] * 3 and [c.model for c in calls] == ["llama3.2"] * 3
    assert a.recorded() == [] and len(b.recorded()) == 3
    with pytest.raises(ModelError, match="'nowhere' in 'llama3.2@nowhere' is not a configured model server"):
        chat(router, model="llama3.2@nowhere")


def test_a_model_only_one_server_has_goes_there_and_one_none_has_is_missing(pair):
    a, b = pair
    b.config.models = ["qwen3:8b"]
    router = router_for({"a": a.url, "b": b.url})

    assert chat(router, model="qwen3:8b").server == "b"
    assert chat(router, model="llama3.2").server == "a"
    with pytest.raises(ModelMissing, match="run: gristmill pull mistral"):
        chat(router, model="mistral")


def test_a_server_that_goes_away_mid_call_hands_the_call_to_the_other(pair):
    a, b = pair
    a.config.latency = 30  # the call hangs on a until a goes away
    router = router_for({"a": a.url, "b": b.url})
    result: list[ModelCall] = []
    worker = threading.Thread(target=lambda: result.append(chat(router)))
    worker.start()
    wait_for(lambda: a.calls_in_flight == 1, what="the call to reach server a")

    a.stop()
    worker.join(30)

    (call,) = result
    assert call.server == "b" and call.answer == "hello there" and call.error is None
    assert router.by_name["a"].gate.is_down and not router.is_down and router.partly_down
    assert chat(router).server == "b"  # a is not tried again before its backoff ends


def test_when_every_server_is_away_runs_wait_and_one_probe_at_a_time():
    clock = Clock()
    router = router_for({"a": f"http://127.0.0.1:{free_port()}", "b": f"http://127.0.0.1:{free_port()}"}, clock=clock)

    with pytest.raises(ModelUnavailable) as away:
        chat(router)

    assert away.value.retry_after == pytest.approx(1.0)  # each server: first backoff, 1 s
    assert router.is_down and "unreachable" in router.reason
    assert router.may_call()[0] is False  # nothing is due: workers sleep, no busy loop
    clock.now += 1.0
    assert router.may_call() == (True, 0.0)  # one worker may probe...
    assert router.may_call()[0] is False  # ...and only one
    with pytest.raises(ModelUnavailable) as again:
        chat(router)
    assert again.value.retry_after == pytest.approx(2.0)  # the backoff grew
    assert router.down("why", again.value.retry_after) == pytest.approx(2.0)


def test_a_server_back_from_an_outage_is_used_again(pair):
    a, b = pair
    clock = Clock()
    router = router_for({"a": a.url, "b": b.url}, clock=clock)
    port = a.port
    a.stop()
    assert chat(router).server == "b"
    again = StandinServer(port=port).start()
    try:
        assert chat(router).server == "b"  # a's probe is not due yet
        clock.now += 1.0
        assert chat(router).server == "a"  # the due probe goes first, and a is up again
        assert not router.partly_down
    finally:
        again.stop()


def test_a_model_pulled_later_is_found_without_a_restart(pair):
    a, _ = pair
    clock = Clock()
    router = router_for({"a": a.url}, clock=clock)
    with pytest.raises(ModelMissing):
        chat(router, model="tiny:1b")

    a.config.add_model("tiny:1b")
    clock.now += 6  # older than the few seconds a "missing" answer trusts a list
    assert chat(router, model="tiny:1b").server == "a"


def test_a_timeout_while_the_server_answers_is_an_attempt_naming_the_setting(pair):
    a, _ = pair
    a.config.update({"quirks": ["stall"], "stall_seconds": 30})
    router = router_for({"a": a.url}, model_timeout=1)
    call = ModelCall(model="llama3.2", messages=[{"role": "user", "content": "hi"}])

    with pytest.raises(ModelError) as caught:
        router.chat(call)

    assert not isinstance(caught.value, ModelUnavailable)
    assert "GRISTMILL_MODEL_TIMEOUT" in caught.value.message and "sent nothing for 1 s" in caught.value.message
    assert call.error == caught.value.message and not router.partly_down


def test_a_url_that_is_no_model_server_is_down_and_the_other_answers(pair):
    a, b = pair
    a.config.impostor = "html"
    router = router_for({"a": a.url, "b": b.url})

    assert chat(router).server == "b"
    reason = router.by_name["a"].gate.reason
    assert "answers but is not an Ollama server" in reason and "<" not in reason


def test_workers_follow_the_slots_of_all_servers():
    from daemon.app import workers_for

    # one spare worker per four slots (at least one) files and records while the others hold the model
    assert [workers_for(slots) for slots in (1, 2, 4, 8, 16)] == [2, 3, 5, 10, 20]


def test_a_spare_slot_is_taken_only_when_free_and_never_waited_for(pair):
    a, _ = pair
    router = router_for({"a": a.url}, slots=1)
    with router.spare_slot() as spare:
        assert spare is not None and chat(spare).server == "a"  # free: a shadow call goes through
        a.config.latency = 30  # a run's call now holds the only slot
        outcome: list[object] = []
        worker = threading.Thread(target=lambda: outcome.append(_attempt(lambda: chat(router))))
        worker.start()
        wait_for(lambda: a.calls_in_flight == 1, what="the run's call to hold the slot")
        with pytest.raises(ModelUnavailable, match="has a free slot now"):
            chat(spare)  # taken meanwhile: the shadow call does not wait
    with router.spare_slot() as none_free:
        assert none_free is None
    a.stop()  # ends the held call
    worker.join(30)
    assert isinstance(outcome[0], ModelUnavailable)


def _attempt(call):
    try:
        return call()
    except ModelError as exc:
        return exc
