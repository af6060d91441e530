"""Settings mistakes: one sentence naming the key, where it came from and what it takes; exit 2 everywhere."""

from __future__ import annotations

import ipaddress
import os

import pytest

from daemon.commands.check import run_check
from daemon.errors import SettingsError
from daemon.netguard import RemoteRefused, check_url, is_local
from daemon.settings import load_settings
from tests.support import make_home


@pytest.fixture
def home_dir(tmp_path, monkeypatch):
    """A clean environment (no GRISTMILL_*/OLLAMA_HOST) in an empty current folder."""
    for name in [n for n in os.environ if n.startswith("GRISTMILL_") or n == "OLLAMA_HOST"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GRISTMILL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error() -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_unknown_toml_key_suggests_the_setting_meant(home_dir):
    (home_dir / "gristmill.toml").write_text('modle = "qwen3:8b"\n')
    message = _error()
    assert message == "unknown setting 'modle' in gristmill.toml (did you mean 'model'?)"


def test_unknown_toml_key_without_a_close_match_lists_the_settings(home_dir):
    (home_dir / "gristmill.toml").write_text("colour = 3\n")
    message = _error()
    assert message.startswith("unknown setting 'colour' in gristmill.toml; the settings are: data_dir,")
    assert "GRISTMILL_COLOUR" not in message and "Extra inputs" not in message


def test_wrong_type_in_the_file_names_key_file_and_what_is_expected(home_dir):
    (home_dir / "gristmill.toml").write_text('concurrency = "many"\n')
    message = _error()
    assert message == (
        "setting 'concurrency' in gristmill.toml is invalid: expected a whole number, at least 1 and at most 256, "
        "got 'many'"
    )


PRICE = '[prices.my-api]\ninput = {input}\noutput = 1\nas_of = "2026-01-01"\n{source} = "https://example.org"\n'


def test_a_wrong_value_inside_a_table_names_its_path(home_dir):
    (home_dir / "gristmill.toml").write_text(PRICE.format(input='"cheap"', source="source"))
    assert _error() == "setting 'prices.my-api.input' in gristmill.toml is invalid: expected a number, got 'cheap'"


def test_a_misspelt_key_inside_a_table_suggests_the_key_meant(home_dir):
    (home_dir / "gristmill.toml").write_text(PRICE.format(input="1", source="sourc"))
    assert _error() == (
        "setting 'prices.my-api' in gristmill.toml is invalid: 'sourc' is not one of its keys (did you mean 'source'?)"
    )


def test_wrong_type_in_the_environment_names_the_variable(home_dir, monkeypatch):
    monkeypatch.setenv("GRISTMILL_MODEL_TIMEOUT", "soon")
    message = _error()
    assert message.startswith("setting 'model_timeout' from the environment (GRISTMILL_MODEL_TIMEOUT) is invalid:")
    assert "expected a number, more than 0, got 'soon'" in message


def test_an_enum_setting_lists_its_values(home_dir, monkeypatch):
    monkeypatch.setenv("GRISTMILL_LOG_FORMAT", "xml")
    assert _error().endswith("expected one of text, json, got 'xml'")


@pytest.mark.parametrize("url", ["not a url", "http//localhost:11434", "ftp://127.0.0.1:11434", "localhost:99999"])
def test_a_model_url_that_is_not_a_url_says_so_not_that_documents_leave_home(home_dir, monkeypatch, url):
    monkeypatch.setenv("GRISTMILL_OLLAMA_URL", url)
    message = _error()
    assert message.startswith("setting 'ollama_url' from the environment (GRISTMILL_OLLAMA_URL) is invalid:")
    assert "http://127.0.0.1:11434" in message and "leave home" not in message


@pytest.mark.parametrize("url", ["http://127.0.0.1:11434", "127.0.0.1:11434", "localhost", "https://[::1]:8080/"])
def test_model_urls_ollama_accepts_are_accepted(home_dir, monkeypatch, url):
    monkeypatch.setenv("GRISTMILL_OLLAMA_URL", url)
    assert load_settings().ollama_url == url


def test_a_bad_ollama_host_is_named_as_the_source(home_dir, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "my laptop")
    assert _error().startswith("setting 'ollama_url' from the environment (OLLAMA_HOST) is invalid: 'my laptop'")


@pytest.mark.parametrize("url", ["notaurl", "nosuchdb://x/y"])
def test_a_database_url_that_is_not_a_url(home_dir, monkeypatch, url):
    monkeypatch.setenv("GRISTMILL_DATABASE_URL", url)
    message = _error()
    assert message.startswith("setting 'database_url' from the environment (GRISTMILL_DATABASE_URL) is invalid:")
    assert "sqlite:////path/to/gristmill.db" in message


def test_a_data_dir_that_is_a_file(home_dir, monkeypatch):
    (home_dir / "afile").write_text("x")
    monkeypatch.setenv("GRISTMILL_DATA_DIR", str(home_dir / "afile"))
    assert f"{home_dir / 'afile'} is a file, not a folder" in _error()


def test_a_data_dir_that_cannot_be_created(home_dir, monkeypatch):
    (home_dir / "afile").write_text("x")
    monkeypatch.setenv("GRISTMILL_DATA_DIR", str(home_dir / "afile" / "data"))
    message = _error()
    assert message.startswith("setting 'data_dir' from the environment (GRISTMILL_DATA_DIR) is invalid:")
    assert f"cannot be created because {home_dir / 'afile'} is a file" in message


def test_the_data_dir_is_not_checked_when_a_database_url_is_given(home_dir, monkeypatch):
    (home_dir / "afile").write_text("x")
    monkeypatch.setenv("GRISTMILL_DATA_DIR", str(home_dir / "afile"))
    monkeypatch.setenv("GRISTMILL_DATABASE_URL", f"sqlite:///{home_dir / 'g.db'}")
    assert load_settings().db_url.endswith("g.db")


# --------------------------------------------------------------------------- local networks


def test_local_networks_from_env_and_file(home_dir, monkeypatch):
    monkeypatch.setenv("GRISTMILL_LOCAL_NETWORKS", "100.64.0.0/10, fd7a:115c:a1e0::/48")
    assert load_settings().local_networks == (
        ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("fd7a:115c:a1e0::/48"),
    )  # fmt: skip
    monkeypatch.delenv("GRISTMILL_LOCAL_NETWORKS")
    (home_dir / "gristmill.toml").write_text('local_networks = ["100.64.0.0/10"]\n')
    assert load_settings().local_networks == (ipaddress.ip_network("100.64.0.0/10"),)


def test_the_default_stays_strict(home_dir):
    assert load_settings().local_networks == ()
    assert not is_local("http://100.101.102.103:11434")


@pytest.mark.parametrize(
    ("value", "words"),
    [("banana", "'banana' is not a network in CIDR notation"), ("100.64.0.0/33", "not a network"),
     ("100.64.0.1/10", "has host bits set; did you mean 100.64.0.0/10?")],
)  # fmt: skip
def test_an_invalid_cidr_is_a_settings_error(home_dir, monkeypatch, value, words):
    monkeypatch.setenv("GRISTMILL_LOCAL_NETWORKS", value)
    message = _error()
    assert message.startswith("setting 'local_networks' from the environment (GRISTMILL_LOCAL_NETWORKS) is invalid:")
    assert words in message


def test_declared_networks_count_as_local_for_the_guard():
    tailnet = [ipaddress.ip_network("100.64.0.0/10")]
    assert is_local("http://100.101.102.103:11434", tailnet)
    assert not is_local("http://8.8.8.8", tailnet)
    check_url("http://100.101.102.103:11434", allowed=False, what="m", how_to_allow="x", local_networks=tailnet)
    with pytest.raises(RemoteRefused, match="GRISTMILL_LOCAL_NETWORKS"):
        check_url("http://100.101.102.103:11434", allowed=False, what="m", how_to_allow="x")


def test_check_counts_declared_networks_as_local(home_dir, monkeypatch, standin):
    workflows = home_dir / "workflows"
    workflows.mkdir()
    (workflows / "hook.yaml").write_text(
        "name: hook\ntrigger: {watch: {path: ~/in}}\nsteps:\n  - summarise: {}\n"
        "  - route: {default: {webhook: 'http://100.100.1.2:9000/hook'}}\n"
    )
    monkeypatch.setenv("GRISTMILL_WORKFLOWS", str(workflows))
    monkeypatch.setenv("GRISTMILL_OLLAMA_URL", standin.url)
    lines: list[str] = []
    assert run_check(load_settings(), lines.append) == 2  # strict by default: a remote webhook
    assert any("100.100.1.2" in line and line.startswith("error:") for line in lines)
    monkeypatch.setenv("GRISTMILL_LOCAL_NETWORKS", "100.64.0.0/10")
    lines.clear()
    assert run_check(load_settings(), lines.append) == 0, lines
    assert "declared local (GRISTMILL_LOCAL_NETWORKS): 100.64.0.0/10" in lines
    assert any("webhook traffic goes to http://100.100.1.2:9000/hook, on this machine" in line for line in lines)


# --------------------------------------------------------------------------- every command


COMMANDS = [
    ("run", "--once"), ("check",), ("workflows",), ("runs",), ("show", "1"), ("retry", "--failed"),
    ("prune",), ("db", "upgrade"), ("trigger", "sort-inbox"),
]  # fmt: skip


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_every_command_exits_2_with_one_sentence(tmp_path, args):
    home = make_home(tmp_path, "http://127.0.0.1:9")
    (home.root / "gristmill.toml").write_text('modle = "x"\n')
    result = home.cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr == "gristmill: unknown setting 'modle' in gristmill.toml (did you mean 'model'?)\n"


@pytest.mark.parametrize(
    ("env", "words"),
    [({"GRISTMILL_DATABASE_URL": "notaurl"}, "is not a database URL"),
     ({"GRISTMILL_OLLAMA_URL": "http//localhost"}, "is not a URL"),
     ({"GRISTMILL_LOCAL_NETWORKS": "banana"}, "not a network in CIDR notation")],
)  # fmt: skip
def test_bad_values_exit_2_from_the_cli(tmp_path, env, words):
    home = make_home(tmp_path, "http://127.0.0.1:9")
    home.extra_env.update(env)
    result = home.cli("runs")
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_a_data_dir_under_a_file_exits_2_from_the_cli(tmp_path):
    home = make_home(tmp_path, "http://127.0.0.1:9")
    (home.root / "blocker").write_text("x")
    home.extra_env["GRISTMILL_DATA_DIR"] = str(home.root / "blocker" / "data")
    result = home.cli("db", "upgrade")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is a file, not a folder" in result.stderr
