"""Every registered check passes in the default profile and reports what it tried."""

from __future__ import annotations

import math

import pytest

from seqmarl.proofs_checks import Profile, all_checks

CHECKS = all_checks()


@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
def test_check_passes_with_its_cases_and_error(check) -> None:
    result = check.execute(Profile())
    assert result.passed, f"{check.name}: {result.detail}"
    assert result.cases >= 1
    assert math.isfinite(result.worst_error) and result.worst_error <= 1e-7
    assert check.claim and check.source


def test_check_names_are_unique() -> None:
    names = [c.name for c in CHECKS]
    assert len(names) == len(set(names))
