"""`python -m daemon` and the `gristmill` command: stop signals are noted before anything else loads."""

import gc

# Importing the CLI creates a few hundred thousand objects that live as long as the process; the
# cyclic collector would walk them again and again while they are made (about a tenth of a second
# of start-up). It is off for the import only.
gc.disable()

from daemon import early_signals  # noqa: E402

early_signals.hold()

from daemon.cli import main  # noqa: E402  (after hold(): importing the CLI takes a while)

gc.enable()

if __name__ == "__main__":
    main()
