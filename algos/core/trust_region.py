"""Trust-region machinery for TRPO / HATRPO (theory.md §1.10).

* :func:`conjugate_gradient` solves ``H x = g`` with Hessian-vector products only;
* :func:`fisher_vector_product` builds ``v -> (∇² KL) v + damping v`` by double back-propagation;
* :func:`natural_step` gives the step of HATRPO eq. (8): ``sqrt(2δ / gᵀH⁻¹g) H⁻¹g``;
* :func:`backtracking_line_search` implements the HARL acceptance rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from ._checks import check_int, check_positive, check_prob, check_tensor

Tensor = torch.Tensor

__all__ = [
    "flat_params",
    "set_flat_params",
    "flat_grad",
    "conjugate_gradient",
    "fisher_vector_product",
    "natural_step",
    "LineSearchResult",
    "backtracking_line_search",
]


def _param_list(params: Iterable[Tensor], name: str = "params") -> list[Tensor]:
    if isinstance(params, torch.Tensor):
        params = [params]
    out = list(params)
    if not out:
        raise ValueError(f"{name} must contain at least one tensor")
    for i, p in enumerate(out):
        check_tensor(p, f"{name}[{i}]")
    return out


def flat_params(params: Iterable[Tensor]) -> Tensor:
    """Concatenate the parameters into one detached 1-D tensor (in iteration order)."""
    return torch.cat([p.detach().reshape(-1) for p in _param_list(params)])


@torch.no_grad()
def set_flat_params(params: Iterable[Tensor], flat: Tensor) -> None:
    """Copy consecutive slices of the 1-D ``flat`` into ``params`` (inverse of :func:`flat_params`)."""
    ps = _param_list(params)
    check_tensor(flat, "flat")
    total = sum(p.numel() for p in ps)
    if flat.dim() != 1 or flat.numel() != total:
        raise ValueError(f"flat must be a 1-D tensor with {total} elements, got shape {tuple(flat.shape)}")
    i = 0
    for p in ps:
        n = p.numel()
        p.copy_(flat[i : i + n].view_as(p))
        i += n


def flat_grad(
    output: Tensor,
    params: Iterable[Tensor],
    *,
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> Tensor:
    """Gradient of the scalar ``output`` w.r.t. ``params`` as one 1-D tensor (unused params give zeros)."""
    check_tensor(output, "output", floating=True)
    if output.numel() != 1:
        raise ValueError(f"output must be a scalar, got shape {tuple(output.shape)}")
    ps = _param_list(params)
    grads = torch.autograd.grad(output, ps, retain_graph=retain_graph, create_graph=create_graph,
                                allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(ps, grads)])


_RELATIVE_CURVATURE_FLOOR = 1e-6


def conjugate_gradient(
    Avp: Callable[[Tensor], Tensor],
    b: Tensor,
    n_iters: int = 10,
    residual_tol: float = 1e-10,
) -> Tensor:
    r"""Approximately solve ``A x = b`` for symmetric positive (semi-)definite ``A`` given ``v -> A v``.

    Standard CG from ``x_0 = 0`` (HARL uses 10 iterations). Stops once ``rᵀr < residual_tol``. In exact
    arithmetic it terminates in at most ``dim`` iterations; for singular PSD ``A`` with ``b ∈ range(A)`` the
    iterates stay in ``range(A)`` and converge to the minimum-norm solution ``A⁺ b``.
    """
    if not callable(Avp):
        raise TypeError(f"Avp must be callable, got {type(Avp).__name__}")
    check_tensor(b, "b", floating=True)
    if b.dim() != 1:
        raise ValueError(f"b must be 1-D, got shape {tuple(b.shape)}")
    n_iters = check_int(n_iters, "n_iters")
    residual_tol = check_positive(residual_tol, "residual_tol", allow_zero=True)
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rdotr = torch.dot(r, r)
    first_curvature: float | None = None
    for _ in range(n_iters):
        if float(rdotr) < residual_tol:
            break
        Ap = Avp(p)
        pAp = torch.dot(p, Ap)
        curvature = float(pAp) / max(float(torch.dot(p, p)), 1e-300)
        if first_curvature is None:
            first_curvature = curvature
        # Zero/negative curvature, or curvature at rounding level relative to the first direction: for a
        # singular PSD A (e.g. a Fisher with redundant parameters) the residual left in the null space is
        # rounding noise, and stepping along it would blow the solution up. Stop: r is ⟂ range(A) up to rounding.
        if curvature <= 0.0 or curvature < _RELATIVE_CURVATURE_FLOOR * first_curvature:
            break
        alpha = rdotr / pAp
        x = x + alpha * p
        r = r - alpha * Ap
        new_rdotr = torch.dot(r, r)
        p = r + (new_rdotr / rdotr) * p
        rdotr = new_rdotr
    return x


def fisher_vector_product(
    kl_fn: Callable[[], Tensor],
    params: Sequence[Tensor],
    damping: float = 0.0,
) -> Callable[[Tensor], Tensor]:
    r"""Return ``v -> (∇²_θ KL) v + damping · v`` (theory.md §1.10: H = Hessian of the mean KL at θ_k).

    ``kl_fn()`` must return the scalar mean KL ``E_s KL(π_old(·|s) ‖ π_θ(·|s))`` with the old distribution
    detached; at θ = θ_old its Hessian is the Fisher information. The first derivative is built once with
    ``create_graph=True``; each product is one more backward pass (Pearlmutter's double back-propagation).
    """
    if not callable(kl_fn):
        raise TypeError(f"kl_fn must be callable, got {type(kl_fn).__name__}")
    ps = _param_list(params)
    damping = check_positive(damping, "damping", allow_zero=True)
    kl = kl_fn()
    check_tensor(kl, "kl_fn()", floating=True)
    if kl.numel() != 1:
        raise ValueError(f"kl_fn() must return a scalar, got shape {tuple(kl.shape)}")
    grad_kl = flat_grad(kl, ps, create_graph=True)
    n = grad_kl.numel()

    def fvp(v: Tensor) -> Tensor:
        check_tensor(v, "v", floating=True)
        if v.dim() != 1 or v.numel() != n:
            raise ValueError(f"v must be a 1-D tensor with {n} elements, got shape {tuple(v.shape)}")
        gv = torch.dot(grad_kl, v.to(grad_kl.dtype).detach())
        hv = flat_grad(gv, ps, retain_graph=True)
        return hv + damping * v

    return fvp


def natural_step(
    g: Tensor,
    fvp: Callable[[Tensor], Tensor],
    max_kl: float,
    cg_iters: int = 10,
    residual_tol: float = 1e-10,
) -> tuple[Tensor, Tensor]:
    r"""HATRPO eq. (8) step: ``s = CG(H, g)``; ``full_step = sqrt(2δ / sᵀHs) s``.

    HARL writes ``shs = ½ sᵀHs`` and ``step_size = 1/sqrt(shs/δ)``, the same number. Returns
    ``(full_step, expected_improve)`` with ``expected_improve = gᵀ full_step`` (the linear model's gain).
    ``cg_iters``/``residual_tol`` are passed to :func:`conjugate_gradient` (HARL: 10 and 1e-10).
    """
    check_tensor(g, "g", floating=True)
    max_kl = check_positive(max_kl, "max_kl")
    s = conjugate_gradient(fvp, g, n_iters=cg_iters, residual_tol=residual_tol)
    shs = 0.5 * torch.dot(s, fvp(s))
    if not bool(shs > 0):
        raise ValueError("the step direction has zero curvature (sᵀHs = 0): g is zero or H is degenerate along it")
    full = s * torch.sqrt(max_kl / shs)
    return full, torch.dot(g, full)


@dataclass(frozen=True)
class LineSearchResult:
    """Outcome of :func:`backtracking_line_search`.

    ``x`` is the accepted point (``x0`` on rollback), ``fraction`` the accepted step fraction (0.0 on
    rollback), ``n_tries`` the number of candidates evaluated, ``improve``/``expected_improve``/``kl`` those of
    the accepted candidate (of the last one tried on rollback).
    """

    accepted: bool
    x: Tensor
    fraction: float
    n_tries: int
    improve: float
    expected_improve: float
    kl: float | None


def backtracking_line_search(
    f: Callable[[Tensor], Tensor | float],
    x0: Tensor,
    full_step: Tensor,
    expected_improve: Tensor | float,
    accept_ratio: float = 0.5,
    backtrack_coeff: float = 0.8,
    max_steps: int = 10,
    kl_fn: Callable[[Tensor], Tensor | float] | None = None,
    kl_limit: float | None = None,
) -> LineSearchResult:
    r"""Backtracking line search with the HARL acceptance test (theory.md §1.10).

    For ``j = 0, …, max_steps-1``, candidate ``x_j = x0 + c^j · full_step`` (``c = backtrack_coeff``), with
    ``improve_j = f(x_j) - f(x0)`` and ``expected_j = c^j · expected_improve``. Accept the first ``x_j`` with

        ``kl_fn(x_j) < kl_limit`` (if ``kl_fn`` is given)  and  ``improve_j / expected_j > accept_ratio``
        and  ``improve_j > 0``;

    otherwise roll back to ``x0``. ``f`` is the surrogate to MAXIMISE. ``f`` and ``kl_fn`` may load ``x``
    into a model; afterwards the caller must load ``result.x`` (it is ``x0`` after a rollback).
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    check_tensor(x0, "x0", floating=True)
    check_tensor(full_step, "full_step", floating=True)
    if tuple(full_step.shape) != tuple(x0.shape):
        raise ValueError(f"full_step must have x0's shape {tuple(x0.shape)}, got {tuple(full_step.shape)}")
    expected = float(expected_improve)
    if not math.isfinite(expected) or expected <= 0:
        raise ValueError(f"expected_improve must be a positive finite number, got {expected}")
    accept_ratio = check_prob(accept_ratio, "accept_ratio")
    backtrack_coeff = check_prob(backtrack_coeff, "backtrack_coeff", low_open=True, high_open=True)
    max_steps = check_int(max_steps, "max_steps")
    if (kl_fn is None) != (kl_limit is None):
        raise ValueError("kl_fn and kl_limit must be given together (or both omitted)")
    if kl_fn is not None:
        if not callable(kl_fn):
            raise TypeError(f"kl_fn must be callable, got {type(kl_fn).__name__}")
        kl_limit = check_positive(kl_limit, "kl_limit")

    f0 = float(f(x0))
    fraction = 1.0
    improve = float("nan")
    kl_val: float | None = None
    for j in range(max_steps):
        x = x0 + fraction * full_step
        improve = float(f(x)) - f0
        exp_j = fraction * expected
        kl_ok = True
        if kl_fn is not None:
            kl_val = float(kl_fn(x))
            kl_ok = kl_val < kl_limit  # type: ignore[operator]
        if kl_ok and improve / exp_j > accept_ratio and improve > 0:
            return LineSearchResult(True, x, fraction, j + 1, improve, exp_j, kl_val)
        fraction *= backtrack_coeff
    last_expected = fraction / backtrack_coeff * expected
    return LineSearchResult(False, x0.clone(), 0.0, max_steps, improve, last_expected, kl_val)
