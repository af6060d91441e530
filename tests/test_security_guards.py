"""The guards themselves: path confinement, the local-network check, webhooks, workflow keys.

No test here opens a connection: every address other than 127.0.0.1 appears only as a literal the
guards refuse before anything is contacted (the injected `post` proves nothing was sent).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

from daemon.actions import ActionServices
from daemon.actions.webhook import Webhook, check_webhook
from daemon.engine.effects import Effects
from daemon.errors import UnsafePathError, WorkflowError
from daemon.files.paths import confine, static_base
from daemon.netguard import RemoteRefused, addresses_of, check_url, is_local
from daemon.steps import StepContext
from daemon.workflow import Workflow
from tests.support import make_home

# --------------------------------------------------------------------------- confine


@pytest.fixture
def base(tmp_path: Path) -> Path:
    folder = tmp_path / "Docs"
    folder.mkdir()
    return folder


def test_static_base_is_the_folder_before_the_first_tag(base):
    assert static_base(f"{base}/{{{{ fields.vendor }}}}") == base
    assert static_base(f"{base}/Invoices") == base / "Invoices"
    assert static_base("~/Docs/{{ x }}") == Path(os.path.expanduser("~/Docs"))


@pytest.mark.parametrize("answer", ["../../etc", "..", "a/../../b", "x/../../../etc/passwd", ".\x00.", ".\n./x"])
def test_model_output_that_leaves_the_folder_is_refused(base, answer):
    with pytest.raises(UnsafePathError) as caught:
        confine(f"{base}/{answer}", f"{base}/{{{{ fields.vendor }}}}")
    message = str(caught.value)
    assert "leaves its folder" in message and str(base) in message and "| slug" in message


def test_model_output_that_is_an_absolute_path_is_refused(base):
    with pytest.raises(UnsafePathError, match="leaves its folder"):
        confine(f"{base}//etc", f"{base}/{{{{ fields.vendor }}}}")


def test_an_absolute_rendered_path_elsewhere_is_refused(base, tmp_path):
    with pytest.raises(UnsafePathError, match="leaves its folder"):
        confine(str(tmp_path / "elsewhere"), f"{base}/{{{{ x }}}}")


def test_control_characters_and_nul_below_the_base_are_removed(base):
    template = f"{base}/{{{{ file.stem }}}}.md"
    assert confine(f"{base}/bell\x07 esc\x1b[31m nul\x00 tab\t.md", template) == base / "bell esc[31m nul tab.md"


def test_a_name_longer_than_255_bytes_is_refused_with_the_fix(base):
    with pytest.raises(UnsafePathError, match="longer than 255 bytes"):
        confine(f"{base}/{'é' * 200}", f"{base}/{{{{ fields.vendor }}}}")
    assert confine(f"{base}/{'a' * 255}", f"{base}/{{{{ x }}}}") == base / ("a" * 255)


def test_a_symlink_below_the_base_is_refused(base, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (base / "sneaky").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        confine(f"{base}/sneaky/sub", f"{base}/{{{{ fields.vendor }}}}")
    assert list(outside.iterdir()) == []


def test_a_plain_subfolder_is_allowed(base):
    assert confine(f"{base}/acme/2026", f"{base}/{{{{ v }}}}/2026") == base / "acme" / "2026"


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:11434", "http://localhost:11434", "http://[::1]:8080/x", "http://192.168.1.20:11434",
     "http://10.0.0.5", "http://172.16.3.4", "http://169.254.1.1", "http://[fd12::1]/", "127.0.0.1:11434"],
)  # fmt: skip
def test_local_addresses_are_local(url):
    assert is_local(url)


@pytest.mark.parametrize(
    "url",
    # 203.0.113.0/24 and 198.18.0.0/15 count as "private" for Python's ipaddress; not for us.
    ["http://203.0.113.5/", "http://198.51.100.7:11434", "http://198.18.0.1", "http://8.8.8.8",
     "http://100.64.0.1", "http://[::ffff:8.8.8.8]/", "http://[2001:db8::1]/", "http:///nohost"],
)  # fmt: skip
def test_remote_addresses_are_not_local(url):
    assert not is_local(url)


def _names(table: dict[str, list[str]]):
    """A resolver for names this test controls (the system's hosts file is not ours to edit)."""

    def resolve(host: str) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


def test_a_host_name_is_local_only_when_every_address_it_names_is_local():
    resolve = _names({
        "nas.home": ["192.168.1.20", "fd12::20"], "split.example": ["127.0.0.1", "203.0.113.5"],
        "far.example": ["203.0.113.5"], "v6far.example": ["::1", "2001:db8::1"], "empty.example": [],
    })  # fmt: skip
    assert is_local("http://nas.home:11434", resolve=resolve)
    for host in ("split.example", "far.example", "v6far.example", "empty.example", "unknown.example"):
        assert not is_local(f"http://{host}:11434", resolve=resolve), host
    assert is_local("http://far.example", [ipaddress.ip_network("203.0.113.0/24")], resolve=resolve)


def test_localhost_names_and_address_literals_are_decided_without_asking_the_resolver():
    refuse = _names({})  # a resolver that knows no name: only names that need no lookup can pass
    for url in ("http://localhost:11434", "http://ollama.localhost/", "http://127.0.0.1:11434", "http://[::1]/"):
        assert is_local(url, resolve=refuse), url
    assert not is_local("http://localhost.example", resolve=refuse)
    assert not is_local("http://203.0.113.5", resolve=_names({"203.0.113.5": ["127.0.0.1"]}))


def test_the_system_resolver_names_localhost_and_nothing_leaves_the_machine():
    # The one name every machine resolves, through the real resolver (is_local treats "localhost" itself
    # as local without asking, so ask for its addresses directly).
    assert {ipaddress.ip_address(a).is_loopback for a in addresses_of("localhost")} == {True}


def test_check_with_a_remote_model_url_fails_with_the_sentence(tmp_path):
    home = make_home(tmp_path, "http://203.0.113.5:11434")  # refused before any connection is tried
    result = home.cli("check")
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if "203.0.113.5" in line]
    assert line == (
        "error: the model server 'local' at http://203.0.113.5:11434 is not on this machine or a private network, "
        "so documents would leave home; use a local server, declare its network local in GRISTMILL_LOCAL_NETWORKS, "
        "or set GRISTMILL_ALLOW_REMOTE_MODEL=true"
    )
    assert "Traceback" not in result.stderr


def test_check_url_refuses_in_one_sentence_naming_the_fix():
    with pytest.raises(RemoteRefused) as caught:
        check_url("http://203.0.113.5:11434", allowed=False, what="the model server",
                  how_to_allow="GRISTMILL_ALLOW_REMOTE_MODEL=true")  # fmt: skip
    message = str(caught.value)
    assert message.startswith("the model server http://203.0.113.5:11434 is not on this machine")
    assert message.endswith("set GRISTMILL_ALLOW_REMOTE_MODEL=true") and "\n" not in message
    assert caught.value.url == "http://203.0.113.5:11434"
    check_url("http://203.0.113.5:11434", allowed=True, what="x", how_to_allow="y")


# --------------------------------------------------------------------------- webhooks


def _workflow(webhook: str, **extra) -> Workflow:
    return Workflow.model_validate({
        "name": "hook", "trigger": {"watch": {"path": "/tmp/in"}},
        "steps": [{"summarise": {}}, {"route": {"default": {"webhook": webhook}}}], **extra,
    })  # fmt: skip


def _perform(
    workflow: Workflow, url: str, *, dry_run: bool = False, nets: tuple = (), scope: dict | None = None
) -> list[tuple[str, dict]]:
    sent: list[tuple[str, dict]] = []
    act = ActionServices(
        Effects(dry_run, record=lambda intent: None),
        chain=lambda name, path: None,
        post=lambda u, body: sent.append((u, body)),
        dry_run=dry_run,
        local_networks=nets,
    )
    ctx = StepContext(
        workflow=workflow,
        step_id="route",
        scope=scope or {"run": {"id": 1}, "summarise": {"text": "t"}},
        text="d",
        images=(),
        file_path=None,
        asking=lambda: None,
        act=act,
    )  # type: ignore[arg-type]
    done = Webhook().perform(url, ctx)
    assert (done.destination, done.moved_to) == (url, None)  # the run records where the outputs went
    return sent


def test_a_remote_webhook_is_refused_before_anything_is_sent():
    url = "http://203.0.113.5/hook"
    for dry_run in (False, True):
        with pytest.raises(RemoteRefused) as caught:
            _perform(_workflow(url), url, dry_run=dry_run)
        assert str(caught.value) == (
            "the webhook of workflow 'hook' http://203.0.113.5/hook is not on this machine or a private network, so "
            "documents would leave home; use a local server, declare its network local in GRISTMILL_LOCAL_NETWORKS, "
            "or set allow_remote_webhooks: true"
        )  # a workflow built in code has no file to name


def test_a_local_webhook_is_sent_and_a_remote_one_when_the_workflow_allows_it():
    assert [u for u, _ in _perform(_workflow("http://127.0.0.1:9/h"), "http://127.0.0.1:9/h")] == [
        "http://127.0.0.1:9/h"
    ]
    remote = "http://203.0.113.5/hook"
    sent = _perform(_workflow(remote, allow_remote_webhooks=True), remote)
    assert sent == [(remote, {"workflow": "hook", "run": {"id": 1}, "outputs": {"summarise": {"text": "t"}}})]


def test_a_webhook_posts_the_outputs_of_steps_only_and_of_those_only_what_json_can_carry():
    url = "http://127.0.0.1:9/h"
    scope = {"run": {"id": 7}, "file": {"name": "a.pdf"}, "summarise": {"text": "t"}, "route": {"odd": {1, 2}}}
    (sent,) = _perform(_workflow(url), url, scope=scope)
    assert sent[1] == {"workflow": "hook", "run": {"id": 7}, "outputs": {"summarise": {"text": "t"}}}
    assert _perform(_workflow(url), url, dry_run=True) == []  # a dry run posts nothing


def test_check_webhook_names_the_workflow_file():
    workflow = _workflow("http://203.0.113.5/x").model_copy(update={"source": Path("/w/hook.yaml")})
    with pytest.raises(RemoteRefused, match=r"allow_remote_webhooks: true in /w/hook.yaml"):
        check_webhook("http://203.0.113.5/x", workflow)


def test_a_webhook_address_cannot_be_a_template(tmp_path):
    from daemon.workflow import load_workflow

    path = tmp_path / "hook.yaml"
    path.write_text(
        "name: hook\ntrigger: {watch: {path: /tmp/in}}\nsteps:\n  - extract: {fields: {url: string}}\n"
        "  - route:\n      default: {webhook: 'http://127.0.0.1/{{extract.url}}'}\n"
    )
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    assert (caught.value.line, caught.value.problem) == (
        6,
        "'http://127.0.0.1/{{extract.url}}' uses a template; a webhook address is fixed text, so no document or "
        "model answer can change where data is sent",
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://127.0.0.1/x", "'ftp://127.0.0.1/x' is not an http:// or https:// address"),
        (
            "http://127.0.0.1/{%raw%}x",
            "'http://127.0.0.1/{%raw%}x' uses a template; a webhook address is fixed text, so no document or model "
            "answer can change where data is sent",
        ),
    ],
)
def test_a_webhook_address_is_plain_http_text(tmp_path, url, problem):
    from daemon.workflow import load_workflow

    path = tmp_path / "hook.yaml"
    path.write_text(
        f"name: hook\ntrigger: {{watch: {{path: /tmp/in}}}}\nsteps:\n  - route: {{default: {{webhook: '{url}'}}}}\n"
    )
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    assert caught.value.key == "steps[0].route.default.webhook"
    assert caught.value.problem == problem


def test_declared_local_networks_reach_the_daemon_and_the_webhooks(tmp_path, monkeypatch):
    """GRISTMILL_LOCAL_NETWORKS (e.g. Tailscale's range) counts for the model server and webhooks alike."""
    from daemon.app import App
    from daemon.settings import Settings

    tailnet = "http://100.64.0.5:11434"
    folder = tmp_path / "workflows"
    folder.mkdir()
    base = {"data_dir": tmp_path / "data", "workflows": folder, "ollama_url": tailnet}
    with pytest.raises(RemoteRefused):
        App(Settings(**base))
    app = App(Settings(**base, local_networks="100.64.0.0/10"))  # constructed only: nothing is contacted
    app.close()
    url = "http://100.64.0.9/hook"
    with pytest.raises(RemoteRefused):
        _perform(_workflow(url), url, dry_run=True)
    assert _perform(_workflow(url), url, dry_run=True, nets=tuple(app.settings.local_networks)) == []
