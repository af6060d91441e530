"""A long input cut at GRISTMILL_MAX_CHARS: the run's outputs record it (`_input`), and `show` says so."""

from __future__ import annotations

import json

from tests.support import LETTER, make_home


def test_a_cut_input_is_recorded_in_the_outputs_and_shown(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.use_example("sort-inbox.yaml")
    home.extra_env["GRISTMILL_MAX_CHARS"] = "1000"
    long_text = LETTER + "".join(f"Line {n}: the garden, the kitten and the weather.\n" for n in range(200))
    home.drop("long-letter.txt", long_text)
    home.drop("short-letter.txt", LETTER)

    home.cli("run", "--once", check=True)

    runs = {r["input"].rsplit("/", 1)[-1]: r for r in home.runs()}
    assert runs["long-letter.txt"]["outputs"]["_input"] == {"truncated": True, "chars": len(long_text), "kept": 1000}
    assert "_input" not in runs["short-letter.txt"]["outputs"]
    shown = home.cli("show", str(runs["long-letter.txt"]["id"]), check=True).stdout
    assert f"input cut: the model read 1000 of {len(long_text)} characters (GRISTMILL_MAX_CHARS)" in shown
    as_json = json.loads(home.cli("show", str(runs["long-letter.txt"]["id"]), "--json", check=True).stdout)
    assert as_json["outputs"]["_input"]["kept"] == 1000
