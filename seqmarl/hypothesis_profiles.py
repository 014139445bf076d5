"""The hypothesis profiles of seqmarl, shared by the project's own suite and by users' test suites.

* ``seqmarl-ci`` — what the project's CI runs: derandomised (a red run reproduces exactly), no example
  database, no deadline, the default budget of 100 examples per test (a test's own ``@settings`` wins).
* ``seqmarl-thorough`` — 10x the budget (1000 examples), random exploration, no deadline: for nightly runs.
* ``seqmarl-explore`` — the CI budget with random exploration turned back on, for bug hunting.

One line in a ``conftest.py`` registers and loads them (the ``HYPOTHESIS_PROFILE`` environment variable, when set,
names the profile instead)::

    from seqmarl.testing import load_profile; load_profile("seqmarl-ci")

``pytest --hypothesis-profile seqmarl-thorough`` works too when seqmarl's pytest plugin is installed.
"""

from __future__ import annotations

import os

__all__ = ["PROFILES", "DEFAULT_PROFILE", "ENV_VAR", "register_profiles", "load_profile"]

PROFILES = ("seqmarl-ci", "seqmarl-thorough", "seqmarl-explore")
"""The registered profile names."""
DEFAULT_PROFILE = "seqmarl-ci"
ENV_VAR = "HYPOTHESIS_PROFILE"
"""Environment variable that overrides the profile :func:`load_profile` is asked for."""

CI_EXAMPLES = 100
THOROUGH_EXAMPLES = 10 * CI_EXAMPLES


def register_profiles() -> None:
    """Register every profile of :data:`PROFILES` with ``hypothesis.settings`` (idempotent: registering again
    replaces each profile by the same settings)."""
    from hypothesis import HealthCheck, settings

    slow = [HealthCheck.too_slow]
    settings.register_profile("seqmarl-ci", max_examples=CI_EXAMPLES, derandomize=True, database=None,
                              deadline=None, suppress_health_check=slow)
    settings.register_profile("seqmarl-thorough", max_examples=THOROUGH_EXAMPLES, derandomize=False,
                              deadline=None, print_blob=True, suppress_health_check=slow)
    settings.register_profile("seqmarl-explore", max_examples=CI_EXAMPLES, derandomize=False, deadline=None,
                              suppress_health_check=slow)


def load_profile(name: str = DEFAULT_PROFILE, *, env: str | None = ENV_VAR) -> str:
    """Register the seqmarl profiles and load ``name`` (or the profile named by the environment variable ``env``
    when it is set and non-empty; ``env=None`` ignores the environment). Any profile registered with hypothesis
    may be named. Returns the name loaded; an unknown name raises ``ValueError`` listing the seqmarl profiles."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty profile name, got {name!r}")
    from hypothesis import settings
    from hypothesis.errors import InvalidArgument

    register_profiles()
    chosen = (os.environ.get(env) if env else None) or name
    try:
        settings.get_profile(chosen)  # look up first: a failed load_profile would leave the bad name current
    except InvalidArgument as exc:
        source = f" (from ${env})" if env and os.environ.get(env) else ""
        raise ValueError(f"unknown hypothesis profile {chosen!r}{source}; seqmarl registers {list(PROFILES)}") from exc
    settings.load_profile(chosen)
    return chosen
