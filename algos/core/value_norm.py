"""Running value normalisation (ValueNorm) and PopArt.

``ValueNorm`` keeps running statistics of the value targets and maps them to/from a normalised scale.
Two estimators, chosen explicitly with ``mode``:

* ``"ema"`` (default; the MAPPO/HARL ``ValueNorm`` semantics `[SOURCE: HARL-code common/valuenorm.py]`):
  exponential moving averages of the batch mean and of the batch mean square, debiased like Adam:

  .. math::
      m \\leftarrow w m + (1-w)\\bar x,\\quad q \\leftarrow w q + (1-w)\\overline{x^2},\\quad
      d \\leftarrow w d + (1-w),\\qquad \\mu = m/\\max(d,\\epsilon),\\quad
      \\sigma^2 = \\max(q/\\max(d,\\epsilon) - \\mu^2,\\ \\mathrm{min\\_var}),

  with ``w = beta`` (``w = beta**N`` for a batch of N elements when ``per_element_update``).
* ``"exact"``: exact running mean and population variance of every element seen so far, merged batch by
  batch with the Chan et al. parallel Welford update (``var = M2 / count``, i.e. ``numpy.var`` with ddof=0),
  floored at ``min_var``.

Statistics are reduced over all leading axes of the input; the trailing axes must equal ``shape``
(``shape=()`` gives a single scalar statistic for any input). Before the first update both modes are the
identity map (mean 0, variance 1). Statistics are stored in float64 buffers (``stats_dtype``), so they follow
``module.to(device)`` and appear in ``state_dict``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._checks import check_int, check_positive, check_prob, check_tensor

Tensor = torch.Tensor

__all__ = ["ValueNorm", "PopArt"]

_MODES = ("ema", "exact")


def _as_shape(shape: int | Sequence[int], name: str = "shape") -> tuple[int, ...]:
    if isinstance(shape, bool):
        raise TypeError(f"{name} must be an int or a sequence of ints, got bool")
    if isinstance(shape, int):
        return () if shape == 0 else (check_int(shape, name, minimum=1),)
    if not isinstance(shape, Sequence):
        raise TypeError(f"{name} must be an int or a sequence of ints, got {type(shape).__name__}")
    return tuple(check_int(s, f"{name}[{i}]", minimum=1) for i, s in enumerate(shape))


class ValueNorm(nn.Module):
    """Running normaliser of value targets (see the module docstring for the equations).

    Args:
        shape: trailing shape of the statistics (``()`` or ``0``: one scalar statistic; ``1`` means ``(1,)``).
        mode: ``"ema"`` (HARL default) or ``"exact"`` (Welford/Chan).
        beta: EMA weight in (0, 1) (HARL: 0.99999). Ignored in ``"exact"`` mode.
        per_element_update: EMA weight ``beta**N`` for a batch of N elements (HARL option, default False).
        epsilon: floor on the debiasing term (HARL: 1e-5).
        min_var: floor on the variance (HARL: 1e-2); must be > 0.
    """

    def __init__(
        self,
        shape: int | Sequence[int] = (),
        *,
        mode: str = "ema",
        beta: float = 0.99999,
        per_element_update: bool = False,
        epsilon: float = 1e-5,
        min_var: float = 1e-2,
        device: torch.device | str | None = None,
        stats_dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if not isinstance(per_element_update, bool):
            raise TypeError(f"per_element_update must be a bool, got {type(per_element_update).__name__}")
        if not isinstance(stats_dtype, torch.dtype) or not stats_dtype.is_floating_point:
            raise TypeError(f"stats_dtype must be a floating torch.dtype, got {stats_dtype!r}")
        self.shape = _as_shape(shape)
        self.mode = mode
        self.beta = check_prob(beta, "beta", low_open=True, high_open=True)
        self.per_element_update = per_element_update
        self.epsilon = check_positive(epsilon, "epsilon")
        self.min_var = check_positive(min_var, "min_var")
        kw = dict(device=device, dtype=stats_dtype)
        if mode == "ema":
            self.register_buffer("running_mean", torch.zeros(self.shape, **kw))
            self.register_buffer("running_mean_sq", torch.zeros(self.shape, **kw))
            self.register_buffer("debiasing_term", torch.zeros((), **kw))
        else:
            self.register_buffer("count", torch.zeros((), **kw))
            self.register_buffer("mean", torch.zeros(self.shape, **kw))
            self.register_buffer("m2", torch.zeros(self.shape, **kw))

    # ------------------------------------------------------------------ statistics
    def _check_input(self, x: Tensor, name: str) -> None:
        check_tensor(x, name, floating=True)
        k = len(self.shape)
        if k and tuple(x.shape[x.dim() - k:]) != self.shape:
            raise ValueError(f"{name} must end with the statistics shape {self.shape}, got {tuple(x.shape)}")

    @property
    def has_data(self) -> bool:
        """True once at least one batch was folded in."""
        if self.mode == "ema":
            return bool(self.debiasing_term > 0)
        return bool(self.count > 0)

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Fold the batch ``x`` (shape ``[..., *shape]``, at least one leading element) into the statistics."""
        self._check_input(x, "x")
        lead = x.dim() - len(self.shape)
        xs = x.detach().to(self.stats_buffer.dtype).reshape((-1,) + self.shape)
        n = xs.shape[0]
        if n == 0 or lead == 0:
            raise ValueError(f"x must have a leading batch axis with at least one element per statistic, "
                             f"got shape {tuple(x.shape)}")
        if not bool(torch.isfinite(xs).all()):
            raise ValueError("x must be finite")
        if self.mode == "ema":
            w = self.beta ** n if self.per_element_update else self.beta
            self.running_mean.mul_(w).add_(xs.mean(0) * (1.0 - w))
            self.running_mean_sq.mul_(w).add_((xs * xs).mean(0) * (1.0 - w))
            self.debiasing_term.mul_(w).add_(1.0 - w)
        else:
            b_mean = xs.mean(0)
            b_m2 = ((xs - b_mean) ** 2).sum(0)
            n_a = self.count.clone()
            total = n_a + n
            delta = b_mean - self.mean
            self.mean.add_(delta * (n / total))
            self.m2.add_(b_m2 + delta * delta * (n_a * n / total))
            self.count.copy_(total)

    @property
    def stats_buffer(self) -> Tensor:
        return self.running_mean if self.mode == "ema" else self.mean

    def mean_var(self) -> tuple[Tensor, Tensor]:
        """Current ``(mean, var)`` in the statistics dtype (identity ``(0, 1)`` before any update)."""
        if self.mode == "ema":
            d = self.debiasing_term
            if not bool(d > 0):
                return torch.zeros_like(self.running_mean), torch.ones_like(self.running_mean)
            d = d.clamp(min=self.epsilon)
            mean = self.running_mean / d
            var = (self.running_mean_sq / d - mean * mean).clamp(min=self.min_var)
            return mean, var
        if not bool(self.count > 0):
            return torch.zeros_like(self.mean), torch.ones_like(self.mean)
        return self.mean.clone(), (self.m2 / self.count).clamp(min=self.min_var)

    def mean_std(self) -> tuple[Tensor, Tensor]:
        mean, var = self.mean_var()
        return mean, var.sqrt()

    def normalize(self, x: Tensor) -> Tensor:
        """``(x - mean) / std`` (differentiable in x; output has x's dtype)."""
        self._check_input(x, "x")
        mean, std = self.mean_std()
        return ((x.to(mean.dtype) - mean) / std).to(x.dtype)

    def denormalize(self, x: Tensor) -> Tensor:
        """``x * std + mean`` (inverse of :meth:`normalize`)."""
        self._check_input(x, "x")
        mean, std = self.mean_std()
        return (x.to(mean.dtype) * std + mean).to(x.dtype)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, mode={self.mode!r}, beta={self.beta}, min_var={self.min_var}"


class PopArt(nn.Module):
    """Linear value head with adaptive target normalisation (van Hasselt et al. 2016, "PopArt").

    ``forward`` returns the *normalised* prediction ``y = W h + b``; the value is ``sigma * y + mu``.
    :meth:`update` refreshes (mu, sigma) from new targets and rescales the layer so that the de-normalised
    outputs are preserved exactly ("Preserve Outputs Precisely"):

    .. math::
        W' = W\\,\\sigma/\\sigma', \\qquad b' = (\\sigma b + \\mu - \\mu')/\\sigma'
        \\ \\Rightarrow\\ \\sigma'(W'h + b') + \\mu' = \\sigma(Wh+b) + \\mu .

    Statistics are those of a :class:`ValueNorm` with ``shape=(out_dim,)`` (same ``mode``/``beta`` options).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 1,
        *,
        mode: str = "ema",
        beta: float = 0.99999,
        epsilon: float = 1e-5,
        min_var: float = 1e-2,
        gain: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        in_dim = check_int(in_dim, "in_dim")
        out_dim = check_int(out_dim, "out_dim")
        check_positive(gain, "gain")
        self.linear = nn.Linear(in_dim, out_dim, device=device, dtype=dtype)
        nn.init.orthogonal_(self.linear.weight, gain=gain, generator=generator)
        nn.init.zeros_(self.linear.bias)
        self.stats = ValueNorm((out_dim,), mode=mode, beta=beta, epsilon=epsilon, min_var=min_var, device=device)

    def forward(self, h: Tensor) -> Tensor:
        return self.linear(h)

    def normalize(self, x: Tensor) -> Tensor:
        return self.stats.normalize(x)

    def denormalize(self, y: Tensor) -> Tensor:
        return self.stats.denormalize(y)

    def value(self, h: Tensor) -> Tensor:
        """De-normalised prediction ``sigma * (W h + b) + mu``."""
        return self.denormalize(self.forward(h))

    @torch.no_grad()
    def update(self, targets: Tensor) -> None:
        """Update the statistics with ``targets [..., out_dim]`` and rescale W, b to preserve outputs."""
        old_mean, old_std = self.stats.mean_std()
        self.stats.update(targets)
        new_mean, new_std = self.stats.mean_std()
        w = self.linear.weight
        b = self.linear.bias
        w64 = w.to(old_std.dtype) * (old_std / new_std).unsqueeze(-1)
        b64 = (old_std * b.to(old_std.dtype) + old_mean - new_mean) / new_std
        w.copy_(w64.to(w.dtype))
        b.copy_(b64.to(b.dtype))
