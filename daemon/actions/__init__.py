"""Route actions: what a route does with a run's input (move, copy, keep, run another workflow, post)."""

from daemon.actions.base import Action, ActionServices, Done, RouteAction, action_model, make_action, validate_action

__all__ = ["Action", "ActionServices", "Done", "RouteAction", "action_model", "make_action", "validate_action"]
