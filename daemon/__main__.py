"""`python -m daemon` and the `gristmill` command: stop signals are noted before anything else loads."""

from daemon import early_signals

early_signals.hold()

from daemon.cli import main  # noqa: E402  (after hold(): importing the CLI takes a while)

if __name__ == "__main__":
    main()
