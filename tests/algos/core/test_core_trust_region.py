"""Conjugate gradient, Fisher-vector products, natural step and the HARL line search."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from seqmarl.algos.core import (
    Actor,
    backtracking_line_search,
    conjugate_gradient,
    fisher_vector_product,
    flat_grad,
    flat_params,
    natural_step,
    set_flat_params,
)

D = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- flat helpers
def test_flat_params_round_trip():
    a = torch.nn.Linear(3, 2).double()
    x = flat_params(a.parameters())
    assert x.shape == (8,)
    set_flat_params(a.parameters(), torch.arange(8, dtype=D))
    assert torch.equal(a.weight, torch.arange(6, dtype=D).reshape(2, 3)) and torch.equal(a.bias, t2(6, 7))
    with pytest.raises(ValueError, match="flat"):
        set_flat_params(a.parameters(), torch.zeros(7, dtype=D))
    # gradient of sum(W x + b) at x = 1: dW = 1, db = 1; an unused parameter yields zeros
    unused = torch.zeros(2, dtype=D, requires_grad=True)
    g = flat_grad(a(torch.ones(3, dtype=D)).sum(), list(a.parameters()) + [unused])
    assert torch.equal(g, torch.cat([torch.ones(8, dtype=D), torch.zeros(2, dtype=D)]))


def t2(*xs):
    return torch.tensor(xs, dtype=D)


# ---------------------------------------------------------------- CG
def test_cg_hand_example():
    # A = [[4, 1], [1, 3]], b = [1, 2]: x = A^{-1} b = [1/11, 7/11], reached in 2 = dim iterations.
    A = t2(4, 1, 1, 3).reshape(2, 2)
    x = conjugate_gradient(lambda v: A @ v, t2(1, 2), n_iters=2, residual_tol=0.0)
    assert torch.allclose(x, t2(1 / 11, 7 / 11), atol=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_cg_random_spd(seed):
    rng = np.random.default_rng(seed)
    dim = 8
    M = rng.normal(size=(dim, dim))
    A = M @ M.T + 0.5 * np.eye(dim)
    b = rng.normal(size=dim)
    At = torch.tensor(A)
    x = conjugate_gradient(lambda v: At @ v, torch.tensor(b), n_iters=dim, residual_tol=1e-30)
    exact = np.linalg.solve(A, b)
    assert np.max(np.abs(x.numpy() - exact)) < 1e-6 * max(1.0, np.max(np.abs(exact)))


def test_cg_stops_on_residual_tol():
    calls = []

    def Avp(v):
        calls.append(1)
        return 2.0 * v

    x = conjugate_gradient(Avp, t2(1, 1, 1), n_iters=10)   # A = 2I: exact after one product, then r = 0
    assert torch.allclose(x, t2(0.5, 0.5, 0.5)) and len(calls) == 1


# ---------------------------------------------------------------- FVP on a tabular softmax actor (theory.md §1.10 item 3)
S, A_ = 3, 4


def tabular_problem(seed=0):
    rng = np.random.default_rng(seed)
    theta0 = torch.tensor(rng.normal(size=(S, A_)))
    rho = torch.tensor(rng.dirichlet(np.ones(S)))
    adv = torch.tensor(rng.normal(size=(S, A_)))
    theta = theta0.clone().requires_grad_(True)
    logp_old = torch.log_softmax(theta0, -1)

    def kl_fn():  # sum_s rho(s) KL(pi_old(.|s) || pi_theta(.|s))
        return (rho * (logp_old.exp() * (logp_old - torch.log_softmax(theta, -1))).sum(-1)).sum()

    def surrogate():  # sum_s rho(s) sum_a pi_theta(a|s) A(s, a)
        return (rho * (torch.softmax(theta, -1) * adv).sum(-1)).sum()

    pi = torch.softmax(theta0, -1)
    H = torch.block_diag(*[rho[s] * (torch.diag(pi[s]) - torch.outer(pi[s], pi[s])) for s in range(S)])
    return theta, kl_fn, surrogate, H, adv


@pytest.mark.parametrize("seed", range(3))
def test_fvp_equals_exact_fisher(seed):
    theta, kl_fn, _, H, _ = tabular_problem(seed)
    fvp = fisher_vector_product(kl_fn, [theta])
    v = torch.randn(S * A_, generator=gen(seed), dtype=D)
    assert torch.allclose(fvp(v), H @ v, atol=1e-12)
    assert torch.allclose(fvp(v), H @ v, atol=1e-12)          # reusable (graph retained)
    damped = fisher_vector_product(kl_fn, [theta], damping=0.1)
    assert torch.allclose(damped(v), H @ v + 0.1 * v, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_natural_step_equals_pseudo_inverse_step(seed):
    theta, kl_fn, surrogate, H, adv = tabular_problem(seed)
    fvp = fisher_vector_product(kl_fn, [theta])
    g = flat_grad(surrogate(), [theta])
    x_cg = conjugate_gradient(fvp, g, n_iters=S * A_, residual_tol=1e-28)
    x_pinv = torch.tensor(np.linalg.pinv(H.numpy()) @ g.numpy())
    assert torch.allclose(x_cg, x_pinv, atol=1e-6)
    # closed form: g_s = H_s A_s, so H^+ g = per-state projection of A_s off the all-ones null space
    centred = (adv - adv.mean(-1, keepdim=True)).reshape(-1)
    assert torch.allclose(x_pinv, centred, atol=1e-9)
    # HATRPO eq. (8): full = sqrt(2 delta / g^T H^+ g) H^+ g, so the quadratic KL model equals delta exactly
    delta = 0.01
    full, expected = natural_step(g, fvp, delta, cg_iters=S * A_, residual_tol=1e-28)
    assert abs(float(0.5 * full @ (H @ full)) - delta) < 1e-9
    assert torch.allclose(full, math.sqrt(2 * delta / float(g @ x_pinv)) * x_pinv, atol=1e-6)
    assert abs(float(expected) - math.sqrt(2 * delta * float(g @ x_pinv))) < 1e-9


def test_fvp_matches_autograd_hessian_for_an_mlp_actor():
    actor = Actor(2, 3, hidden=(3,), out_gain=1.0, generator=gen(1), dtype=D)
    obs = torch.randn(5, 2, generator=gen(2), dtype=D)
    names = [n for n, _ in actor.named_parameters()]
    params = list(actor.parameters())
    shapes = [p.shape for p in params]
    with torch.no_grad():
        logp_old = torch.log_softmax(actor.distribution(obs).logits, -1)

    def kl_of(flat):
        chunks, i = {}, 0
        for n, s in zip(names, shapes):
            k = int(np.prod(s))
            chunks[n] = flat[i : i + k].reshape(s)
            i += k
        logits = functional_call(actor, chunks, (obs,)).logits
        return (logp_old.exp() * (logp_old - torch.log_softmax(logits, -1))).sum(-1).mean()

    x0 = flat_params(params)
    Hfull = torch.autograd.functional.hessian(kl_of, x0)
    fvp = fisher_vector_product(
        lambda: (logp_old.exp() * (logp_old - torch.log_softmax(actor.distribution(obs).logits, -1))).sum(-1).mean(),
        params,
    )
    v = torch.randn(x0.numel(), generator=gen(3), dtype=D)
    assert torch.allclose(fvp(v), Hfull @ v, atol=1e-10)


# ---------------------------------------------------------------- line search (HARL rule), f(x) = -(x - 2)^2, x0 = 0
def f(x):
    return -((x - 2.0) ** 2).sum()


X0 = torch.zeros(1, dtype=D)


def test_line_search_accepts_full_step():
    # step 1: f(1) = -1, improve = 3, expected = g * step = 4 * 1, ratio 0.75 > 0.5 -> accept at once
    res = backtracking_line_search(f, X0, t2(1.0), 4.0)
    assert res.accepted and res.fraction == 1.0 and res.n_tries == 1
    assert torch.equal(res.x, t2(1.0)) and res.improve == 3.0


def test_line_search_ratio_must_exceed_accept_ratio_strictly():
    # Newton step 2: improve 4, expected 8, ratio exactly 0.5 -> rejected;
    # fraction 0.8: x = 1.6, improve = 4 - 0.16 = 3.84, expected 6.4, ratio 0.6 -> accepted (2nd try)
    res = backtracking_line_search(f, X0, t2(2.0), 8.0)
    assert res.accepted and res.n_tries == 2 and abs(res.fraction - 0.8) < 1e-15
    assert torch.allclose(res.x, t2(1.6))


def test_line_search_backtracks_on_overshoot():
    # step 4 (expected 16):
    #   frac 1      x=4      improve 0          -> reject (improve must be > 0)
    #   frac 0.8    x=3.2    improve 2.56       ratio 2.56/12.8   = 0.2    -> reject
    #   frac 0.64   x=2.56   improve 3.6864     ratio 3.6864/10.24 = 0.36  -> reject
    #   frac 0.512  x=2.048  improve 3.997696   ratio /8.192       = 0.488 -> reject
    #   frac 0.4096 x=1.6384 improve 3.86924544 ratio /6.5536      = 0.5904 -> accept (5th try)
    res = backtracking_line_search(f, X0, t2(4.0), 16.0)
    assert res.accepted and res.n_tries == 5
    assert abs(res.fraction - 0.4096) < 1e-12
    assert abs(res.improve - 3.86924544) < 1e-12
    short = backtracking_line_search(f, X0, t2(4.0), 16.0, max_steps=4)   # not enough tries -> roll back
    assert not short.accepted and torch.equal(short.x, X0) and short.fraction == 0.0


def test_line_search_rolls_back_on_bad_direction():
    res = backtracking_line_search(f, X0, t2(-1.0), 4.0)   # every candidate makes f worse
    assert not res.accepted and torch.equal(res.x, X0) and res.n_tries == 10 and res.improve < 0


def test_line_search_kl_constraint():
    # kl(x) = x^2, limit 0.5, step 1: frac 1 kl 1 (reject), 0.8 kl 0.64 (reject),
    #   0.64: kl 0.4096 < 0.5, improve = 4 - 1.36^2 = 2.1504, expected 2.56, ratio 0.84 -> accept
    res = backtracking_line_search(f, X0, t2(1.0), 4.0, kl_fn=lambda x: float((x ** 2).sum()), kl_limit=0.5)
    assert res.accepted and res.n_tries == 3 and abs(res.fraction - 0.64) < 1e-15
    assert abs(res.kl - 0.4096) < 1e-12 and abs(res.improve - 2.1504) < 1e-12


def test_validation():
    with pytest.raises(ValueError, match="kl_fn and kl_limit"):
        backtracking_line_search(f, X0, t2(1.0), 4.0, kl_fn=lambda x: 0.0)
    with pytest.raises(ValueError, match="expected_improve"):
        backtracking_line_search(f, X0, t2(1.0), -1.0)
    with pytest.raises(ValueError, match="backtrack_coeff"):
        backtracking_line_search(f, X0, t2(1.0), 4.0, backtrack_coeff=1.0)
    with pytest.raises(ValueError, match="full_step"):
        backtracking_line_search(f, X0, t2(1.0, 2.0), 4.0)
    with pytest.raises(TypeError, match="f must"):
        backtracking_line_search(3, X0, t2(1.0), 4.0)
    with pytest.raises(ValueError, match="b must"):
        conjugate_gradient(lambda v: v, torch.zeros(2, 2, dtype=D))
    with pytest.raises(ValueError, match="n_iters"):
        conjugate_gradient(lambda v: v, torch.zeros(2, dtype=D), n_iters=0)
    theta, kl_fn, _, _, _ = tabular_problem()
    fvp = fisher_vector_product(kl_fn, [theta])
    with pytest.raises(ValueError, match="v must"):
        fvp(torch.zeros(3, dtype=D))
    with pytest.raises(ValueError, match="damping"):
        fisher_vector_product(kl_fn, [theta], damping=-1.0)
    with pytest.raises(ValueError, match="max_kl"):
        natural_step(torch.ones(S * A_, dtype=D), fvp, 0.0)
    with pytest.raises(ValueError, match="params"):
        flat_params([])


def test_cg_on_singular_fisher_in_float32_does_not_blow_up() -> None:
    """Regression: H = [[1,1],[1,1]] (a Gaussian mean w*1 + b has two redundant parameters), b = (g, g).
    The exact minimum-norm solution is (g/2, g/2). Without the relative-curvature stop, float32 rounding
    left a 1e-5 residual in the null space and CG diverged to ~1e10."""
    H = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    b = torch.tensor([0.6155, 0.6155])
    x = conjugate_gradient(lambda v: H @ (v + torch.tensor([1e-5, -1e-5]) * 0), b, n_iters=10)
    assert torch.allclose(x, b / 2, atol=1e-5)
    # a perturbation of the rounding kind: residual in the null space
    noisy = lambda v: H @ v + 1e-7 * torch.tensor([v[0] - v[1], v[1] - v[0]])  # noqa: E731
    x = conjugate_gradient(noisy, b + torch.tensor([1.4e-5, -1.4e-5]), n_iters=10)
    assert float(x.abs().max()) < 1.0, x
