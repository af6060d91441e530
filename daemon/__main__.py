"""`python -m daemon` and the `gristmill` command: stop signals are noted before anything else loads."""

import gc

# Importing the CLI, and for `run` building the daemon (its libraries, settings, workflows, model
# clients), creates a few hundred thousand objects that live as long as the process; the cyclic
# collector would walk them again and again while they are made (about a tenth of a second of
# start-up each). It is off until the command has made them: `cli.collect_from_here`.
gc.disable()

from daemon import early_signals  # noqa: E402

early_signals.hold()

from daemon.cli import main  # noqa: E402  (after hold(): importing the CLI takes a while)

if __name__ == "__main__":
    main()
