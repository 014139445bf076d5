"""Multi-step TD targets over padded episode batches (the value-decomposition learners' targets).

Layout (PyMARL's episode batch): ``rewards``, ``terminated``, ``mask`` and ``next_values`` are ``[B, T]``; step
``t`` of episode ``b`` is real iff ``mask[b, t]`` (the valid steps of an episode are a prefix ``t < L_b``).
``next_values[b, t]`` is the bootstrap value of the state the transition ``t`` reached, ``V(s_{t+1})`` — for the
value-decomposition learners ``Q_tot^target(s_{t+1}, argmax)`` — already read from the final observation where an
episode was truncated. ``terminated[b, t]`` stops bootstrapping after step ``t`` (a time-limit truncation does not).

* :func:`n_step_targets`: ``G^(n)_t = sum_{k<m} gamma^k r_{t+k} + gamma^m (1 - term_{t+m-1}) V(s_{t+m})`` with
  ``m = min(n, L - t)`` (the return is cut at the episode's end) — Sutton & Barto (2018) eq. 7.1.
* :func:`td_lambda_targets`: ``G^lam_t = r_t + gamma (1 - term_t) [(1 - lam) V(s_{t+1}) + lam G^lam_{t+1}]``,
  with ``G^lam_{t+1} := V(s_{t+1})`` after the last valid step — the recursive lambda-return (Sutton & Barto eq.
  12.3 in recursive form; PyMARL2 ``build_td_lambda_targets``). ``lam = 0`` is the one-step target and ``lam = 1``
  the Monte-Carlo return bootstrapped at the episode's end.

Values at padded steps are returned as 0 (they are masked out of every loss).
"""

from __future__ import annotations

import torch

from ._checks import check_int, check_prob, check_tensor

Tensor = torch.Tensor


def _check(rewards: Tensor, terminated: Tensor, mask: Tensor, next_values: Tensor, gamma: float) -> float:
    check_tensor(rewards, "rewards", floating=True)
    check_tensor(next_values, "next_values", floating=True)
    check_tensor(terminated, "terminated")
    check_tensor(mask, "mask")
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [B, T], got shape {tuple(rewards.shape)}")
    for name, x in (("terminated", terminated), ("mask", mask), ("next_values", next_values)):
        if x.shape != rewards.shape:
            raise ValueError(f"{name} must have the shape of rewards {tuple(rewards.shape)}, got {tuple(x.shape)}")
    valid = mask.bool()
    if rewards.shape[1] > 1 and bool((valid[:, 1:] & ~valid[:, :-1]).any()):
        raise ValueError("mask must mark a prefix of each episode (no valid step after a padded one)")
    return check_prob(gamma, "gamma")


def n_step_targets(rewards: Tensor, terminated: Tensor, mask: Tensor, next_values: Tensor, gamma: float,
                   n: int) -> Tensor:
    """``G^(n)_t`` (module docstring), ``[B, T]``; ``n = 1`` is ``r_t + gamma (1 - term_t) V(s_{t+1})``."""
    gamma = _check(rewards, terminated, mask, next_values, gamma)
    n = check_int(n, "n", minimum=1)
    valid = mask.bool()
    live = (~terminated.bool()).to(rewards.dtype)
    r = torch.where(valid, rewards, torch.zeros_like(rewards))
    out = torch.zeros_like(rewards)
    running = valid.clone()  # the return from t is still accumulating at step t+k
    discount = torch.ones_like(rewards)  # gamma^k (0 once a step t..t+k-1 terminated)
    for k in range(n):
        running = running & _shift(valid, k)
        out = out + torch.where(running, discount * _shift(r, k), torch.zeros_like(r))
        # bootstrap after step t+k if it is the last one taken: k = n-1, or step t+k+1 is padding
        last = running & (~_shift(valid, k + 1) | (k == n - 1))
        bootstrap = gamma * discount * _shift(live, k) * _shift(next_values, k)
        out = out + torch.where(last, bootstrap, torch.zeros_like(r))
        running = running & ~last
        discount = discount * gamma * _shift(live, k)
    return torch.where(valid, out, torch.zeros_like(out))


def _shift(x: Tensor, k: int) -> Tensor:
    """``x[:, t + k]`` at position ``t`` (zeros / False past the end)."""
    out = torch.zeros_like(x)
    if k < x.shape[1]:
        out[:, : x.shape[1] - k] = x[:, k:]
    return out


def td_lambda_targets(rewards: Tensor, terminated: Tensor, mask: Tensor, next_values: Tensor, gamma: float,
                      lam: float) -> Tensor:
    """``G^lambda_t`` (module docstring), ``[B, T]``, by the backward recursion."""
    gamma = _check(rewards, terminated, mask, next_values, gamma)
    lam = check_prob(lam, "lam")
    valid = mask.bool()
    live = (~terminated.bool()).to(rewards.dtype)
    B, T = rewards.shape
    out = torch.zeros_like(rewards)
    following = next_values[:, -1]  # G_{t+1}; replaced by V(s_{t+1}) wherever step t+1 is not valid
    for t in range(T - 1, -1, -1):
        nxt_valid = valid[:, t + 1] if t + 1 < T else torch.zeros_like(valid[:, 0])
        g_next = torch.where(nxt_valid, following, next_values[:, t])
        g = rewards[:, t] + gamma * live[:, t] * ((1.0 - lam) * next_values[:, t] + lam * g_next)
        g = torch.where(valid[:, t], g, torch.zeros_like(g))
        out[:, t] = g
        following = g
    return out
