"""The symbolic (sympy) and TAD checks pass with the claimed number of cases, and fail on wrong inputs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sympy as sp

from seqmarl.proofs_checks import symbolic, tad
from seqmarl.proofs_checks.base import Profile
from seqmarl.theory import games
from seqmarl.theory.markov_game import matrix_game
from seqmarl.theory.policies import Factorized

BY_NAME = {c.name: c for c in symbolic.CHECKS + tad.CHECKS}


def _lemma1_count(shapes):
    total = 0
    for shape in shapes:
        n = len(shape)
        # every ordering x every prefix length m x every joint action of the prefix
        for order in itertools.permutations(range(n)):
            for m in range(1, n + 1):
                total += int(np.prod([shape[i] for i in order[:m]]))
    return total


EXPECTED_CASES = {
    "prop1_symbolic": len(range(2, 13, 2)),
    "lemma1_symbolic": _lemma1_count([(2, 2), (2, 2, 2)]),
    "happo_clip_identity": 5 * 3 + 3 * 3,  # (5 positions of r for eps > 0 + 3 for eps = 0) x sign of A
    "permutation_entropy_symbolic": len(range(2, 13)) + sum(n + 2 for n in range(2, 6)),
    "vdn_ls_closed_form_symbolic": 4 + 9 + 6 + 9,
    "a1a2_closed_form": 6,
    "tad_transform_values": sum(2 * math.factorial(2 + g % 2) for g in range(48)),
}


def test_check_table_is_complete_and_symbolic():
    assert set(BY_NAME) == set(EXPECTED_CASES)
    assert all(c.method == "symbolic" for c in symbolic.CHECKS)
    assert [c.method for c in tad.CHECKS] == ["exact"]
    assert all("theory.md §" in c.source for c in BY_NAME.values())


@pytest.mark.parametrize("name", sorted(EXPECTED_CASES))
def test_check_passes_with_claimed_cases(name):
    result = BY_NAME[name].execute(Profile())
    assert result.passed, result.detail
    assert result.cases == EXPECTED_CASES[name]
    if BY_NAME[name].method == "symbolic":
        assert result.worst_error == 0.0
    else:
        assert result.worst_error <= 1e-9


# --- residual_magnitude ---------------------------------------------------------------------------


def test_residual_magnitude():
    x, y = sp.symbols("x y")
    assert symbolic.residual_magnitude(sp.Integer(0)) == 0.0
    assert symbolic.residual_magnitude(sp.expand((x + y) ** 2 - x**2 - 2 * x * y - y**2)) == 0.0
    assert symbolic.residual_magnitude(sp.Rational(-1, 4)) == 0.25
    assert symbolic.residual_magnitude(x - y) == pytest.approx(1 / 11)  # probe x = 3/7, y = 3/7 + 1/11
    assert symbolic.residual_magnitude(x - sp.Rational(3, 7)) == math.inf  # non-zero, but zero at the probe


# --- Proposition 1 --------------------------------------------------------------------------------


def test_prop1_polynomial_matches_closed_form_and_optimum():
    p = sp.Symbol("p")
    for n in (2, 4, 6):
        res = symbolic.prop1_instance(games.xor(n))
        assert sp.expand(res.polynomial.subs(sp.Symbol("p"), p) - 2 * (p * (1 - p)) ** (n // 2)) == 0
        assert res.interior_critical_points == (sp.Rational(1, 2),)
        assert res.maximisers == (sp.Rational(1, 2),)
        assert res.ratio == sp.Rational(2, 2**n) and res.joint_optimum == 1
        assert symbolic.prop1_error(res) == 0


def test_prop1_fails_on_one_sided_xor():
    payoff = np.zeros((2,) * 4)
    payoff[0, 0, 1, 1] = 1.0  # only one of the two optima of xor(4)
    res = symbolic.prop1_instance(matrix_game(payoff))
    assert res.ratio == sp.Rational(1, 16)  # not 2^{1-4} = 1/8
    assert symbolic.prop1_error(res) != 0
    assert symbolic.residual_magnitude(symbolic.prop1_error(res)) == pytest.approx(1 / 16)


def test_prop1_fails_when_the_maximiser_is_an_endpoint():
    payoff = np.zeros((2,) * 4)
    payoff[1, 1, 1, 1] = 1.0  # J_share = p^4: no interior critical point, maximiser p = 1
    res = symbolic.prop1_instance(matrix_game(payoff))
    assert res.interior_critical_points == () and res.maximisers == (1,)
    assert symbolic.prop1_error(res) != 0


def test_prop1_fails_for_constant_reward():
    res = symbolic.prop1_instance(matrix_game(np.ones((2, 2))))
    assert res.interior_critical_points == () and res.ratio == 1
    assert symbolic.prop1_error(res) != 0


def test_prop1_input_validation():
    with pytest.raises(TypeError, match="game must be a MarkovGame"):
        symbolic.prop1_instance(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="one-shot"):
        symbolic.shared_return_polynomial(games.random_game(np.random.default_rng(0), 2, 2, 2, 0.9), sp.Symbol("p"))
    with pytest.raises(ValueError, match="2 actions"):
        symbolic.shared_return_polynomial(games.climbing(), sp.Symbol("p"))
    with pytest.raises(ValueError, match="positive optimal reward"):
        symbolic.prop1_instance(matrix_game(-np.ones((2, 2))))


# --- Lemma 1 --------------------------------------------------------------------------------------


def test_lemma1_fails_with_the_naive_unconditioned_decomposition():
    residuals = symbolic.lemma1_residuals((2, 2), advantage_fn=symbolic.naive_advantage)
    assert any(r != 0 for r in residuals)
    # prefix length 1 is always right (A^{i_1} = Q^{i_1} - V); the error appears at m >= 2
    assert all(r == 0 for r in residuals[:2])


def test_lemma1_heterogeneous_actions_pass():
    assert all(r == 0 for r in symbolic.lemma1_residuals((3, 2)))


def test_conditional_advantage_matches_manual_formula():
    q, tables = symbolic.symbolic_q_and_policy((2, 2))
    adv = symbolic.conditional_advantage(q, tables, (0,), 1)  # A^{2}(s, a^1, a^2) = Q(a^1, a^2) - Q^{1}(a^1)
    p1 = sp.Symbol("p_1_0")
    for a1 in range(2):
        q1 = p1 * q[0, a1, 0] + (1 - p1) * q[0, a1, 1]
        for a2 in range(2):
            assert sp.expand(adv[0, a1, a2] - (q[0, a1, a2] - q1)) == 0


def test_symbolic_q_rejects_bad_shape():
    with pytest.raises(ValueError, match="n_actions"):
        symbolic.symbolic_q_and_policy((2, 0))


# --- HAPPO clip identity --------------------------------------------------------------------------


def test_clip_identity_regions_cover_every_case():
    names = [name for name, *_ in symbolic.clip_identity_cases()]
    assert len(names) == len(set(names)) == 24
    for region in ("r<1-eps", "r=1-eps", "1-eps<r<1+eps", "r=1+eps", "r>1+eps"):
        for sign in ("A>0", "A<0", "A=0"):
            assert f"{region},{sign}" in names


def test_clip_identity_fails_with_plus_relu_exactly_where_the_clip_binds():
    wrong = lambda r, a, e: r * a + sp.Max(0, (r - symbolic.clip(r, e)) * a)  # noqa: E731
    residuals = dict(symbolic.clip_identity_residuals(rhs=wrong))
    failing = {name for name, res in residuals.items() if res != 0}
    # (r - clip r) A > 0 only when r is outside the band on the side of A's sign
    assert failing == {"r<1-eps,A<0", "r>1+eps,A>0", "eps=0,r<1,A<0", "eps=0,r>1,A>0"}


def test_clip_identity_fails_with_max_instead_of_min():
    wrong = lambda r, a, e: sp.Max(r * a, symbolic.clip(r, e) * a)  # noqa: E731
    residuals = symbolic.clip_identity_residuals(lhs=wrong)
    assert any(res != 0 for _, res in residuals)


# --- permutation entropies ------------------------------------------------------------------------


def test_log_factorial_residual():
    assert all(symbolic.log_factorial_residual(n) == 0 for n in (1, 2, 7, 20))
    wrong = sp.expand_log(sp.Add(*[sp.log(k) for k in range(1, 6)]) - sp.log(sp.factorial(6)), force=True, factor=True)
    assert wrong != 0
    with pytest.raises(ValueError, match="positive integer"):
        symbolic.log_factorial_residual(0)


def test_uniform_optimal_ar_on_permutation_game():
    entropies, expected, policy = symbolic.uniform_optimal_ar(games.permutation(4), order=(2, 0, 3, 1))
    assert [sp.simplify(h - sp.log(c)) for h, c in zip(entropies, (4, 3, 2, 1))] == [0, 0, 0, 0]
    assert expected == 1
    assert float(policy.entropy()[0]) == pytest.approx(math.log(24), abs=1e-12)


def test_ar_entropies_fail_for_a_game_with_extra_optima():
    payoff = games.permutation(3).reward[0].copy()
    for a in range(3):
        payoff[a, a, a] = 1.0  # "all equal" is optimal too: the first mover still has 3 choices, later ones more
    residuals, float_error = symbolic.ar_entropy_residuals(matrix_game(payoff))
    assert any(r != 0 for r in residuals)
    assert float_error <= 1e-12  # the library's numbers still agree with the exact (different) values


def test_uniform_optimal_ar_rejects_bad_order():
    with pytest.raises(ValueError, match="order must be a permutation"):
        symbolic.uniform_optimal_ar(games.permutation(3), order=(0, 0, 1))


# --- VDN least squares ----------------------------------------------------------------------------


def test_vdn_fails_with_a_wrong_closed_form():
    def wrong(R):  # Rbar_a. + Rbar_.b, dropping "- Rbar"
        mean = sp.Add(*R) / (R.rows * R.cols)
        return symbolic.vdn_closed_form(R).applyfunc(lambda x: x + mean)

    assert any(r != 0 for r in symbolic.vdn_residuals((2, 2), closed_form=wrong))


def test_vdn_fit_of_climbing_matches_theory_table():
    fit = symbolic.vdn_ls_fit(sp.Matrix(games.climbing().reward[0].tolist()).applyfunc(sp.nsimplify))
    table = [[-9.22, -10.56, 0.78], [-8.56, -9.89, 1.44], [-1.22, -2.56, 8.78]]  # theory.md §8 (2 decimals)
    assert np.allclose(np.array(fit.tolist(), dtype=float), table, atol=0.006)
    assert np.unravel_index(np.argmax(np.array(fit.tolist(), dtype=float)), (3, 3)) == (2, 2)  # greedy (c, c)


def test_vdn_fit_rejects_non_matrix():
    with pytest.raises(TypeError, match="sympy Matrix"):
        symbolic.vdn_ls_fit(np.eye(2))


# --- a1 a2 example --------------------------------------------------------------------------------


def test_a1a2_path_means():
    out = symbolic.gaussian_product_path(lambda a1, a2: a1 * a2)
    r = sp.Rational
    assert out["means"] == {
        "simultaneous": (r(3, 4), r(-3, 4)),
        "sequential_1": (r(3, 4), r(1, 4)),
        "sequential_2": (r(3, 4), r(5, 4)),
    }


def test_a1a2_fails_for_an_additive_reward():
    residuals, _ = symbolic.a1a2_residuals(lambda a1, a2: a1 + a2)
    assert residuals[0] == 0 and residuals[1] == 0  # the KL facts do not depend on the reward
    assert any(r != 0 for r in residuals[2:])


# --- TAD ------------------------------------------------------------------------------------------


def test_tad_errors_are_tiny_on_classic_games():
    for game in (games.climbing(), games.penalty(-100.0), games.xor(4)):
        assert max(tad.transform_errors(game).values()) <= 1e-9


def test_tad_check_fails_when_distillation_is_broken(monkeypatch):
    def uniform(mdp, greedy):
        return Factorized.uniform(mdp.game.n_states, mdp.game.n_actions)

    monkeypatch.setattr(tad, "distill", uniform)
    assert tad.transform_errors(games.climbing())["j"] > 1
    result = tad.run_tad_transform_values(Profile())
    assert not result.passed and result.worst_error > 1e-9


def test_tad_check_fails_when_the_lift_ignores_the_root_scaling(monkeypatch):
    real = tad.lift_q

    def unscaled(mdp, q):
        out = real(mdp, q)
        if mdp.convention == "root":
            out = out / mdp.game.gamma ** ((mdp.n_agents - 1 - mdp.layer[:, None]) / mdp.n_agents)
        return out

    monkeypatch.setattr(tad, "lift_q", unscaled)
    game = games.random_game(np.random.default_rng(0), 2, 2, 2, 0.9)
    assert tad.transform_errors(game)["q"] > 1e-3
