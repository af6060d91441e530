"""Model servers in the settings: `[servers.NAME]` in gristmill.toml, GRISTMILL_SERVERS, the default `local`."""

from __future__ import annotations

import json

import pytest

from daemon.errors import SettingsError, UsageError
from daemon.llm.configured import build_router
from daemon.settings import load_settings
from tests.support import LETTER, free_port, make_home

TOML = """
model = "llama3.2"
keep_alive = "1h"

[servers.gpu-box]
kind = "ollama"
url = "http://192.168.1.20:11434"
slots = 4

[servers.lmstudio]
kind = "openai"
url = "http://127.0.0.1:1234/v1/"
api_key_env = "LMSTUDIO_API_KEY"
"""


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment (no GRISTMILL_* or OLLAMA_HOST) and a working folder without a gristmill.toml."""
    import os

    for name in list(os.environ):
        if name.startswith(("GRISTMILL_", "OLLAMA_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_servers_from_the_toml_file(env, tmp_path):
    (tmp_path / "gristmill.toml").write_text(TOML)

    settings = load_settings()

    gpu, lmstudio = settings.model_servers.values()
    assert (gpu.name, gpu.kind, gpu.url, gpu.slots, gpu.api_key_env) == (
        "gpu-box", "ollama", "http://192.168.1.20:11434", 4, None)  # fmt: skip
    assert (lmstudio.name, lmstudio.kind, lmstudio.url, lmstudio.slots) == (
        "lmstudio", "openai", "http://127.0.0.1:1234/v1", 1)  # fmt: skip
    assert lmstudio.api_key_env == "LMSTUDIO_API_KEY" and gpu.url_setting == "servers.gpu-box.url"
    assert settings.keep_alive_value == "1h"


def test_servers_as_json_in_the_environment_win_over_the_file(env, tmp_path):
    (tmp_path / "gristmill.toml").write_text(TOML)
    env.setenv("GRISTMILL_SERVERS", json.dumps({"one": {"url": "http://127.0.0.1:11434", "slots": 3}}))

    (one,) = load_settings().model_servers.values()

    assert (one.name, one.kind, one.slots) == ("one", "ollama", 3)


def test_without_servers_there_is_local_at_the_ollama_url(env):
    env.setenv("OLLAMA_HOST", "0.0.0.0")
    env.setenv("GRISTMILL_CONCURRENCY", "3")

    settings = load_settings()

    (local,) = settings.model_servers.values()
    assert (local.name, local.kind, local.url, local.slots) == ("local", "ollama", "http://0.0.0.0:11434", 3)
    assert local.url_setting == "GRISTMILL_OLLAMA_URL" and settings.keep_alive_value == "30m"


@pytest.mark.parametrize(("servers", "message"), [
    ({"Bad Name": {"url": "http://127.0.0.1:1"}}, "'Bad Name' is not a server name"),
    ({"a": {"url": "127.0.0.1:1"}}, "is not an http:// or https:// URL"),
    ({"a": {"url": "http://127.0.0.1:1", "slots": 0}}, "servers.a.slots"),
    ({"a": {"url": "http://127.0.0.1:1", "api_key_env": "sk-123 secret"}}, "give the NAME of the variable"),
    ({"a": {"url": "http://127.0.0.1:1", "colour": "red"}},
     "'servers.a' from the environment (GRISTMILL_SERVERS) is invalid: 'colour' is not one of its keys"),
])  # fmt: skip
def test_a_bad_server_is_one_sentence_naming_it(env, servers, message):
    env.setenv("GRISTMILL_SERVERS", json.dumps(servers))
    with pytest.raises(SettingsError, match="GRISTMILL_SERVERS") as caught:
        load_settings()
    assert message in caught.value.message


def test_the_default_model_may_be_pinned_to_a_configured_server_only(env):
    env.setenv("GRISTMILL_SERVERS", json.dumps({"gpu": {"url": "http://127.0.0.1:1"}}))
    env.setenv("GRISTMILL_MODEL", "llama3.2@gpu")
    assert load_settings().model == "llama3.2@gpu"
    env.setenv("GRISTMILL_MODEL", "llama3.2@cpu")
    with pytest.raises(SettingsError, match="'cpu' after @ is not a configured server"):
        load_settings()


def test_keep_alive_takes_durations_and_seconds(env):
    for given, sent in (("30m", "30m"), ("1h30m", "1h30m"), ("-1", -1), ("600", 600)):
        env.setenv("GRISTMILL_KEEP_ALIVE", given)
        assert load_settings().keep_alive_value == sent
    env.setenv("GRISTMILL_KEEP_ALIVE", "forever")
    with pytest.raises(SettingsError, match="keep_alive"):
        load_settings()


def test_an_unknown_kind_and_a_missing_key_variable_are_settings_errors(env):
    env.setenv("GRISTMILL_SERVERS", json.dumps({"x": {"kind": "tgi", "url": "http://127.0.0.1:1"}}))
    with pytest.raises(SettingsError, match="kind 'tgi', which is not a model-server kind .known: ollama, openai"):
        build_router(load_settings())
    env.setenv("GRISTMILL_SERVERS", json.dumps({"x": {"kind": "openai", "url": "http://127.0.0.1:1/v1",
                                                      "api_key_env": "GM_TEST_KEY"}}))  # fmt: skip
    with pytest.raises(SettingsError, match="names api_key_env GM_TEST_KEY, which is not set"):
        build_router(load_settings())


def test_the_remote_guard_applies_to_every_server(env):
    servers = {"home": {"url": "http://127.0.0.1:11434"}, "cloud": {"url": "http://203.0.113.9:11434"}}
    env.setenv("GRISTMILL_SERVERS", json.dumps(servers))
    with pytest.raises(UsageError, match="the model server 'cloud' at http://203.0.113.9:11434 is not on this machine"):
        build_router(load_settings())
    env.setenv("GRISTMILL_ALLOW_REMOTE_MODEL", "true")
    assert [u.name for u in build_router(load_settings()).upstreams] == ["home", "cloud"]


def test_an_api_key_is_never_stored_logged_or_recorded(tmp_path):
    from daemon.standin import StandinConfig, StandinServer

    key = "sk-gristmill-test-7f3a9c"
    with StandinServer(StandinConfig(api="openai", api_key=key)) as server:
        home = make_home(tmp_path, f"http://127.0.0.1:{free_port()}")
        home.use_example("sort-inbox.yaml")
        lm = {"kind": "openai", "url": f"{server.url}/v1", "api_key_env": "LM_KEY"}
        home.extra_env.update(GRISTMILL_SERVERS=json.dumps({"lm": lm}), LM_KEY=key)
        home.drop("letter.txt", LETTER)
        ran = home.cli("run", "--once")
        checked = home.cli("check")
        shown = home.cli("show", "1", "--json")

    assert ran.returncode == 0, ran.stderr
    assert home.runs()[0]["status"] == "succeeded"
    for output in (ran.stdout, ran.stderr, checked.stdout, checked.stderr, shown.stdout):
        assert key not in output
    for path in home.data.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
