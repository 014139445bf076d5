"""The mutation-testing driver's scoring rules (tools/mutate.py): which survivors are message-only, the interval."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("mutate_tool", Path(__file__).resolve().parents[1] / "tools" / "mutate.py")
mutate = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(mutate)


def _diff(old: str, new: str) -> str:
    return f"--- a\n+++ b\n@@ -1 +1 @@\n-{old}\n+{new}\n"


@pytest.mark.parametrize("old, new", [
    ('    pi = _product_policy(game, pi, "pi")', '    pi = _product_policy(game, pi, None)'),
    ('    pi = _product_policy(game, pi, "pi")', '    pi = _product_policy(game, pi, "XXpiXX")'),
    ('    x = _positive(x, "the step size")', '    x = _positive(x, "XXthe step sizeXX")'),
    ('    warn(f"bad {x}")', '    warn(None)'),
])
def test_argument_names_and_messages_are_message_only(old: str, new: str) -> None:
    assert mutate.message_only(_diff(old, new))


@pytest.mark.parametrize("old, new", [
    ('    if kind == "prod":', '    if kind == "XXprodXX":'),  # a mode string is code
    ('    y = np.einsum("ij,j->i", a, b)', '    y = np.einsum("XXij,j->iXX", a, b)'),
    ('    pi = _product_policy(game, pi, "pi")', '    pi = _product_policy(game, new_pi, "pi")'),
    ('    c = gamma / (1 - gamma)', '    c = gamma / (2 - gamma)'),
])
def test_code_changes_are_scored(old: str, new: str) -> None:
    assert not mutate.message_only(_diff(old, new))


def test_wilson_interval_brackets_the_proportion() -> None:
    low, high = mutate.wilson(90, 100)
    assert low < 0.9 < high
    assert abs(low - 0.8256) < 1e-3 and abs(high - 0.9448) < 1e-3  # closed form, z = 1.96
    assert mutate.wilson(0, 0) != mutate.wilson(0, 0)  # nan for no data


@pytest.mark.parametrize("argv, word", [(["nosuch"], "unknown area"), (["algos", "--sample", "-1"], "--sample"),
                                        (["algos", "--max-children", "0"], "--max-children"),
                                        (["sequence", "--only", "tests/algos/test_mat.py"], "--only needs --recheck")])
def test_bad_arguments_exit_2_naming_them(argv, word, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        mutate.main(argv)
    assert exc.value.code == 2
    assert word in capsys.readouterr().err


@pytest.mark.parametrize("area", sorted(mutate.AREAS))
def test_recheck_baseline_command_keeps_the_marker_expression(area: str) -> None:
    """Regression: the baseline run once dropped ``-x`` by slicing off the last argument, which was the marker
    expression, so ``-m`` swallowed the next flag, pytest exited with a usage error and no failing test was
    deselected (tests written for newer code then 'killed' equivalent mutants)."""
    tests = mutate.AREAS[area]["tests"]
    for stop_first in (True, False):
        cmd = mutate.recheck_command("python", area, stop_first)
        assert ("-x" in cmd) is stop_first
        assert "-rfE" in cmd
        if "-m" in tests:
            last_m = len(cmd) - 1 - cmd[::-1].index("-m")  # the first "-m" is python's "-m pytest"
            assert last_m > cmd.index("pytest") and cmd[last_m + 1] == tests[tests.index("-m") + 1]


def test_baseline_failures_reads_failed_and_error_lines() -> None:
    out = ("..F\n=== short test summary info ===\nFAILED tests/a.py::test_x - AssertionError\n"
           "FAILED tests/a.py::test_y[1]\nERROR tests/b.py - ImportError: nope\n1 failed\n")
    failed, broken = mutate.baseline_failures(out)
    assert failed == ["tests/a.py::test_x", "tests/a.py::test_y[1]"]
    assert broken == {"tests/b.py"}
