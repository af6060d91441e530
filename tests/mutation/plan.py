"""What to mutate and which tests judge it (pyproject.toml), the mutants mutmut writes, and their results."""

from __future__ import annotations

import os
import random
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MUTANTS = REPO / "mutants"
EQUIVALENT = Path(__file__).with_name("equivalent.toml")

# Reasons in equivalent.toml that explain a survivor without calling it equivalent: it still counts as surviving,
# and an "Open" one is run again each time (a new test may kill it).
NOT_EQUIVALENT = ("Accepted survivor", "Open")

# mutmut's exit-code vocabulary (mutmut.stats.status_by_exit_code), as stored in its .meta files.
KILLED, SURVIVED, TIMEOUT, SUSPICIOUS = 1, 0, 36, 35


@dataclass(frozen=True)
class Module:
    """One mutated source file and the test files, fastest first, that should kill its mutants."""

    path: str  # "daemon/store/runs.py"
    tests: tuple[str, ...]  # pytest's arguments: the files, and options such as `-k "not postgresql"`

    @property
    def dotted(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")


def modules() -> list[Module]:
    """The modules of `[tool.gristmill.mutation.tests]`, which must be mutmut's `only_mutate` exactly."""
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]
    tests: dict[str, list[str]] = tool["gristmill"]["mutation"]["tests"]
    mutated = set(tool["mutmut"]["only_mutate"])
    if set(tests) != mutated:
        raise SystemExit(f"pyproject.toml: [tool.mutmut] only_mutate and [tool.gristmill.mutation.tests] differ: "
                         f"{sorted(set(tests) ^ mutated)}")  # fmt: skip
    for path, files in tests.items():
        missing = [f for f in (path, *files) if f.endswith(".py") and not (REPO / f).exists()]
        if missing:
            raise SystemExit(f"pyproject.toml: [tool.gristmill.mutation.tests] names missing files: {missing}")
    return [Module(path, tuple(files)) for path, files in tests.items()]


def generate() -> None:
    """(Re)write `mutants/`: a copy of the checkout with the listed modules mutated (mutmut's own steps).

    mutmut keeps the result of every mutant whose function did not change since the last run.
    """
    from mutmut.__main__ import create_mutants
    from mutmut.mutation.trampoline import set_mutant_under_test
    from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir

    os.chdir(REPO)  # mutmut works relative to the project root
    set_mutant_under_test("mutant_generation")
    MUTANTS.mkdir(exist_ok=True)
    copy_src_dir()
    copy_also_copy_files()
    create_mutants(max_children=1)
    set_mutant_under_test("")


def equivalent() -> dict[str, str]:
    """Mutants shown not to change behaviour a user can see: name → the reason."""
    return tomllib.loads(EQUIVALENT.read_text()) if EQUIVALENT.exists() else {}


class Results:
    """The exit code of each mutant of one module, in mutmut's .meta file (None: not run yet)."""

    def __init__(self, module: Module) -> None:
        from mutmut.mutation.data import SourceFileMutationData

        os.chdir(REPO)
        self.data = SourceFileMutationData(path=module.path)
        self.data.load()

    @property
    def codes(self) -> dict[str, int | None]:
        return self.data.exit_code_by_key

    def record(self, name: str, code: int, seconds: float) -> None:
        self.data.exit_code_by_key[name] = code
        self.data.durations_by_key[name] = seconds
        self.data.save()

    @property
    def complete(self) -> bool:
        """Every mutant has a result: the module is measured in full."""
        return all(code is not None for code in self.codes.values())

    def selection(self, sample: Sample | None) -> list[str]:
        """The mutants the figures are about: all of them, or the sample when one is asked and some are not run."""
        names = list(self.codes)
        if sample is None or self.complete:
            return names
        return sample.of(names)

    def to_run(self, *, fresh: bool, sample: Sample | None = None) -> list[str]:
        """Mutants not run yet, and survivors not shown equivalent (a new test may kill them); all when `fresh`.

        A mutant listed as equivalent is still run once: that it survives is part of the claim.
        """
        done, known, codes = (KILLED, TIMEOUT), equivalent(), self.codes

        def due(name: str) -> bool:
            open_ = name in known and known[name].startswith("Open")
            return codes[name] is None or (codes[name] not in done and (name not in known or open_))

        return [name for name in self.selection(sample) if fresh or due(name)]


@dataclass(frozen=True)
class Sample:
    """`size` mutants per module drawn at random with `seed`: the same ones again for the same mutants."""

    size: int
    seed: int

    def of(self, names: list[str]) -> list[str]:
        ordered = sorted(names)  # mutmut's order may change between runs; the draw must not
        if len(ordered) <= self.size:
            return ordered
        return sorted(random.Random(self.seed).sample(ordered, self.size))
