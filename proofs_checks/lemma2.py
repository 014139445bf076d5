"""HATRPO's Lemma 2 (theory.md §1.8): exact values, an independent recomputation, and an adversarial tightness search.

``J(pibar) >= J(pi) + sum_m [L^{i_{1:m}}_pi(pibar^{i_{1:m-1}}, pibar^{i_m}) - C Dmax_KL(pi^{i_m}, pibar^{i_m})]``
with ``C = 4 gamma max|A_pi| / (1 - gamma)^2``, ``Dmax_KL = max_s KL(pi(.|s) || pibar(.|s))`` and the improper
occupancy ``rho_pi`` inside ``L``.

The inequality alone is a weak test: on random cases the bound sits far below ``J(pibar)`` (the penalty is ~44x
the second-order remainder), so ``C/100``, a reversed or averaged KL, or ``rho_pibar`` in ``L`` all still satisfy
it. ``lemma2_bound`` therefore checks

1. **exact values** of :func:`seqmarl.theory.bounds.lemma2_lower_bound` (and of its pieces ``C``, ``sum_m L``,
   ``Dmax_KL``, ``J``) on fixed small games with rational data, computed here with :class:`fractions.Fraction`
   (linear solves by exact elimination) and the KL terms with sympy to 40 digits: a wrong constant, KL
   direction, max-vs-mean or occupancy changes the value;
2. **agreement with an independent float computation** of the bound (:mod:`._reference`) on random games and
   every ordering (1e-9 relative), and the inequality itself;
3. **tightness**: the relative slack ``(J(pibar) - bound) / (C sum_m Dmax_KL)`` (1 = the penalty is pure slack,
   0 = the bound is attained) minimised by Nelder-Mead over small games (2 states, 1-2 agents, 2 actions; the
   game, gamma, both policies) from stored worst cases of a longer offline search plus ``profile.seed`` starts;
   the smallest slack is reported and the bound must hold there (a penalty scaled below ``1 - slack`` fails).

``lemma2_first_order`` checks that ``sum_m L`` matches ``J(pibar) - J(pi)`` to second order.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Sequence

import numpy as np
import sympy as sp
from scipy import optimize
from scipy.special import softmax

from seqmarl.theory import bounds, evaluate, multiagent
from seqmarl.theory.games import random_game
from seqmarl.theory.markov_game import MarkovGame
from seqmarl.theory.policies import Factorized

from . import _reference as ref
from .base import Check, CheckResult, Profile

GAMMAS = (0.0, 0.5, 0.9)
SOFT = 0.05

# ----------------------------------------------------------------------------------------------- exact instances
FracTables = list[list[list[Fraction]]]  # per agent, per state, per action


def _fractions(rows: Sequence[Sequence[object]]) -> list[list[Fraction]]:
    return [[Fraction(x) for x in row] for row in rows]


def _exact_solve(matrix: list[list[Fraction]], rhs: list[Fraction]) -> list[Fraction]:
    """Gauss-Jordan elimination over the rationals (the matrices here are ``I - gamma P``, non-singular)."""
    n = len(rhs)
    m = [list(row) + [rhs[i]] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if m[r][col] != 0)
        m[col], m[pivot] = m[pivot], m[col]
        inv = 1 / m[col][col]
        m[col] = [x * inv for x in m[col]]
        for r in range(n):
            if r != col and m[r][col] != 0:
                f = m[r][col]
                m[r] = [a - f * b for a, b in zip(m[r], m[col])]
    return [m[i][n] for i in range(n)]


class ExactGame:
    """A tiny Markov game with rational data: ``reward[s][joint]``, ``transition[s][joint][s']`` (joint actions as
    tuples), ``gamma``, ``initial``; every quantity of theory.md §0 in exact arithmetic."""

    def __init__(self, n_actions: Sequence[int], reward: dict, transition: dict, gamma: Fraction, initial: Sequence[Fraction]):
        self.n_actions = tuple(n_actions)
        self.n_states = len(initial)
        self.joint = list(itertools.product(*[range(a) for a in self.n_actions]))
        self.reward, self.transition, self.gamma, self.initial = reward, transition, Fraction(gamma), [Fraction(x) for x in initial]

    def prob(self, tables: FracTables, s: int, a: tuple[int, ...], agents: Sequence[int] | None = None) -> Fraction:
        out = Fraction(1)
        for i in (range(len(a)) if agents is None else agents):
            out *= tables[i][s][a[i]]
        return out

    def solve(self, tables: FracTables) -> dict:
        S, g = self.n_states, self.gamma
        p_pi = [[sum(self.prob(tables, s, a) * self.transition[s][a][t] for a in self.joint) for t in range(S)] for s in range(S)]
        r_pi = [sum(self.prob(tables, s, a) * self.reward[s][a] for a in self.joint) for s in range(S)]
        system = [[(1 if s == t else 0) - g * p_pi[s][t] for t in range(S)] for s in range(S)]
        v = _exact_solve(system, r_pi)
        rho = _exact_solve([[system[t][s] for t in range(S)] for s in range(S)], self.initial)
        q = {(s, a): self.reward[s][a] + g * sum(self.transition[s][a][t] * v[t] for t in range(S)) for s in range(S) for a in self.joint}
        return {"v": v, "q": q, "rho": rho, "j": sum(i * x for i, x in zip(self.initial, v))}

    def q_subset(self, tables: FracTables, q: dict, s: int, fixed: dict[int, int]) -> Fraction:
        """``Q^{J}(s, a^J)``: ``Q`` averaged over the agents outside ``fixed`` under ``tables`` (ICLR22 Def. 1)."""
        rest = [i for i in range(len(self.n_actions)) if i not in fixed]
        return sum((self.prob(tables, s, a, rest) * q[(s, a)] for a in self.joint if all(a[i] == b for i, b in fixed.items())), Fraction(0))

    def lemma2_parts(self, pi: FracTables, pibar: FracTables, order: Sequence[int]) -> dict:
        """``J(pi)``, ``J(pibar)``, ``C``, the surrogate terms ``L^{i_{1:m}}`` (exact) and ``Dmax_KL`` per agent
        (sympy, 40 digits)."""
        sol, new = self.solve(pi), self.solve(pibar)
        adv = [sol["q"][(s, a)] - sol["v"][s] for s in range(self.n_states) for a in self.joint]
        c = 4 * self.gamma * max(abs(x) for x in adv) / (1 - self.gamma) ** 2
        terms = []
        for m in range(1, len(order) + 1):
            agents = tuple(order[:m])
            total = Fraction(0)
            for s in range(self.n_states):
                for head in itertools.product(*[range(self.n_actions[i]) for i in agents]):
                    weight = Fraction(1)
                    for i, b in zip(agents, head):
                        weight *= pibar[i][s][b]
                    fixed = dict(zip(agents, head))
                    gain = self.q_subset(pi, sol["q"], s, fixed) - self.q_subset(pi, sol["q"], s, dict(list(fixed.items())[:-1]))
                    total += sol["rho"][s] * weight * gain
            terms.append(total)
        dmax = []
        for i in order:
            kls = [sp.Add(*[sp.Rational(x.numerator, x.denominator) * sp.log(sp.Rational(x.numerator, x.denominator) / sp.Rational(y.numerator, y.denominator))
                            for x, y in zip(pi[i][s], pibar[i][s]) if x > 0]) for s in range(self.n_states)]
            dmax.append(max(sp.N(k, 40) for k in kls))
        bound = sp.Rational(sol["j"].numerator, sol["j"].denominator) + sum(sp.Rational(t.numerator, t.denominator) for t in terms) \
            - sp.Rational(c.numerator, c.denominator) * sum(dmax)
        return {"j": sol["j"], "j_new": new["j"], "c": c, "terms": terms, "dmax": dmax, "bound": sp.N(bound, 40)}

    def to_float(self) -> MarkovGame:
        shape = (self.n_states, *self.n_actions)
        reward = np.zeros(shape)
        transition = np.zeros(shape + (self.n_states,))
        for s in range(self.n_states):
            for a in self.joint:
                reward[(s, *a)] = float(self.reward[s][a])
                transition[(s, *a)] = [float(x) for x in self.transition[s][a]]
        return MarkovGame(reward, transition, float(self.gamma), np.array([float(x) for x in self.initial]))


def _policy(tables: FracTables) -> Factorized:
    return Factorized([np.array([[float(x) for x in row] for row in t]) for t in tables])


def exact_instances() -> list[tuple[str, ExactGame, FracTables, FracTables]]:
    """The fixed rational instances of ``lemma2_bound`` (each has a different KL in each state, so max-KL and
    mean-KL differ, and ``rho_pibar != rho_pi``)."""
    h = Fraction(1, 2)
    # two states, two agents x two actions, gamma = 1/2; state 0 moves to 1 w.p. 1/2 when the agents match
    joint2 = list(itertools.product(range(2), range(2)))
    r0 = {(0, 0): 1, (0, 1): 0, (1, 0): 0, (1, 1): 2}
    r1 = {(0, 0): 0, (0, 1): 1, (1, 0): 3, (1, 1): -1}
    chain = ExactGame(
        (2, 2),
        [{a: Fraction(r0[a]) for a in joint2}, {a: Fraction(r1[a]) for a in joint2}],
        [{a: ([h, h] if a[0] == a[1] else [Fraction(1), Fraction(0)]) for a in joint2},
         {a: ([Fraction(1, 4), Fraction(3, 4)] if a[0] == 1 else [h, h]) for a in joint2}],
        h, [Fraction(1), Fraction(0)],
    )
    pi_chain = [[[h, h], [Fraction(1, 3), Fraction(2, 3)]],
                [[Fraction(2, 3), Fraction(1, 3)], [h, h]]]
    pibar_chain = [[[Fraction(3, 5), Fraction(2, 5)], [Fraction(1, 4), Fraction(3, 4)]],
                   [[h, h], [Fraction(2, 5), Fraction(3, 5)]]]
    # three states, one agent x three actions, gamma = 3/4 (TRPO's single-agent Theorem 1 as the n = 1 case)
    joint1 = [(0,), (1,), (2,)]
    rewards = [[2, 0, -1], [0, 1, 0], [-2, 0, 3]]
    moves = [[[0, 1, 0], [h, h, 0], [0, 0, 1]],
             [[1, 0, 0], [0, Fraction(1, 3), Fraction(2, 3)], [Fraction(1, 4), Fraction(1, 4), h]],
             [[0, 0, 1], [h, 0, h], [1, 0, 0]]]
    line = ExactGame(
        (3,),
        [{a: Fraction(rewards[s][a[0]]) for a in joint1} for s in range(3)],
        [{a: [Fraction(x) for x in moves[s][a[0]]] for a in joint1} for s in range(3)],
        Fraction(3, 4), [h, Fraction(1, 4), Fraction(1, 4)],
    )
    pi_line = [[[Fraction(1, 3)] * 3, [Fraction(1, 2), Fraction(1, 4), Fraction(1, 4)], [Fraction(1, 5), Fraction(2, 5), Fraction(2, 5)]]]
    pibar_line = [[[Fraction(1, 2), Fraction(1, 4), Fraction(1, 4)], [Fraction(2, 5), Fraction(2, 5), Fraction(1, 5)], [Fraction(1, 5), Fraction(1, 5), Fraction(3, 5)]]]
    return [("two-state chain, 2 agents, gamma 1/2", chain, pi_chain, pibar_chain),
            ("three-state line, 1 agent, gamma 3/4", line, pi_line, pibar_line)]


def exact_errors() -> tuple[float, int, list[str]]:
    """Relative errors of the library against the exact values on every instance and ordering."""
    worst, cases, notes = 0.0, 0, []
    for label, game, pi_f, pibar_f in exact_instances():
        fgame, pi, pibar = game.to_float(), _policy(pi_f), _policy(pibar_f)
        for order in itertools.permutations(range(len(game.n_actions))):
            parts = game.lemma2_parts(pi_f, pibar_f, order)
            checks = {
                "J(pi)": (evaluate.expected_return(fgame, pi), float(parts["j"])),
                "J(pibar)": (evaluate.expected_return(fgame, pibar), float(parts["j_new"])),
                "C": (bounds.penalty_constant(fgame, pi), float(parts["c"])),
                "sum_m L": (bounds.first_order_terms(fgame, pi, pibar, order), float(sum(parts["terms"]))),
                "bound": (bounds.lemma2_lower_bound(fgame, pi, pibar, order), float(parts["bound"])),
            }
            for i, d in zip(order, parts["dmax"]):
                checks[f"Dmax_KL agent {i}"] = (bounds.max_kl(pi.tables[i], pibar.tables[i]), float(d))
            for m, term in enumerate(parts["terms"], start=1):  # Def. 2 straight from multiagent (defaults: Q, rho)
                agents = tuple(order[:m])
                checks[f"L^{agents}"] = (multiagent.surrogate(fgame, pi, agents, [pibar.tables[i] for i in agents]), float(term))
            sol = game.solve(pi_f)
            for i in order:  # Def. 1: Q^{i}(s, a^i)
                got = multiagent.q_subset(fgame, pi, (i,))
                for s in range(game.n_states):
                    for a in range(game.n_actions[i]):
                        checks[f"Q^{i}({s}, {a})"] = (float(got[s, a]), float(game.q_subset(pi_f, sol["q"], s, {i: a})))
            for name, (got, want) in checks.items():
                err = abs(got - want) / max(1.0, abs(want))
                if err > worst:
                    worst = err
                if err > 1e-12:
                    notes.append(f"{label}, order {order}: {name} = {got!r}, exact {want!r}")
            if not float(parts["bound"]) <= float(parts["j_new"]):
                notes.append(f"{label}: the exact bound exceeds J(pibar)")
            cases += 1
    return worst, cases, notes


# ----------------------------------------------------------------------------------------------- random cases
def _game(rng: np.random.Generator) -> MarkovGame:
    n_agents = int(rng.integers(1, 4))
    counts = [int(rng.integers(2, 4)) for _ in range(n_agents)]
    return random_game(rng, n_agents, counts, int(rng.integers(1, 4)), gamma=float(rng.choice(GAMMAS)))


def _soft(rng: np.random.Generator, game: MarkovGame, floor: float = SOFT) -> Factorized:
    return Factorized([floor + (1 - a * floor) * rng.dirichlet(np.ones(a), size=game.n_states) for a in game.n_actions])


def _any(rng: np.random.Generator, game: MarkovGame) -> Factorized:
    tables = []
    for a in game.n_actions:
        t = rng.dirichlet(np.ones(a), size=game.n_states)
        if rng.random() < 0.3:
            t = np.eye(a)[rng.integers(0, a, size=game.n_states)]
        tables.append(t)
    return Factorized(tables)


def reference_bound(game: MarkovGame, pi: Factorized, pibar: Factorized, order: Sequence[int]) -> float:
    """The right side of Lemma 2 from :mod:`._reference` (no ``theory.bounds``/``evaluate``/``multiagent``)."""
    ev = ref.evaluate(game, pi.tables)
    c = ref.penalty_constant(game, ev)
    total = ev.j
    for m, agent in enumerate(order):
        prev = tuple(order[:m])
        g = ref.conditional_gain(ev.q, pi.tables, agent, prev, [pibar.tables[j] for j in prev])
        total += float(ev.rho @ np.sum(pibar.tables[agent] * g, axis=1))
        d = float(np.max(ref.kl_rows(pi.tables[agent], pibar.tables[agent])))
        total -= 0.0 if c == 0 or d == 0 else c * d
    return total


def random_errors(rng: np.random.Generator, n_cases: int) -> tuple[float, float, int, str]:
    """``(worst disagreement with the reference, worst violation of the inequality, cases, where)``."""
    worst_ref, worst_ineq, cases, where = 0.0, 0.0, 0, ""
    for k in range(n_cases):
        game = _game(rng)
        pi = _soft(rng, game)
        far = _any(rng, game)
        t = float(rng.choice([1e-3, 1e-2, 0.1, 1.0]))
        new = Factorized([(1 - t) * a + t * b for a, b in zip(pi.tables, far.tables)])
        j_new = ref.evaluate(game, new.tables).j
        for order in itertools.permutations(range(game.n_agents)):
            got = bounds.lemma2_lower_bound(game, pi, new, order)
            want = reference_bound(game, pi, new, order)
            err = 0.0 if got == want else abs(got - want) / (1 + abs(want))  # equal infinities are agreement
            if not err <= worst_ref:
                worst_ref, where = err, f"random case {k} (actions {game.n_actions}, {game.n_states} states, gamma {game.gamma}), order {order}"
            worst_ineq = max(worst_ineq, (got - j_new) / (1 + abs(j_new)))
            cases += 1
    return worst_ref, worst_ineq, cases, where


# ----------------------------------------------------------------------------------------------- tightness
def _unpack_arrays(x: np.ndarray, n_states: int, n_agents: int, n_act: int) -> tuple:
    """Search coordinates -> ``(reward, transition, gamma, initial, pi tables, pibar tables)``: unconstrained
    rewards, softmax transitions/policies/initial distribution, ``gamma = 0.01 + 0.98 sigmoid``."""
    shape = (n_states,) + (n_act,) * n_agents
    nr = int(np.prod(shape))
    i = 0
    reward = x[i:i + nr].reshape(shape)
    i += nr
    transition = softmax(x[i:i + nr * n_states].reshape(shape + (n_states,)), axis=-1)
    i += nr * n_states
    gamma = 0.01 + 0.98 / (1 + np.exp(-x[i]))
    i += 1
    k = n_states * n_act
    pi = [softmax(x[i + j * k:i + (j + 1) * k].reshape(n_states, n_act), axis=1) for j in range(n_agents)]
    i += n_agents * k
    pibar = [softmax(x[i + j * k:i + (j + 1) * k].reshape(n_states, n_act), axis=1) for j in range(n_agents)]
    i += n_agents * k
    initial = softmax(x[i:i + n_states])
    return reward, transition, float(gamma), initial, pi, pibar


def _unpack(x: np.ndarray, n_states: int, n_agents: int, n_act: int) -> tuple[MarkovGame, Factorized, Factorized]:
    reward, transition, gamma, initial, pi, pibar = _unpack_arrays(x, n_states, n_agents, n_act)
    return MarkovGame(reward, transition, gamma, initial), Factorized(pi), Factorized(pibar)


def _dim(n_states: int, n_agents: int, n_act: int) -> int:
    nr = n_states * n_act**n_agents
    return nr + nr * n_states + 1 + 2 * n_agents * n_states * n_act + n_states


def relative_slack(game: MarkovGame, pi: Factorized, pibar: Factorized) -> tuple[float, float]:
    """``((J(pibar) - bound) / (C sum_m Dmax_KL), J(pibar) - bound)`` for the identity ordering, from the library
    (``1.0, nan`` when the penalty is negligible)."""
    c = bounds.penalty_constant(game, pi)
    d = sum(bounds.max_kl(pi.tables[i], pibar.tables[i]) for i in range(game.n_agents))
    if not c * d > 1e-9:
        return 1.0, float("nan")
    slack = evaluate.expected_return(game, pibar) - bounds.lemma2_lower_bound(game, pi, pibar, tuple(range(game.n_agents)))
    return slack / (c * d), slack


def escape_game(gamma: float = 0.01, e: float = 0.009) -> tuple[MarkovGame, Factorized, Factorized]:
    """The tightest family found (cleaned from the offline search): start in state 1; there action 0 leads to the
    absorbing state 0 and action 1 stays; rewards ``r(0, .) = (0, 6)``, ``r(1, .) = (4, -2)``; ``pi`` uniform,
    ``pibar = (1/2 - e, 1/2 + e)`` in both states. The relative slack tends to 1/2 as ``gamma, e -> 0``
    (0.5059 at the defaults): the bound's penalty is never less than twice the true second-order remainder here, so
    ``C/2`` is not caught by the inequality (only by the exact values), but any ``C/k``, ``k > 2 + 1e-2``, is."""
    transition = np.zeros((2, 2, 2))
    transition[0, :, 0] = 1.0
    transition[1, 0, 0] = 1.0
    transition[1, 1, 1] = 1.0
    game = MarkovGame(np.array([[0.0, 6.0], [4.0, -2.0]]), transition, gamma, np.array([0.0, 1.0]), name="escape")
    return game, Factorized([np.full((2, 2), 0.5)]), Factorized([np.array([[0.5 - e, 0.5 + e]] * 2)])


# The two-agent worst case of the offline search (``python -m seqmarl.proofs_checks.lemma2 --search --agents 2
# --starts 60 --seed 1``; relative slack 0.5391): (n_states, n_agents, n_actions, coordinates for _unpack).
TIGHT_CASES: list[tuple[int, int, int, list[float]]] = [
    (2, 2, 2, [-31.43112212735724, -28.729860496630963, -3.8772878616479507, -4.114835157127487, -8.24433804639575,
               19.884152205394223, 19.697774288500735, 20.12200574864589, 48.712722715708864, 0.5016216649653322,
               56.60116067713638, 0.3020189517083297, 21.47272705845219, -8.208067299506867, -74.8696427351742,
               0.29415859792545945, -17.124896712875017, 8.658850345445659, -18.389695564785924, 28.820504603679304,
               72.65887951221598, -2.932939950417033, 23.959610937628746, 0.007895316072444258, -28.590149280060814,
               15.98314320948685, 15.718201207610363, 15.893141097081344, 15.923926083747586, 8.980404100187604,
               20.346931726421808, 7.416448916503183, -11.306663501222143, -0.5789790880410024, -0.5359614503457624,
               -2.819489465747845, -3.095850584347227, -1.2841758635109444, 10.161395155670546, 26.61809433242986,
               2.137717157377874, 28.190022980582786, -0.9004127955171739]),
]


def _fast_slack(x: np.ndarray, n_states: int, n_agents: int, n_act: int) -> float:
    """The search objective: relative slack from a bare numpy evaluation (``sum_m L = rho_pi . E_pibar[A_pi]`` by
    Lemma 1, so no ordering is needed); the library is consulted only at the points the search ends on."""
    reward, trans, gamma, initial, pi, pibar = _unpack_arrays(x, n_states, n_agents, n_act)
    reward = reward.reshape(n_states, -1)
    trans = trans.reshape(n_states, -1, n_states)
    eye = np.eye(n_states)

    def solve(tables: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        joint = ref.joint_table(tables).reshape(n_states, -1)
        system = eye - gamma * np.einsum("sa,sat->st", joint, trans)
        v = np.linalg.solve(system, np.sum(joint * reward, axis=1))
        return joint, v, np.linalg.solve(system.T, initial), reward + gamma * trans @ v - v[:, None]

    _, v, rho, adv = solve(pi)
    joint_new, v_new, _, _ = solve(pibar)
    c = 4 * gamma * np.max(np.abs(adv)) / (1 - gamma) ** 2
    d = sum(float(np.max(np.sum(p * np.log(p / q), axis=1))) for p, q in zip(pi, pibar))
    if not c * d > 1e-9:
        return 1.0
    slack = initial @ v_new - (initial @ v + rho @ np.sum(joint_new * adv, axis=1) - c * d)
    return float(slack / (c * d))


def tightness(rng: np.random.Generator, starts: int, evals: int) -> tuple[float, float, str]:
    """``(smallest relative slack, its absolute slack, where)`` over the stored cases and ``starts`` Nelder-Mead
    runs (2 states, 1 or 2 agents, 2 actions, ``evals`` evaluations each); the reported slacks are the library's
    (:func:`relative_slack`) at the stored and the found points."""
    best, best_abs, where = relative_slack(*escape_game()) + ("stored escape game (1 agent, 2 states)",)
    points = [(n_states, n_agents, n_act, np.asarray(x, dtype=np.float64), f"stored case {k} ({n_agents} agent(s), {n_states} states)")
              for k, (n_states, n_agents, n_act, x) in enumerate(TIGHT_CASES)]
    for k in range(starts):
        n_agents = 1 + k % 2
        res = optimize.minimize(_fast_slack, 2.0 * rng.standard_normal(_dim(2, n_agents, 2)), args=(2, n_agents, 2),
                                method="Nelder-Mead", options={"maxfev": evals, "xatol": 1e-9, "fatol": 1e-12})
        points.append((2, n_agents, 2, res.x, f"search start {k} ({n_agents} agent(s), 2 states)"))
    for n_states, n_agents, n_act, x, label in points:
        rel, slack = relative_slack(*_unpack(x, n_states, n_agents, n_act))
        if rel < best:
            best, best_abs, where = rel, slack, label
    return float(best), best_abs, where


def _lemma2_bound(profile: Profile) -> CheckResult:
    rng = np.random.default_rng(profile.seed)
    exact_worst, exact_cases, notes = exact_errors()
    ref_worst, ineq_worst, random_cases, where = random_errors(rng, profile.cases(30))
    slack, slack_abs, slack_where = tightness(rng, starts=profile.cases(2), evals=400)
    passed = exact_worst <= 1e-12 and not notes and ref_worst <= 1e-9 and ineq_worst <= 1e-9 and slack >= -1e-9 \
        and not (slack_abs < -1e-9)
    detail = (f"exact instances: {exact_cases} (rel. error {exact_worst:.2g}, tol 1e-12); random games x orderings: "
              f"{random_cases} (vs independent bound {ref_worst:.2g}, tol 1e-9; worst excess over J(pibar) "
              f"{max(ineq_worst, 0.0):.2g}); smallest relative slack (J(pibar) - bound) / (C sum Dmax) = {slack:.4f} "
              f"at {slack_where}")
    if notes:
        detail += "; " + "; ".join(notes[:4])
    elif ref_worst > 1e-9:
        detail += f"; worst disagreement at {where}"
    cases = exact_cases + random_cases + 1
    return CheckResult(cases, max(exact_worst, ref_worst, ineq_worst, 0.0), passed, detail)


def _lemma2_first_order(profile: Profile) -> CheckResult:
    rng = np.random.default_rng(profile.seed)
    worst_bound, worst_ratio, cases, ratio_cases = 0.0, 0.0, 0, 0
    for _ in range(profile.cases(30)):
        game = _game(rng)
        if game.gamma == 0:  # the match is then exact; use a discounted game so the t^2 term is visible
            game = MarkovGame(game.reward, game.transition, 0.9, game.initial)
        pi = Factorized([0.1 + (1 - a * 0.1) * rng.dirichlet(np.ones(a), size=game.n_states) for a in game.n_actions])
        delta = []
        for table in pi.tables:
            d = rng.standard_normal(table.shape)
            d -= d.mean(axis=1, keepdims=True)
            delta.append(d / np.max(np.abs(d)))
        order = tuple(int(i) for i in rng.permutation(game.n_agents))
        j = evaluate.expected_return(game, pi)
        kl_const = game.gamma / (1 - game.gamma) ** 2 * float(np.max(np.abs(evaluate.advantage(game, pi))))

        def remainder(t: float) -> tuple[float, float]:
            new = Factorized([a + t * d for a, d in zip(pi.tables, delta)])
            rem = evaluate.expected_return(game, new) - j - bounds.first_order_terms(game, pi, new, order)
            dist = float(np.max(np.abs(new.probs() - pi.probs()).reshape(game.n_states, -1).sum(axis=1)))
            return rem, kl_const * dist**2

        for t in (0.05, 1e-2, 1e-3):
            rem, limit = remainder(t)
            worst_bound = max(worst_bound, abs(rem) - limit)
            cases += 1
        r1, limit = remainder(1e-3)
        r2, _ = remainder(5e-4)
        # compare only where the t^2 coefficient is not itself tiny next to its natural scale (else t^3 dominates)
        if abs(r1) > 1e-4 * limit and abs(r1) > 1e-13:
            worst_ratio = max(worst_ratio, abs(r1 / r2 - 4.0))
            ratio_cases += 1
    passed = worst_bound <= 1e-11 and worst_ratio <= 0.4 and ratio_cases > 0
    return CheckResult(cases, max(worst_bound, 0.0), passed,
                       f"|rem| - gamma max|A| D^2/(1-gamma)^2 <= {max(worst_bound, 0.0):.2g}; "
                       f"max |rem(t)/rem(t/2) - 4| = {worst_ratio:.3f} at t = 1e-3 ({ratio_cases} cases)")


CHECKS = [
    Check(
        name="lemma2_bound",
        claim="J(pibar) >= J(pi) + sum_m [L^{i_1:m}_pi(pibar^{i_1:m-1}, pibar^{i_m}) - C Dmax_KL(pi^{i_m}, pibar^{i_m})]: "
        "exact values on rational games (Fractions), agreement with an independent computation on random games x "
        "every ordering, and the smallest relative slack an adversarial search finds (the bound must hold there)",
        source="ICLR22 Lemma 2, theory.md §1.8",
        method="exact",
        run=_lemma2_bound,
    ),
    Check(
        name="lemma2_first_order",
        claim="sum_m L^{i_1:m}_pi(pibar^{i_1:m-1}, pibar^{i_m}) matches J(pibar) - J(pi) to O(|pibar - pi|^2)",
        source="ICLR22 Lemma 1-2, theory.md §1.8 'How to verify'",
        method="property",
        run=_lemma2_first_order,
    ),
]


def search_tight_cases(seed: int, starts: int, evals: int, n_agents: int, n_states: int = 2) -> tuple[float, list[float]]:
    """The offline search behind :data:`TIGHT_CASES`: ``starts`` Nelder-Mead + Powell runs (``evals`` evaluations
    each) of :func:`_fast_slack`; returns the smallest relative slack (library value) and its coordinates."""
    rng = np.random.default_rng(seed)
    best, best_x = np.inf, None
    for _ in range(starts):
        x = 2.0 * rng.standard_normal(_dim(n_states, n_agents, 2))
        for method in ("Nelder-Mead", "Powell"):
            x = optimize.minimize(_fast_slack, x, args=(n_states, n_agents, 2), method=method,
                                  options={"maxfev": evals, "xatol": 1e-10, "fatol": 1e-13}).x
        rel, _ = relative_slack(*_unpack(x, n_states, n_agents, 2))
        if rel < best:
            best, best_x = rel, x
    return float(best), [float(v) for v in best_x]  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> None:
    """``python -m seqmarl.proofs_checks.lemma2 --search`` prints new :data:`TIGHT_CASES` entries."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search", action="store_true", help="run the offline tightness search")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--starts", type=int, default=40)
    parser.add_argument("--evals", type=int, default=4000)
    parser.add_argument("--agents", type=int, default=1)
    parser.add_argument("--states", type=int, default=2)
    args = parser.parse_args(argv)
    if args.search:
        best, x = search_tight_cases(args.seed, args.starts, args.evals, args.agents, args.states)
        print(f"# relative slack {best!r}")
        print(f"({args.states}, {args.agents}, 2, {x!r}),")


if __name__ == "__main__":
    main()
