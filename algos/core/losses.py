"""PPO-family loss pieces: Huber loss, MAPPO clipped value loss, clipped surrogate, ratio aggregation.

Sign convention: :func:`ppo_clip_objective` returns an objective to MAXIMISE; :func:`value_loss` and
:func:`huber_loss` return quantities to MINIMISE.
"""

from __future__ import annotations

import torch

from ._checks import check_flag_tensor, check_positive, check_tensor

Tensor = torch.Tensor

__all__ = ["huber_loss", "mse_loss", "value_loss", "ppo_clip_objective", "aggregate_ratio", "masked_mean"]


def masked_mean(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean of ``x``; with ``mask`` (x's shape, bool/0-1), ``sum(x * mask) / sum(mask)`` (needs sum(mask) > 0)."""
    check_tensor(x, "x", floating=True)
    if mask is None:
        return x.mean()
    m = check_flag_tensor(mask, "mask")
    if tuple(m.shape) != tuple(x.shape):
        raise ValueError(f"mask must have shape {tuple(x.shape)}, got {tuple(m.shape)}")
    m = m.to(x.dtype)
    total = m.sum()
    if not bool(total > 0):
        raise ValueError("mask selects no entry")
    return (x * m).sum() / total


def huber_loss(err: Tensor, delta: float = 10.0) -> Tensor:
    r"""Elementwise Huber loss (HARL form, δ = 10 by default `[SOURCE: HARL-code]`):

    .. math:: h_\delta(e) = \tfrac12 e^2 \ \text{if}\ |e|\le\delta,\qquad \delta(|e|-\tfrac12\delta)\ \text{otherwise}.
    """
    check_tensor(err, "err", floating=True)
    delta = check_positive(delta, "delta")
    a = err.abs()
    return torch.where(a <= delta, 0.5 * err * err, delta * (a - 0.5 * delta))


def mse_loss(err: Tensor) -> Tensor:
    """Elementwise ``e**2 / 2`` (HARL's ``mse_loss``)."""
    check_tensor(err, "err", floating=True)
    return 0.5 * err * err


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    clip_eps: float | None,
    huber_delta: float | None = None,
    clipped: bool = True,
    mask: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    r"""MAPPO clipped value loss (theory.md §1.3; `[SOURCE: HARL-code]` critic loss):

    .. math:: \mathcal L = \mathrm{mean}\ \max\big(\ell(R - V),\ \ell(R - \mathrm{clip}(V, V_{old}-\varepsilon,
              V_{old}+\varepsilon))\big)

    with ``ℓ = huber_loss(·, huber_delta)`` if ``huber_delta`` is given, else ``e²/2``. ``clipped=False`` gives
    ``mean ℓ(R - V)`` (``clip_eps`` may then be None). All three tensors share one shape and one scale
    (with value normalisation: normalised predictions and normalised returns). ``mask`` gives a masked mean;
    ``reduction="none"`` returns the elementwise loss (before any mean; ``mask`` must then be None).
    """
    check_tensor(values, "values", floating=True)
    check_tensor(returns, "returns", floating=True)
    if tuple(returns.shape) != tuple(values.shape):
        raise ValueError(f"returns must have values' shape {tuple(values.shape)}, got {tuple(returns.shape)}")
    if not isinstance(clipped, bool):
        raise TypeError(f"clipped must be a bool, got {type(clipped).__name__}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if reduction == "none" and mask is not None:
        raise ValueError("mask applies to reduction='mean' only (reduction='none' returns the elementwise loss)")

    def ell(e: Tensor) -> Tensor:
        return mse_loss(e) if huber_delta is None else huber_loss(e, huber_delta)

    loss = ell(returns - values)
    if clipped:
        if clip_eps is None:
            raise ValueError("clip_eps must be a positive number when clipped=True")
        eps = check_positive(clip_eps, "clip_eps")
        check_tensor(old_values, "old_values", floating=True)
        if tuple(old_values.shape) != tuple(values.shape):
            raise ValueError(f"old_values must have values' shape {tuple(values.shape)}, "
                             f"got {tuple(old_values.shape)}")
        v_clip = old_values + (values - old_values).clamp(-eps, eps)
        loss = torch.maximum(loss, ell(returns - v_clip))
    return loss if reduction == "none" else masked_mean(loss, mask)


def ppo_clip_objective(
    ratio: Tensor,
    adv: Tensor,
    clip: float,
    weight: Tensor | None = None,
    mask: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    r"""PPO-clip surrogate to MAXIMISE (theory.md §1.3 eq. (4); HAPPO §1.11 eq. (11) with ``weight`` = factor):

    .. math:: \mathrm{mean}\big[w\,\min\big(rA,\ \mathrm{clip}(r,1-\epsilon,1+\epsilon)A\big)\big].

    ``weight`` (e.g. HAPPO's factor, > 0, treated as data: pass it detached) multiplies outside the min, which
    equals ``min(r·wA, clip(r)·wA)`` for w > 0 (theory.md §1.11). ``reduction``: ``"mean"`` (masked mean if
    ``mask``) or ``"none"`` (elementwise). ``ratio``, ``adv``, ``weight`` broadcast together.
    """
    check_tensor(ratio, "ratio", floating=True)
    check_tensor(adv, "adv", floating=True)
    eps = check_positive(clip, "clip")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    obj = torch.minimum(ratio * adv, ratio.clamp(1.0 - eps, 1.0 + eps) * adv)
    if weight is not None:
        check_tensor(weight, "weight", floating=True)
        obj = weight * obj
    if reduction == "none":
        return obj
    return masked_mean(obj, mask)


def aggregate_ratio(log_ratio: Tensor, how: str = "prod", dim_mask: Tensor | None = None) -> Tensor:
    r"""Combine per-action-dimension log-ratios ``[..., d]`` into one ratio ``[...]`` (HARL ``action_aggregation``):

    * ``"prod"``: :math:`\prod_j r_j = \exp\sum_j \log r_j` (the exact ratio of the joint Gaussian; HARL default);
    * ``"mean"``: :math:`\frac1d\sum_j r_j` (mean of per-dimension ratios).

    ``dim_mask [..., d]`` or ``[d]`` (bool) marks the dimensions that exist (padded heterogeneous actions); masked
    dimensions are ignored by both modes.
    """
    check_tensor(log_ratio, "log_ratio", floating=True, ndim_min=1)
    if how not in ("prod", "mean"):
        raise ValueError(f"how must be 'prod' or 'mean', got {how!r}")
    if dim_mask is None:
        m = torch.ones_like(log_ratio)
    else:
        mb = check_flag_tensor(dim_mask, "dim_mask")
        try:
            m = torch.broadcast_to(mb, log_ratio.shape).to(log_ratio.dtype)
        except RuntimeError as exc:
            raise ValueError(f"dim_mask of shape {tuple(mb.shape)} does not broadcast to {tuple(log_ratio.shape)}") \
                from exc
        if not bool((m.sum(-1) > 0).all()):
            raise ValueError("dim_mask must keep at least one dimension per row")
    if how == "prod":
        return torch.exp((log_ratio * m).sum(-1))
    return (torch.exp(log_ratio) * m).sum(-1) / m.sum(-1)
