"""The hypothesis profiles shipped in the package (``seqmarl.hypothesis_profiles``, loaded by the suite's conftest
and by users' conftests with one line)."""

from __future__ import annotations

from typing import Iterator

import pytest
from hypothesis import settings

from seqmarl import hypothesis_profiles as hp
from seqmarl._assertions import budget
from seqmarl.testing import PROFILES, load_profile, register_profiles


@pytest.fixture(autouse=True)
def restore_profile() -> Iterator[None]:
    before = settings.get_current_profile_name()
    yield
    settings.load_profile(before)


def test_the_suite_runs_under_seqmarl_ci_unless_the_environment_says_otherwise() -> None:
    import os

    assert settings.get_current_profile_name() == os.environ.get("HYPOTHESIS_PROFILE", "seqmarl-ci")


def test_profiles_and_their_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    assert PROFILES == ("seqmarl-ci", "seqmarl-thorough", "seqmarl-explore")
    register_profiles()
    register_profiles()  # idempotent
    ci, thorough, explore = (settings.get_profile(name) for name in PROFILES)
    assert ci.derandomize and ci.database is None and ci.deadline is None and ci.max_examples == 100
    assert not thorough.derandomize and thorough.deadline is None and thorough.max_examples == 1000
    assert not explore.derandomize and explore.deadline is None and explore.max_examples == 100
    assert load_profile("seqmarl-thorough") == "seqmarl-thorough"
    assert settings.default.max_examples == 1000
    assert load_profile() == "seqmarl-ci" and settings.default.derandomize


def test_the_environment_variable_overrides_the_named_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "seqmarl-explore")
    assert load_profile("seqmarl-ci") == "seqmarl-explore"
    assert settings.get_current_profile_name() == "seqmarl-explore"
    assert load_profile("seqmarl-ci", env=None) == "seqmarl-ci"


def test_unknown_profiles_are_refused_and_leave_the_current_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    load_profile("seqmarl-ci")
    with pytest.raises(ValueError, match=r"unknown hypothesis profile 'seqmarl-nightly'; seqmarl registers"):
        load_profile("seqmarl-nightly")
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "typo")
    with pytest.raises(ValueError, match=r"'typo' \(from \$HYPOTHESIS_PROFILE\)"):
        load_profile("seqmarl-ci")
    assert settings.get_current_profile_name() == "seqmarl-ci"
    with pytest.raises(TypeError, match="name"):
        load_profile("")


def test_helper_budgets_follow_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    load_profile("seqmarl-ci")
    assert budget(None, 50) == 50 and budget(7, 50) == 7
    load_profile("seqmarl-thorough")
    assert budget(None, 50) == 500 and budget(7, 50) == 7
    with pytest.raises(ValueError, match="max_examples"):
        budget(0, 50)
    assert hp.THOROUGH_EXAMPLES == 10 * hp.CI_EXAMPLES
