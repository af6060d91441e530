"""Mutation testing for the modules that carry the README's promises: `python -m tests.mutation`.

mutmut (https://mutmut.readthedocs.io) writes the mutants: every function of a module listed in
`[tool.mutmut] only_mutate` gets its mutated copies beside it in `mutants/`, and a "trampoline"
picks the copy named by the `MUTANT_UNDER_TEST` environment variable at call time. Our tests start
`python -m daemon` subprocesses and SIGKILL them, so the coverage mutmut gathers in its own process
cannot say which tests reach a function; instead `[tool.gristmill.mutation]` names, per module, the
test files that should catch its mutants, and this package runs them: a fork server per module
(`worker.py`) imports pytest and those files once, then forks one child per mutant with the variable
set (the daemons the tests start inherit it). Results are kept in mutmut's own files, so `mutmut
results`, `mutmut show NAME` and `mutmut browse` work on them. See TESTING.md.
"""
