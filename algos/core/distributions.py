"""Action distributions used by the policy heads: masked categorical and diagonal Gaussian.

Small explicit classes instead of ``torch.distributions`` so that masking, per-dimension log-probabilities
(for HAPPO's ``prod``/``mean`` ratio aggregation) and sampling with an explicit ``torch.Generator`` are
spelled out and tested.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_flag_tensor, check_tensor

Tensor = torch.Tensor

__all__ = ["MaskedCategorical", "DiagGaussian"]

_LOG_2PI = math.log(2.0 * math.pi)


class MaskedCategorical:
    r"""Categorical distribution over the last axis of ``logits`` with an availability mask.

    Unavailable actions get logit ``finfo(dtype).min``; after the softmax their probability is exactly 0
    (``exp(min - max)`` underflows to 0), so they are never sampled and contribute 0 to the entropy:

    .. math:: \pi(a) = \frac{\mathbb 1[a\ \text{avail}]\,e^{z_a}}{\sum_{b\ \text{avail}} e^{z_b}},\qquad
              H = -\sum_{a\ \text{avail}} \pi(a)\log\pi(a).

    Args:
        logits: ``[..., A]`` floating tensor.
        avail: optional ``[..., A]`` bool / 0-1 mask; every row must have at least one available action.
    """

    def __init__(self, logits: Tensor, avail: Tensor | None = None) -> None:
        check_tensor(logits, "logits", floating=True, ndim_min=1)
        if avail is not None:
            avail = check_flag_tensor(avail, "avail")
            if tuple(avail.shape) != tuple(logits.shape):
                raise ValueError(f"avail must have logits' shape {tuple(logits.shape)}, got {tuple(avail.shape)}")
            if avail.numel() and not bool(avail.any(-1).all()):
                raise ValueError("avail has a row with no available action")
            logits = torch.where(avail, logits, torch.full_like(logits, torch.finfo(logits.dtype).min))
        self.avail = avail
        self.logits = logits
        self.log_probs_all = torch.log_softmax(logits, dim=-1)
        self.probs = self.log_probs_all.exp()

    @property
    def n_actions(self) -> int:
        return self.logits.shape[-1]

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.logits.shape[:-1])

    def log_prob(self, actions: Tensor) -> Tensor:
        """``log pi(actions)`` for integer ``actions`` of the batch shape."""
        check_tensor(actions, "actions")
        if actions.is_floating_point() or actions.dtype == torch.bool:
            raise TypeError(f"actions must be an integer tensor, got dtype {actions.dtype}")
        if tuple(actions.shape) != self.batch_shape:
            raise ValueError(f"actions must have shape {self.batch_shape}, got {tuple(actions.shape)}")
        if actions.numel() and (bool((actions < 0).any()) or bool((actions >= self.n_actions).any())):
            raise ValueError(f"actions must lie in [0, {self.n_actions}), got values outside")
        return self.log_probs_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> Tensor:
        plogp = self.probs * self.log_probs_all
        if self.avail is not None:
            plogp = torch.where(self.avail, plogp, torch.zeros_like(plogp))
        return -plogp.sum(-1)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """Draw actions (int64, batch shape) with ``torch.multinomial`` (never picks a zero-probability action)."""
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        flat = self.probs.detach().reshape(-1, self.n_actions)
        if flat.shape[0] == 0:
            return torch.zeros(self.batch_shape, dtype=torch.long, device=self.logits.device)
        idx = torch.multinomial(flat, 1, generator=generator)
        return idx.reshape(self.batch_shape)

    def mode(self) -> Tensor:
        """Most probable available action."""
        return self.logits.argmax(-1)


class DiagGaussian:
    r"""Independent Gaussians over the last axis: ``a_j ~ N(mean_j, exp(log_std_j)^2)``.

    .. math:: \log p(a) = \sum_j\Big[-\tfrac12\Big(\tfrac{a_j-\mu_j}{\sigma_j}\Big)^2-\log\sigma_j
              -\tfrac12\log 2\pi\Big],\qquad H=\sum_j\Big[\tfrac12+\tfrac12\log 2\pi+\log\sigma_j\Big].

    ``per_dim=True`` returns the per-dimension terms (no sum), e.g. for HAPPO's ``mean`` ratio aggregation.
    """

    def __init__(self, mean: Tensor, log_std: Tensor) -> None:
        check_tensor(mean, "mean", floating=True, ndim_min=1)
        check_tensor(log_std, "log_std", floating=True)
        try:
            log_std = torch.broadcast_to(log_std, mean.shape)
        except RuntimeError as exc:
            raise ValueError(
                f"log_std of shape {tuple(log_std.shape)} does not broadcast to mean's shape {tuple(mean.shape)}"
            ) from exc
        self.mean = mean
        self.log_std = log_std
        self.std = log_std.exp()

    @property
    def action_dim(self) -> int:
        return self.mean.shape[-1]

    def log_prob(self, actions: Tensor, per_dim: bool = False) -> Tensor:
        check_tensor(actions, "actions", floating=True)
        if tuple(actions.shape) != tuple(self.mean.shape):
            raise ValueError(f"actions must have shape {tuple(self.mean.shape)}, got {tuple(actions.shape)}")
        z = (actions - self.mean) / self.std
        lp = -0.5 * z * z - self.log_std - 0.5 * _LOG_2PI
        return lp if per_dim else lp.sum(-1)

    def entropy(self, per_dim: bool = False) -> Tensor:
        ent = 0.5 + 0.5 * _LOG_2PI + self.log_std
        return ent if per_dim else ent.sum(-1)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return (self.mean + self.std * noise).detach()

    def mode(self) -> Tensor:
        return self.mean
