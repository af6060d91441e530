"""gristmill's own step kinds, trigger kinds, route actions and server kinds, registered like a plugin's."""

from __future__ import annotations

from daemon.actions.chain import RunWorkflow
from daemon.actions.files import CopyTo, Keep, MoveTo
from daemon.actions.mail import Flag, MoveToFolder
from daemon.actions.webhook import Webhook
from daemon.inbound.trigger import HttpKind
from daemon.llm.servers import OllamaServer, OpenAIServer
from daemon.mail.trigger import MailboxKind
from daemon.plugins import Registry
from daemon.schedule.scheduler import ScheduleKind
from daemon.steps.classify import Classify
from daemon.steps.extract import Extract
from daemon.steps.prompt import Prompt
from daemon.steps.route import Route
from daemon.steps.summarise import Summarise
from daemon.steps.write import Write
from daemon.triggers.watch_trigger import WatchKind


def register(registry: Registry) -> None:
    """Add the built-ins, in the order `check` and error messages list them."""
    for step in (Summarise(), Classify(), Extract(), Route(), Write(), Prompt()):
        registry.add_step(step)
    for trigger in (WatchKind(), ScheduleKind(), MailboxKind(), HttpKind()):
        registry.add_trigger(trigger)
    for action in (MoveTo(), CopyTo(), RunWorkflow(), Webhook(), MoveToFolder(), Flag(), Keep()):
        registry.add_action(action)
    for server in (OllamaServer(), OpenAIServer()):
        registry.add_server(server)
