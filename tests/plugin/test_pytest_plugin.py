"""The pytest plugin (``pytest --seqmarl``), run as a user runs it: ``python -m pytest`` in a fresh directory.

Collection is checked with ``--collect-only`` (no check runs); the runs execute a handful of fast checks, or
checks replaced by a conftest that makes them fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from seqmarl import pytest_plugin
from seqmarl.proofs_checks import all_checks
from seqmarl.proofs_checks.base import METHODS

USER_TEST = "def test_users_own():\n    assert 1 + 1 == 2\n"

FAILING_CONFTEST = textwrap.dedent(
    """
    import dataclasses

    from seqmarl.proofs_checks import identities
    from seqmarl.proofs_checks.base import CheckResult


    def shrunk_failure(profile):
        return CheckResult(cases=4, worst_error=0.25, passed=False,
                           detail=f"worst at case 3: game 'xor(2)'\\nreward = [[0, 1], [1, 0]]\\n{profile!r}")


    def crash(profile):
        raise ZeroDivisionError("the check itself crashed")


    replace = {"pdl_identity": shrunk_failure, "zero_surrogate_eq6": crash}
    identities.CHECKS[:] = [dataclasses.replace(c, run=replace[c.name]) if c.name in replace else c
                            for c in identities.CHECKS]
    """
)

MODULES_CONFTEST = textwrap.dedent(
    """
    import json
    import sys

    HEAVY = ["torch", "cvxpy", "hypothesis", "scipy", "seqmarl.proofs_checks", "seqmarl.theory", "seqmarl.verify"]


    def pytest_sessionfinish(session):
        loaded = {name: name in sys.modules for name in HEAVY}
        loaded["seqmarl.pytest_plugin"] = "seqmarl.pytest_plugin" in sys.modules
        with open("modules.json", "w") as f:
            json.dump(loaded, f)
    """
)


def _project(tmp_path: Path, conftest: str = "") -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (tmp_path / "test_users_own.py").write_text(USER_TEST)
    if conftest:
        (tmp_path / "conftest.py").write_text(conftest)
    return tmp_path


def _pytest(cwd: Path, *args: str, timeout: float = 300) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "HYPOTHESIS_PROFILE"}
    proc = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
    return proc.returncode, proc.stdout + proc.stderr


def _collected(pytester: pytest.Pytester, *args: str) -> list[str]:
    """The node ids ``pytest --collect-only -q`` lists, run in this process (fast: the checks are imported once)."""
    pytester.makepyfile(test_users_own=USER_TEST)
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider", *args)
    assert result.ret in (0, 5), result.outlines  # 5: nothing selected
    ids = []
    for line in result.outlines:
        if not line.strip():
            break
        ids.append(line.strip())
    return ids


NAMES = [c.name for c in all_checks()]


def test_the_entry_point_is_installed() -> None:
    """A fresh install registers the plugin with pytest (pyproject [project.entry-points.pytest11])."""
    (ep,) = [e for e in entry_points(group="pytest11") if e.name == "seqmarl"]
    assert ep.value == "seqmarl.pytest_plugin"
    assert ep.load() is pytest_plugin


def test_a_marker_per_method() -> None:
    assert set(pytest_plugin.METHOD_MARKERS) == set(METHODS)
    assert all(marker == f"seqmarl_{method}" for method, marker in pytest_plugin.METHOD_MARKERS.items())


def test_without_the_flag_nothing_is_collected_and_nothing_heavy_is_imported(tmp_path: Path) -> None:
    project = _project(tmp_path, MODULES_CONFTEST)
    code, out = _pytest(project, "-q")
    assert code == 0 and "1 passed" in out, out
    loaded = json.loads((project / "modules.json").read_text())
    assert loaded.pop("seqmarl.pytest_plugin"), "the plugin is not loaded through its entry point"
    assert not any(loaded.values()), f"imported without --seqmarl: {[m for m, v in loaded.items() if v]}"


def test_without_the_flag_only_the_users_tests_are_collected(pytester: pytest.Pytester) -> None:
    assert _collected(pytester) == ["test_users_own.py::test_users_own"]


def test_collects_every_check_by_name_in_registry_order(pytester: pytest.Pytester) -> None:
    assert _collected(pytester, "--seqmarl") == ["test_users_own.py::test_users_own", *NAMES]
    result = pytester.runpytest_inprocess("--collect-only", "-p", "no:cacheprovider", "--seqmarl")
    out = "\n".join(result.outlines)
    assert f"collected {len(NAMES) + 1} items" in out, out
    assert "<SeqmarlChecks seqmarl>" in out and "<SeqmarlCheckItem lemma1_decomposition>" in out


def test_k_and_m_select_checks(pytester: pytest.Pytester) -> None:
    project = pytester
    by_method = {m: [c.name for c in all_checks() if c.method == m] for m in METHODS}
    assert _collected(project, "--seqmarl", "-m", "seqmarl_symbolic") == by_method["symbolic"]
    assert _collected(project, "--seqmarl", "-m", "seqmarl_exact or seqmarl_convex") == [
        c.name for c in all_checks() if c.method in ("exact", "convex")]
    assert _collected(project, "--seqmarl", "-m", "not seqmarl") == ["test_users_own.py::test_users_own"]
    assert _collected(project, "--seqmarl", "-m", "seqmarl") == NAMES
    assert _collected(project, "--seqmarl", "-k", "lemma1") == [n for n in NAMES if "lemma1" in n]
    assert _collected(project, "--seqmarl", "-k", "lemma2_bound or users_own") == [
        "test_users_own.py::test_users_own", "lemma2_bound"]


def test_selected_checks_run_and_pass(tmp_path: Path) -> None:
    project = _project(tmp_path)
    code, out = _pytest(project, "--seqmarl", "-k", "prop1_symbolic or input_contract or users_own", "-v")
    assert code == 0, out
    assert "3 passed" in out and "seqmarl: theorem checks collected (seed 0, profile default)" in out
    assert "prop1_symbolic PASSED" in out and "input_contract PASSED" in out


def test_a_failing_check_reports_its_detail_not_a_traceback(tmp_path: Path) -> None:
    project = _project(tmp_path, FAILING_CONFTEST)
    code, out = _pytest(project, "--seqmarl", "--seqmarl-seed", "5", "--seqmarl-thorough",
                        "-k", "pdl_identity or zero_surrogate_eq6 or users_own")
    assert code == 1, out
    assert "1 passed" in out and "2 failed" in out, out
    for piece in ("seqmarl theorem check 'pdl_identity' FAILED (property; 4 cases, worst error 0.25)",
                  "claim:  J(pibar) - J(pi) =", "source: Kakade & Langford",
                  "  worst at case 3: game 'xor(2)'", "  reward = [[0, 1], [1, 0]]",
                  "reproduce: seqmarl verify --seed 5 --thorough --only pdl_identity",
                  "or: pytest --seqmarl --seqmarl-seed 5 --seqmarl-thorough -k pdl_identity",
                  "seqmarl theorem check 'zero_surrogate_eq6' FAILED (property; 0 cases, worst error n/a)",
                  "  ZeroDivisionError: the check itself crashed"):
        assert piece in out, piece
    # the profile the check received is the one `seqmarl verify --seed 5 --thorough` gives it
    from seqmarl.proofs_checks.base import Profile
    from seqmarl.verify import THOROUGH_SCALE

    assert repr(Profile(scale=THOROUGH_SCALE, seed=5)) in out
    for harness in ("Traceback", "pytest_plugin.py", "def runtest", "raise CheckFailed", "check.execute"):
        assert harness not in out, harness


def test_the_plugin_passes_the_same_profile_as_seqmarl_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    """``seqmarl verify --seed 5 --thorough`` hands each check this Profile; the plugin's failing run above shows
    the same repr."""
    import dataclasses

    from seqmarl import verify
    from seqmarl.proofs_checks import identities
    from seqmarl.proofs_checks.base import CheckResult, Profile

    seen: list[Profile] = []

    def record(profile: Profile) -> CheckResult:
        seen.append(profile)
        return CheckResult(cases=1, worst_error=0.0, passed=True)

    patched = [dataclasses.replace(c, run=record) if c.name == "pdl_identity" else c for c in identities.CHECKS]
    monkeypatch.setattr(identities, "CHECKS", patched)
    verify.run_checks(["pdl_identity"], thorough=True, seed=5)
    assert seen == [Profile(scale=verify.THOROUGH_SCALE, seed=5)]


def test_options_are_validated(tmp_path: Path) -> None:
    project = _project(tmp_path)
    code, out = _pytest(project, "--seqmarl", "--seqmarl-seed", "-3")
    assert code == 4 and "--seqmarl-seed: must be a non-negative integer, got -3" in out, out
    code, out = _pytest(project, "--seqmarl", "--seqmarl-seed", "x")
    assert code == 4 and "got 'x'" in out, out
    code, out = _pytest(project, "--seqmarl-thorough")
    assert code == 4 and "add --seqmarl to run them" in out, out


def test_runs_under_xdist(tmp_path: Path) -> None:
    """Both workers collect the same items (same ids, same order), so xdist can hand them out."""
    project = _project(tmp_path)
    code, out = _pytest(project, "--seqmarl", "-n", "2", "-k", "input_contract or prop1_symbolic or users_own", "-v")
    assert code == 0, out
    assert "3 passed" in out, out
    assert "PASSED input_contract" in out and "PASSED prop1_symbolic" in out, out


def test_the_hypothesis_profile_option_knows_the_seqmarl_profiles(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project / "test_profile.py").write_text(
        "from hypothesis import settings\n\n"
        "def test_profile():\n"
        "    assert settings.get_current_profile_name() == 'seqmarl-thorough'\n"
        "    assert settings.default.max_examples == 1000 and settings.default.deadline is None\n"
    )
    code, out = _pytest(project, "--hypothesis-profile", "seqmarl-thorough", "test_profile.py")
    assert code == 0, out
