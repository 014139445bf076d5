"""Public testing helpers for users' own pytest + hypothesis suites.

* ``strategies`` — hypothesis strategies: ``markov_games(...)``, ``policies(game, kind)`` (``factorized``,
  ``shared``, ``autoregressive``, ``joint``), ``orderings(n)``, ``games_and_policies(...)``.
* ``assert_monotone_improvement(update, games=..., max_examples=...)`` — a user's exact update rule
  ``(game, joint_policy, rng) -> joint_policy`` never lowers ``J`` on generated games (ICLR22 Theorem 2).
* ``assert_reaches_optimum(train_fn, game, tol)`` — the trained policy's exact ``J`` is within ``tol`` of ``J*``.
* ``assert_epsilon_nash(policy_or_fn, game, eps)`` — no agent gains more than ``eps`` by deviating alone.
* ``assert_advantage_decomposition(advantage_fn)`` — a user's multi-agent advantages satisfy ICLR22 Lemma 1 and
  equal the exact ones on generated games.
* ``tabular_policy(agent_or_policy, game)`` — the exact tabular ``pi(a|s)`` of a ``seqmarl.algos`` agent, a
  user's torch policy, tables or arrays.
* ``load_profile(name)`` / ``register_profiles()`` — the hypothesis profiles ``seqmarl-ci``, ``seqmarl-thorough``
  and ``seqmarl-explore``; in a ``conftest.py``::

      from seqmarl.testing import load_profile; load_profile("seqmarl-ci")

Each ``assert_*`` fails with an ``AssertionError`` stating the (shrunk) counterexample: the game's arrays, the
policy tables and the expected against the obtained values. Example::

    from seqmarl.testing import assert_monotone_improvement
    from seqmarl.theory.iteration import hatrpo_exact

    def test_my_rule_is_monotone():
        assert_monotone_improvement(hatrpo_exact, max_examples=20)

``examples/test_my_algorithm.py`` in the repository is a complete, tested example.
"""

from seqmarl import _strategies as strategies
from seqmarl._adapters import tabular_policy
from seqmarl._assertions import assert_monotone_improvement
from seqmarl._helpers import assert_advantage_decomposition, assert_epsilon_nash, assert_reaches_optimum
from seqmarl.hypothesis_profiles import PROFILES, load_profile, register_profiles

__all__ = [
    "strategies",
    "assert_monotone_improvement",
    "assert_reaches_optimum",
    "assert_epsilon_nash",
    "assert_advantage_decomposition",
    "tabular_policy",
    "load_profile",
    "register_profiles",
    "PROFILES",
]
