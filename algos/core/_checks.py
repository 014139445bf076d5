"""Small input-validation helpers shared by the ``seqmarl.algos.core`` modules (private)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

Tensor = torch.Tensor


def check_tensor(x: Any, name: str, *, floating: bool = False, ndim_min: int | None = None) -> Tensor:
    """Raise TypeError unless ``x`` is a torch.Tensor (optionally floating, with at least ``ndim_min`` dims)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if ndim_min is not None and x.dim() < ndim_min:
        raise ValueError(f"{name} must have at least {ndim_min} dimensions, got shape {tuple(x.shape)}")
    return x


def check_flag_tensor(x: Any, name: str) -> Tensor:
    """Validate a boolean-like tensor (bool, or numbers in {0, 1}) and return it as bool."""
    check_tensor(x, name)
    if x.dtype == torch.bool:
        return x
    if x.numel() and not bool(((x == 0) | (x == 1)).all()):
        raise ValueError(f"{name} must be boolean or contain only 0/1 values")
    return x != 0


def check_prob(v: Any, name: str, *, low: float = 0.0, high: float = 1.0,
               low_open: bool = False, high_open: bool = False) -> float:
    """Validate a real scalar in an interval and return it as float."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__}")
    v = float(v)
    bad = (not math.isfinite(v) or v < low or v > high or (low_open and v == low) or (high_open and v == high))
    if bad:
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {lb}{low}, {high}{hb}, got {v}")
    return v


def check_positive(v: Any, name: str, *, allow_zero: bool = False) -> float:
    """Validate a finite positive (or non-negative) real scalar."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'} and finite, got {v}")
    return v


def check_int(v: Any, name: str, *, minimum: int = 1) -> int:
    """Validate an integer >= minimum."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return int(v)
