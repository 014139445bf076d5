"""What a user sees when ``assert_monotone_improvement`` fails under pytest (issue 13): the shrunk example's game
arrays, policy tables and J before/after, at the user's own line, without the helper's source or hypothesis'
internals; and a docstring that names public modules only."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from seqmarl import _assertions
from seqmarl.testing import assert_monotone_improvement

USER_TEST = textwrap.dedent(
    """
    import numpy as np
    from seqmarl.testing import assert_monotone_improvement
    from seqmarl.theory import Factorized


    def to_uniform(game, pi, rng):
        # deliberately not monotone: forget everything and play uniformly
        return Factorized([np.full_like(t, 1.0 / t.shape[1]) for t in pi.tables])


    def test_user_rule():
        assert_monotone_improvement(to_uniform, max_examples=20, n_iters=1, seed=0)
    """
)


def test_pytest_shows_the_tables_and_not_the_helpers_source(tmp_path: Path) -> None:
    (tmp_path / "test_user_rule.py").write_text(USER_TEST)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q", "test_user_rule.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    # the shrunk counterexample, readable: J before/after, the game arrays and every agent's tables as arrays
    assert re.search(r"J\(pi_0\) = -?[\d.]+ -> J\(pi_1\) = -?[\d.]+", out), out
    for piece in ("reward[S, A1..An] =", "transition[S, A1..An, S']", "initial = ",
                  "pi_0 (before) table[0] (agent 0, [S, A]) =", "pi_0 (before) table[1] (agent 1, [S, A]) =",
                  "pi_1 (after) table[0] (agent 0, [S, A]) =", "pi_1 (after) table[1] (agent 1, [S, A]) ="):
        assert piece in out, piece
    assert re.search(r"table\[0\] \(agent 0, \[S, A\]\) =\nE\s+\[\[0\.\d+, 0\.\d+\]", out), out
    assert "[[0.5, 0.5]]" in out  # the uniform table the rule returned
    # reported at the user's call, not inside the helper or hypothesis
    assert ">       assert_monotone_improvement(to_uniform" in out
    source = inspect.getsource(_assertions.assert_monotone_improvement).splitlines()
    helper_lines = [line.strip() for line in source if len(line.strip()) > 25]
    shown = [line for line in helper_lines if line in out]
    assert not shown, f"helper source in the failure output: {shown[:5]}"
    for internal in ("_assertions.py:", "@given(cases())", "Failing test case", "Falsifying example",
                     "These lines were always and only run"):
        assert internal not in out, internal


def test_docstring_names_public_modules_only() -> None:
    doc = inspect.getdoc(assert_monotone_improvement) or ""
    named = re.findall(r"seqmarl(?:\.\w+)+", doc)
    assert named, doc
    assert not [name for name in named if any(part.startswith("_") for part in name.split("."))], named
    assert "seqmarl.theory.iteration.hatrpo_exact" in doc and "seqmarl.testing.strategies.markov_games" in doc


NEW_HELPERS_TEST = textwrap.dedent(
    """
    import numpy as np
    from seqmarl.testing import assert_advantage_decomposition, assert_epsilon_nash, assert_reaches_optimum
    from seqmarl.testing import strategies as sst
    from seqmarl.theory import Factorized, games, multiagent


    def uniform(game, rng):
        return Factorized.uniform(game.n_states, game.n_actions)


    def test_optimum():
        assert_reaches_optimum(uniform, games.xor(2), tol=1e-6)


    def test_nash():
        assert_epsilon_nash(uniform, sst.markov_games(n_agents=2), eps=1e-6, max_examples=10, seed=0)


    def test_lemma1():
        assert_advantage_decomposition(lambda g, pi, agents, given: 0 * multiagent.advantage_subset(g, pi, agents, given)
                                       + 1.0, max_examples=10, seed=0)
    """
)


def test_the_new_helpers_fail_at_the_users_line_without_internals(tmp_path: Path) -> None:
    """assert_reaches_optimum / assert_epsilon_nash / assert_advantage_decomposition under pytest: the message at
    the user's call, no helper source, no hypothesis internals."""
    from seqmarl import _helpers

    (tmp_path / "test_user_rules.py").write_text(NEW_HELPERS_TEST)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q", "test_user_rules.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "3 failed" in out, out
    assert ">       assert_reaches_optimum(uniform, games.xor(2), tol=1e-6)" in out
    assert ">       assert_epsilon_nash(uniform, sst.markov_games(n_agents=2)" in out
    assert ">       assert_advantage_decomposition(lambda g, pi, agents, given:" in out
    assert "J(pi) = 0.5 is 0.5 below the joint optimum J* = 1" in out
    assert "not an eps-Nash equilibrium" in out and "the advantages differ from the exact values for the prefix" in out
    helper_lines = {line.strip() for fn in (_helpers.assert_reaches_optimum, _helpers.assert_epsilon_nash,
                                            _helpers.assert_advantage_decomposition, _helpers._over_games)
                    for line in inspect.getsource(fn).splitlines() if len(line.strip()) > 25}
    shown = [line for line in helper_lines if line in out]
    assert not shown, f"helper source in the failure output: {shown[:5]}"
    for internal in ("_helpers.py:", "_assertions.py:", "Falsifying example", "Failing test case", "raise _Not"):
        assert internal not in out, internal
