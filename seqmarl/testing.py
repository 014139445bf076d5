"""Public testing helpers for users' own pytest + hypothesis suites.

* ``strategies`` — hypothesis strategies: ``markov_games(...)``, ``policies(game, kind)``, ``orderings(n)``.
* ``assert_monotone_improvement(update, games=..., max_examples=...)`` — runs a user's exact update rule
  ``(game, joint_policy, rng) -> joint_policy`` on generated games and, on failure, reports the shrunk
  counterexample.

Example::

    from hypothesis import given
    from seqmarl.testing import strategies as st, assert_monotone_improvement
    from seqmarl.theory.iteration import hatrpo_exact

    def test_my_rule_is_monotone():
        assert_monotone_improvement(hatrpo_exact, max_examples=20)
"""

from seqmarl import _strategies as strategies

try:  # provided by seqmarl._assertions (theorem-check issue)
    from seqmarl._assertions import assert_monotone_improvement  # noqa: F401
except ModuleNotFoundError as exc:  # pragma: no cover - only while the module does not exist yet
    if exc.name != "seqmarl._assertions":
        raise

__all__ = ["strategies", "assert_monotone_improvement"]
