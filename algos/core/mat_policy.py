"""The Multi-Agent Transformer (MAT) and MAT-Dec (Wen et al., NeurIPS 2022) as joint policies of the engine.

**MAT.** An encoder reads every agent's observation; a decoder emits the agents' actions as a sequence in the
execution order ``i_1, ..., i_n`` (``order[..., k] = i_{k+1}``), so the joint policy factorises as

.. math:: \\pi(a \\mid o) = \\prod_{k=1}^{n} \\pi\\big(a^{i_k} \\mid \\hat o^{i_{1:n}}, a^{i_1}, \\dots,
          a^{i_{k-1}}\\big)

(MAT eq. (5); the multi-agent advantage decomposition, MAT Thm. 1, is what makes the sequence well posed).

*Encoder* (unmasked, permutation-equivariant over agents): ``x_i = GELU(W_e [o^i ; onehot(i)])`` (the id only
with ``agent_id=True``; ``feature_norm`` puts a LayerNorm on the input first), ``x <- LN(x)``, then ``n_block``
blocks ``x <- LN(x + Attn(x, x, x))``, ``x <- LN(x + MLP(x))`` give the representations ``\\hat o^i``; the value
head ``V_i = w^T LN(GELU(W \\hat o^i))`` gives one value per agent (``[..., n]``, agent-indexed).

*Decoder* (causal over positions ``k = 0..n-1``). The input token at position k is the SHIFTED action:
``t_0 = [1 ; 0 ; 0]`` (the start token) and ``t_k = [0 ; \\phi(a^{i_k}) ; onehot(i_k)]`` for k >= 1, i.e. the
action of the agent acting at position k-1 (one-hot for discrete actions, the action vector for continuous
ones) together with WHICH agent took it. Its representation side is ``\\hat o^{i_{k+1}}``: the encoder outputs
are gathered by the order, so position k reads the representation of the agent acting there. Each of
``n_block`` blocks computes

.. math:: y = \\mathrm{LN}(y + \\mathrm{Attn}_{causal}(y, y, y)),\\quad
          z = \\mathrm{LN}(\\hat o_{pos} + \\mathrm{Attn}_{causal}(q=\\hat o_{pos}, k=y, v=y)),\\quad
          y \\leftarrow \\mathrm{LN}(z + \\mathrm{MLP}(z)),

with ``y_0 = LN(GELU(W_a t))``; "causal" lets position k attend to positions ``<= k`` only (the masked
scores are ``-inf``, so their softmax weights are exactly 0). Position k's output therefore depends on
``\\hat o^{i_1..i_k}`` and the actions ``a^{i_1..i_{k-1}}`` only. Heads: a categorical over the agent's available
actions (logits ``W_\\pi LN(GELU(W h))``, masked with ``avail`` and each agent's padding), or a diagonal Gaussian
``N(\\mu, \\sigma^2)`` with a learned state-independent std (``std_param="exp"``: ``\\sigma = e^p``, p starts at
``log_std_init``; ``"harl"``: ``\\sigma = sigmoid(p / x) \\cdot y`` with p starting at x — with ``x = 1``,
``y = 0.5`` this is the official MAT parametrisation ``sigmoid(log_std) * 0.5``, ``log_std`` starting at 1).

*Training* teacher-forces the taken joint action in ONE parallel pass (:meth:`MultiAgentTransformer.evaluate`);
*execution* (:meth:`MultiAgentTransformer.sample`) decodes agent after agent in ``order``.

*Identity at a position* (needed with a random order): the token at position k carries the one-hot id of the
agent whose action it holds, so the decoder knows which agent took every earlier action; the agent acting at
position k is known through its gathered encoder representation, which carries its one-hot id with
``agent_id=True`` (required with ``ar_order="random"``). With the fixed order and ``agent_id=False`` (the
official setting) no id reaches the acting position, so identical observations give identical representations
— needed for the shared-parameter tests, where only the previous actions may break the symmetry.

``token_id=False`` (config ``mat_token_id=False``) leaves the id out of the tokens: ``t_0 = [1 ; 0]``,
``t_k = [0 ; \\phi(a^{i_k})]`` (the official MAT tokens, plus the start bit). With ``agent_id=False`` too, no
parameter's shape depends on ``n``: the same weights run any number of agents (zero-shot transfer across unit
counts, :mod:`seqmarl.algos.mat_transfer`). Needs the fixed order (with a random one the decoder would not know
who took the earlier actions).

``condition=False`` (config ``mat_condition=False``) zeroes every decoder token, the start token included: the
same network with the previous actions hidden. Every position then sees the same (zero) token sequence, so
the policy is a product policy ``\\pi(a^i | \\hat o^i)`` — the ablation of the tests.

**MAT-Dec** (:class:`MATDecPolicy`; the official ``dec_actor`` + ``share_actor`` mode): the same encoder
(values only) and, instead of the decoder, ONE shared MLP on the agent's own observation,
``\\pi^i(a^i | o^i)``: a product policy (``autoregressive = False``).

Both implement :class:`~seqmarl.algos.core.joint_policy.JointPolicy` and add ``values(obs)`` (the encoder's
per-agent values; also ``forward``) and ``evaluate(obs, actions, avail, order)`` → ``(log_probs, entropies,
values)`` from one forward pass (the combined MAT update).

Differences from the official code (PKU-MARL/Multi-Agent-Transformer, ``mat/algorithms/mat/algorithm/
ma_transformer.py``): tokens carry the id of the agent that took the action unless ``token_id=False``
(official: the action only, with a start bit); a random execution order is an option (official: fixed ``0..n-1``); the attention projections use
orthogonal init with gain 1 (official: gain 0.01) and the policy output gain ``out_gain``; the Gaussian std is
``exp`` by default (official: ``sigmoid(p) * 0.5``, available as ``std_param="harl"``); the continuous start
token has a start bit (official: a zero vector); MAT-Dec's MLP uses ReLU with LayerNorm after each hidden layer
(official: GELU). Written from the paper's description; no code copied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._checks import check_flag_tensor, check_int, check_tensor
from .distributions import DiagGaussian, MaskedCategorical
from .joint_policy import check_order, fixed_orders, order_positions
from .networks import BoxSpace, DiscreteSpace, MultiAgentActors, as_action_space

Tensor = torch.Tensor

__all__ = ["MATEncoder", "MultiAgentTransformer", "MATDecPolicy"]

_GELU_GAIN = math.sqrt(2.0)


def _linear(i: int, o: int, gain: float, device: Any, dtype: torch.dtype, bias: bool = True) -> nn.Linear:
    layer = nn.Linear(i, o, bias=bias, device=device, dtype=dtype)
    nn.init.orthogonal_(layer.weight, gain=gain)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


class _Attention(nn.Module):
    """Multi-head scaled dot-product attention ``softmax(Q K^T / sqrt(d_h) + M) V`` with a projection after it;
    ``mask [L_q, L_k]`` (bool, True = may attend) puts ``-inf`` on the forbidden scores (exact zero weights)."""

    def __init__(self, dim: int, n_head: int, device: Any, dtype: torch.dtype) -> None:
        super().__init__()
        self.n_head = n_head
        self.q = _linear(dim, dim, 1.0, device, dtype)
        self.k = _linear(dim, dim, 1.0, device, dtype)
        self.v = _linear(dim, dim, 1.0, device, dtype)
        self.proj = _linear(dim, dim, 1.0, device, dtype)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None) -> Tensor:
        B, Lq, D = query.shape
        Lk = key.shape[1]
        h = self.n_head
        q = self.q(query).reshape(B, Lq, h, D // h).transpose(1, 2)
        k = self.k(key).reshape(B, Lk, h, D // h).transpose(1, 2)
        v = self.v(value).reshape(B, Lk, h, D // h).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(D // h)  # [B, h, Lq, Lk]
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        out = torch.softmax(scores, -1) @ v  # [B, h, Lq, D/h]
        return self.proj(out.transpose(1, 2).reshape(B, Lq, D))


def _mlp(dim: int, device: Any, dtype: torch.dtype) -> nn.Sequential:
    return nn.Sequential(_linear(dim, dim, _GELU_GAIN, device, dtype), nn.GELU(), _linear(dim, dim, 1.0, device, dtype))


class _EncoderBlock(nn.Module):
    def __init__(self, dim: int, n_head: int, device: Any, dtype: torch.dtype) -> None:
        super().__init__()
        self.attn = _Attention(dim, n_head, device, dtype)
        self.mlp = _mlp(dim, device, dtype)
        self.ln1 = nn.LayerNorm(dim, device=device, dtype=dtype)
        self.ln2 = nn.LayerNorm(dim, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        x = self.ln1(x + self.attn(x, x, x))
        return self.ln2(x + self.mlp(x))


class _DecoderBlock(nn.Module):
    def __init__(self, dim: int, n_head: int, device: Any, dtype: torch.dtype) -> None:
        super().__init__()
        self.self_attn = _Attention(dim, n_head, device, dtype)
        self.cross_attn = _Attention(dim, n_head, device, dtype)
        self.mlp = _mlp(dim, device, dtype)
        self.ln1 = nn.LayerNorm(dim, device=device, dtype=dtype)
        self.ln2 = nn.LayerNorm(dim, device=device, dtype=dtype)
        self.ln3 = nn.LayerNorm(dim, device=device, dtype=dtype)

    def forward(self, y: Tensor, rep: Tensor, mask: Tensor) -> Tensor:
        y = self.ln1(y + self.self_attn(y, y, y, mask))
        z = self.ln2(rep + self.cross_attn(rep, y, y, mask))
        return self.ln3(z + self.mlp(z))


def _check_common(n_agents: int, obs_dim: int, n_block: int, n_embd: int, n_head: int,
                  flags: dict[str, Any]) -> None:
    check_int(n_agents, "n_agents")
    check_int(obs_dim, "obs_dim")
    check_int(n_block, "n_block")
    check_int(n_embd, "n_embd")
    check_int(n_head, "n_head")
    if n_embd % n_head:
        raise ValueError(f"n_embd must be divisible by n_head (one slice per head), got n_embd={n_embd}, "
                         f"n_head={n_head}")
    for name, flag in flags.items():
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")


def _spaces(action_spaces: Any, n_agents: int) -> tuple[DiscreteSpace | BoxSpace, ...]:
    if isinstance(action_spaces, Sequence) and not isinstance(action_spaces, (str, bytes)):
        if len(action_spaces) != n_agents:
            raise ValueError(f"action_spaces must have n_agents={n_agents} entries, got {len(action_spaces)}")
        spaces = tuple(as_action_space(s) for s in action_spaces)
    else:
        spaces = (as_action_space(action_spaces),) * n_agents
    if len({type(s) for s in spaces}) != 1:
        raise ValueError("action_spaces must be all discrete or all continuous; mixed spaces are not supported")
    return spaces


class MATEncoder(nn.Module):
    """MAT's encoder: ``obs [..., n, obs_dim] -> (values [..., n], representations [..., n, n_embd])`` (module
    docstring). Unmasked self-attention: every agent's representation depends on every observation."""

    def __init__(self, n_agents: int, obs_dim: int, *, n_block: int = 1, n_embd: int = 64, n_head: int = 1,
                 agent_id: bool = False, feature_norm: bool = False, device: Any = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        _check_common(n_agents, obs_dim, n_block, n_embd, n_head, {"agent_id": agent_id, "feature_norm": feature_norm})
        self.n_agents, self.obs_dim, self.agent_id = n_agents, obs_dim, agent_id
        in_dim = obs_dim + (n_agents if agent_id else 0)
        self.input_norm = nn.LayerNorm(in_dim, device=device, dtype=dtype) if feature_norm else nn.Identity()
        self.embed = nn.Sequential(_linear(in_dim, n_embd, _GELU_GAIN, device, dtype), nn.GELU())
        self.ln = nn.LayerNorm(n_embd, device=device, dtype=dtype)
        self.blocks = nn.ModuleList([_EncoderBlock(n_embd, n_head, device, dtype) for _ in range(n_block)])
        self.value_head = nn.Sequential(_linear(n_embd, n_embd, _GELU_GAIN, device, dtype), nn.GELU(),
                                        nn.LayerNorm(n_embd, device=device, dtype=dtype),
                                        _linear(n_embd, 1, 1.0, device, dtype))

    def check_obs(self, obs: Tensor) -> tuple[int, ...]:
        check_tensor(obs, "obs", floating=True, ndim_min=2)
        if tuple(obs.shape[-2:]) != (self.n_agents, self.obs_dim):
            raise ValueError(f"obs must end with (n_agents, obs_dim) = {(self.n_agents, self.obs_dim)}, "
                             f"got {tuple(obs.shape)}")
        return tuple(obs.shape[:-2])

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        lead = self.check_obs(obs)
        x = obs.reshape((-1, self.n_agents, self.obs_dim))
        if self.agent_id:
            eye = torch.eye(self.n_agents, device=x.device, dtype=x.dtype)
            x = torch.cat([x, eye.expand(x.shape[0], -1, -1)], -1)
        x = self.ln(self.embed(self.input_norm(x)))
        for block in self.blocks:
            x = block(x)
        values = self.value_head(x).squeeze(-1)
        return values.reshape(lead + (self.n_agents,)), x.reshape(lead + (self.n_agents, x.shape[-1]))


class MultiAgentTransformer(nn.Module):
    """MAT (module docstring): encoder with per-agent values, causal decoder over the shifted action sequence.

    Shapes: ``obs [..., n, obs_dim]``; discrete ``actions [..., n]`` (int64) and ``avail [..., n, A_max]``;
    continuous ``actions [..., n, d_max]``; ``order [..., n]`` (``order[..., k]`` = the agent acting k-th,
    ``None`` = ``0..n-1``). Every output is agent-indexed ``[..., n]``. Heterogeneous action counts/dimensions
    use one padded head with each agent's extra actions masked (``valid [n, size_max]``)."""

    autoregressive = True
    recurrent = False
    share = True

    def __init__(
        self,
        n_agents: int,
        obs_dim: int,
        action_spaces: Any | Sequence[Any],
        *,
        n_block: int = 1,
        n_embd: int = 64,
        n_head: int = 1,
        agent_id: bool = False,
        condition: bool = True,
        token_id: bool = True,
        feature_norm: bool = False,
        out_gain: float = 0.01,
        log_std_init: float = 0.0,
        std_param: str = "exp",
        std_x_coef: float = 1.0,
        std_y_coef: float = 0.5,
        device: Any = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        _check_common(n_agents, obs_dim, n_block, n_embd, n_head, {"agent_id": agent_id, "condition": condition,
                                                                    "token_id": token_id, "feature_norm": feature_norm})
        if std_param not in ("exp", "harl"):
            raise ValueError(f"std_param must be one of ('exp', 'harl'), got {std_param!r}")
        spaces = _spaces(action_spaces, n_agents)
        self.n_agents, self.obs_dim, self.n_embd = n_agents, obs_dim, n_embd
        self.agent_id, self.condition, self.token_id = agent_id, condition, token_id
        self.discrete = isinstance(spaces[0], DiscreteSpace)
        self.sizes = tuple(s.n if self.discrete else s.dim for s in spaces)  # type: ignore[union-attr]
        self.size_max = max(self.sizes)
        valid = torch.arange(self.size_max).unsqueeze(0) < torch.tensor(self.sizes).unsqueeze(1)
        self.register_buffer("valid", valid.to(device), persistent=False)
        self.encoder = MATEncoder(n_agents, obs_dim, n_block=n_block, n_embd=n_embd, n_head=n_head,
                                  agent_id=agent_id, feature_norm=feature_norm, device=device, dtype=dtype)
        # [start bit ; action ; id of the agent that took it (token_id only)]
        self.token_dim = 1 + self.size_max + (n_agents if token_id else 0)
        self.action_embed = nn.Sequential(_linear(self.token_dim, n_embd, _GELU_GAIN, device, dtype, bias=False),
                                          nn.GELU())
        self.ln = nn.LayerNorm(n_embd, device=device, dtype=dtype)
        self.blocks = nn.ModuleList([_DecoderBlock(n_embd, n_head, device, dtype) for _ in range(n_block)])
        self.head = nn.Sequential(_linear(n_embd, n_embd, _GELU_GAIN, device, dtype), nn.GELU(),
                                  nn.LayerNorm(n_embd, device=device, dtype=dtype),
                                  _linear(n_embd, self.size_max, float(out_gain), device, dtype))
        self.std_param, self.std_x_coef, self.std_y_coef = std_param, float(std_x_coef), float(std_y_coef)
        if not self.discrete:
            init = float(log_std_init) if std_param == "exp" else self.std_x_coef
            self.log_std = nn.Parameter(torch.full((self.size_max,), init, device=device, dtype=dtype))
        causal = torch.tril(torch.ones(n_agents, n_agents, dtype=torch.bool))
        self.register_buffer("causal", causal.to(device), persistent=False)

    # ------------------------------------------------------------------ helpers
    @property
    def n_actions(self) -> tuple[int, ...]:
        return self.sizes

    def _log_std(self) -> Tensor:
        if self.std_param == "exp":
            return self.log_std
        return nn.functional.logsigmoid(self.log_std / self.std_x_coef) + math.log(self.std_y_coef)

    def _avail(self, avail: Tensor | None, lead: tuple[int, ...]) -> Tensor | None:
        if not self.discrete:
            if avail is not None:
                raise ValueError("avail (action masks) is only defined for discrete actions")
            return None
        pad = self.valid.expand(lead + (self.n_agents, self.size_max))
        if avail is None:
            return pad
        avail = check_flag_tensor(avail, "avail")
        if tuple(avail.shape) != lead + (self.n_agents, self.size_max):
            raise ValueError(f"avail must have shape {lead + (self.n_agents, self.size_max)}, got {tuple(avail.shape)}")
        return avail & pad

    def _check_actions(self, actions: Tensor, lead: tuple[int, ...]) -> Tensor:
        check_tensor(actions, "actions")
        if self.discrete:
            if actions.is_floating_point() or actions.dtype == torch.bool:
                raise TypeError(f"actions must be an integer tensor, got dtype {actions.dtype}")
            if tuple(actions.shape) != lead + (self.n_agents,):
                raise ValueError(f"actions must have shape {lead + (self.n_agents,)}, got {tuple(actions.shape)}")
            if actions.numel() and (bool((actions < 0).any()) or bool((actions >= self.size_max).any())):
                raise ValueError(f"actions must lie in [0, {self.size_max})")
            return actions.long()
        if not actions.is_floating_point():
            raise TypeError(f"continuous actions must be a floating tensor, got dtype {actions.dtype}")
        if tuple(actions.shape) != lead + (self.n_agents, self.size_max):
            raise ValueError(f"actions must have shape {lead + (self.n_agents, self.size_max)}, "
                             f"got {tuple(actions.shape)}")
        return actions

    def _token(self, a: Tensor, agent: Tensor, dtype: torch.dtype) -> Tensor:
        """Token ``[0 ; phi(a) ; onehot(agent)]`` of actions ``a [B]`` (or ``[B, d]``) taken by ``agent [B]``
        (``[0 ; phi(a)]`` with ``token_id=False``)."""
        act = nn.functional.one_hot(a, self.size_max).to(dtype) if self.discrete else a.to(dtype)
        parts = [torch.zeros(act.shape[:-1] + (1,), dtype=dtype, device=act.device), act]
        if self.token_id:
            parts.append(nn.functional.one_hot(agent, self.n_agents).to(dtype))
        return torch.cat(parts, -1)

    def _shifted_tokens(self, actions_pos: Tensor, order: Tensor, dtype: torch.dtype) -> Tensor:
        """Decoder inputs ``[B, n, token_dim]``: the start token, then position k holds the token of the action
        of the agent acting at k-1 (all zeros with ``condition=False``)."""
        B, n = order.shape
        tokens = torch.zeros(B, n, self.token_dim, dtype=dtype, device=order.device)
        if not self.condition:
            return tokens
        tokens[:, 0, 0] = 1.0
        if n > 1:
            prev = actions_pos[:, :-1]
            flat_prev = prev.reshape((B * (n - 1),) + tuple(prev.shape[2:]))
            tokens[:, 1:] = self._token(flat_prev, order[:, :-1].reshape(-1), dtype).reshape(B, n - 1, -1)
        return tokens

    def _decode(self, tokens: Tensor, rep_pos: Tensor) -> Tensor:
        """Decoder features ``[B, L, H]`` of the first ``L`` positions (causal)."""
        L = tokens.shape[1]
        mask = self.causal[:L, :L]
        y = self.ln(self.action_embed(tokens))
        for block in self.blocks:
            y = block(y, rep_pos, mask)
        return y

    def _dist(self, features: Tensor, avail: Tensor | None) -> MaskedCategorical | DiagGaussian:
        out = self.head(features)
        if self.discrete:
            return MaskedCategorical(out, avail)
        return DiagGaussian(out, self._log_std())

    def _prepare(self, obs: Tensor, avail: Tensor | None, order: Tensor | None):
        lead = self.encoder.check_obs(obs)
        mask = self._avail(avail, lead)
        order = check_order(order, lead, self.n_agents)
        if order is None:
            order = fixed_orders(lead, self.n_agents, obs.device)
        n = self.n_agents
        flat_obs = obs.reshape((-1, n, self.obs_dim))
        flat_order = order.reshape((-1, n))
        flat_mask = None if mask is None else mask.reshape((-1, n, self.size_max))
        return lead, flat_obs, flat_mask, flat_order

    @staticmethod
    def _gather(x: Tensor, index: Tensor) -> Tensor:
        """``x[b, index[b, k]]`` for ``x [B, n, ...]`` and ``index [B, n]``."""
        idx = index.reshape(index.shape + (1,) * (x.dim() - 2)).expand(index.shape + tuple(x.shape[2:]))
        return x.gather(1, idx)

    def _forward(self, obs: Tensor, actions: Tensor, avail: Tensor | None, order: Tensor | None):
        """One teacher-forced pass: ``(dist over [B, n] agent-indexed, values [B, n], lead)``."""
        lead, flat_obs, flat_mask, flat_order = self._prepare(obs, avail, order)
        actions = self._check_actions(actions, lead)
        n = self.n_agents
        flat_actions = actions.reshape((-1, n) + tuple(actions.shape[len(lead) + 1:]))
        values, rep = self.encoder(flat_obs)
        rep_pos = self._gather(rep, flat_order)
        tokens = self._shifted_tokens(self._gather(flat_actions, flat_order), flat_order, rep.dtype)
        feats_pos = self._decode(tokens, rep_pos)  # [B, n, H] by position
        feats = self._gather(feats_pos, order_positions(flat_order))  # back to agent order
        return self._dist(feats, flat_mask), values, lead, flat_actions

    def _lp_ent(self, dist, flat_actions: Tensor) -> tuple[Tensor, Tensor]:
        if self.discrete:
            return dist.log_prob(flat_actions), dist.entropy()
        valid = self.valid.to(flat_actions.dtype)
        return (dist.log_prob(flat_actions, per_dim=True) * valid).sum(-1), (dist.entropy(per_dim=True) * valid).sum(-1)

    # ------------------------------------------------------------------ JointPolicy
    def distribution(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None,
                     order: Tensor | None = None) -> MaskedCategorical | DiagGaussian:
        """Teacher-forced conditionals of every agent given the earlier agents' ``actions``, batch ``[B, n]``
        (lead dimensions flattened into B; agent-indexed)."""
        return self._forward(obs, actions, avail, order)[0]

    def evaluate(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None, *,
                 order: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(log_probs, entropies, values)``, each ``[..., n]`` agent-indexed, from ONE parallel pass: the
        teacher-forced conditional log-probs and entropies of the joint ``actions`` and the encoder's values."""
        dist, values, lead, flat_actions = self._forward(obs, actions, avail, order)
        lp, ent = self._lp_ent(dist, flat_actions)
        shape = lead + (self.n_agents,)
        return lp.reshape(shape), ent.reshape(shape), values.reshape(shape)

    def log_prob(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None, *,
                 order: Tensor | None = None) -> Tensor:
        """Per-agent conditional log-probs ``[..., n]`` of the joint ``actions`` (teacher forcing; continuous:
        summed over the agent's action dimensions)."""
        return self.evaluate(obs, actions, avail, order=order)[0]

    def entropy(self, obs: Tensor, avail: Tensor | None = None, *, order: Tensor | None = None,
                actions: Tensor | None = None) -> Tensor:
        """Per-agent conditional entropies ``[..., n]`` given the earlier agents' taken ``actions`` (required)."""
        if actions is None:
            raise ValueError("MAT's conditional entropies depend on the earlier agents' actions: pass actions= "
                             "(the taken joint actions)")
        return self.evaluate(obs, actions, avail, order=order)[1]

    def log_prob_and_entropy(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None, *,
                             order: Tensor | None = None) -> tuple[Tensor, Tensor]:
        lp, ent, _ = self.evaluate(obs, actions, avail, order=order)
        return lp, ent

    def values(self, obs: Tensor) -> Tensor:
        """The encoder's per-agent values ``[..., n]``."""
        return self.encoder(obs)[0]

    def forward(self, obs: Tensor) -> Tensor:  # the engine's critic interface: V(obs) -> [..., n]
        return self.values(obs)

    @torch.no_grad()
    def sample(self, obs: Tensor, avail: Tensor | None = None, generator: torch.Generator | None = None, *,
               order: Tensor | None = None, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """Sequential decoding: the agents act one after another in ``order``, each conditioned on the actions
        drawn before it (the decoder is run on the prefix of positions ``0..k``). Returns ``(actions, log_probs)``
        agent-indexed; ``deterministic`` takes each conditional's mode."""
        lead, flat_obs, flat_mask, flat_order = self._prepare(obs, avail, order)
        n = self.n_agents
        B = flat_obs.shape[0]
        _, rep = self.encoder(flat_obs)
        rep_pos = self._gather(rep, flat_order)
        rows = torch.arange(B, device=obs.device)
        tokens = torch.zeros(B, n, self.token_dim, dtype=rep.dtype, device=obs.device)
        if self.condition:
            tokens[:, 0, 0] = 1.0
        shape = (B, n) if self.discrete else (B, n, self.size_max)
        actions = torch.zeros(shape, dtype=torch.long if self.discrete else rep.dtype, device=obs.device)
        log_probs = torch.zeros(B, n, dtype=rep.dtype, device=obs.device)
        for k in range(n):
            agent = flat_order[:, k]
            feats = self._decode(tokens[:, : k + 1], rep_pos[:, : k + 1])[:, k]
            dist = self._dist(feats, None if flat_mask is None else flat_mask[rows, agent])
            a = dist.mode() if deterministic else dist.sample(generator)
            if self.discrete:
                lp = dist.log_prob(a)
            else:
                valid = self.valid[agent].to(a.dtype)
                a = a * valid
                lp = (dist.log_prob(a, per_dim=True) * valid).sum(-1)
            actions[rows, agent] = a
            log_probs[rows, agent] = lp
            if self.condition and k + 1 < n:
                tokens[:, k + 1] = self._token(a, agent, rep.dtype)
        return actions.reshape(lead + shape[1:]), log_probs.reshape(lead + (n,))

    def parameters_of(self, agent: int) -> list[nn.Parameter]:
        raise ValueError("MAT is ONE network for all agents: per-agent parameter groups do not exist")


class MATDecPolicy(nn.Module):
    """MAT-Dec (module docstring): MAT's encoder for the values and ONE shared per-agent MLP policy
    ``pi^i(a^i | o^i [, onehot(i)])`` (:class:`MultiAgentActors` with ``share=True``, LayerNorm after each hidden
    layer); a product policy, so ``order`` changes nothing."""

    autoregressive = False
    recurrent = False
    share = True

    def __init__(
        self,
        n_agents: int,
        obs_dim: int,
        action_spaces: Any | Sequence[Any],
        *,
        n_block: int = 1,
        n_embd: int = 64,
        n_head: int = 1,
        agent_id: bool = False,
        feature_norm: bool = False,
        out_gain: float = 0.01,
        log_std_init: float = 0.0,
        std_param: str = "exp",
        std_x_coef: float = 1.0,
        std_y_coef: float = 0.5,
        device: Any = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.encoder = MATEncoder(n_agents, obs_dim, n_block=n_block, n_embd=n_embd, n_head=n_head,
                                  agent_id=agent_id, feature_norm=feature_norm, device=device, dtype=dtype)
        self.actors = MultiAgentActors(n_agents, obs_dim, _spaces(action_spaces, n_agents), share=True,
                                       agent_id=agent_id, hidden=(n_embd, n_embd), activation="relu",
                                       layer_norm=True, feature_norm=feature_norm, out_gain=out_gain,
                                       log_std_init=log_std_init, std_param=std_param, std_x_coef=std_x_coef,
                                       std_y_coef=std_y_coef, device=device, dtype=dtype)
        self.n_agents, self.obs_dim = n_agents, obs_dim
        self.discrete = self.actors.discrete

    @property
    def sizes(self) -> tuple[int, ...]:
        return self.actors.sizes

    @property
    def size_max(self) -> int:
        return self.actors.size_max

    @property
    def valid(self) -> Tensor:
        return self.actors.valid

    @property
    def n_actions(self) -> tuple[int, ...]:
        return self.actors.n_actions

    def distribution_agent(self, agent: int, obs_i: Tensor, avail_i: Tensor | None = None):
        return self.actors.distribution_agent(agent, obs_i, avail_i)

    def log_prob_agent(self, agent: int, obs_i: Tensor, actions_i: Tensor, avail_i: Tensor | None = None,
                       per_dim: bool = False) -> Tensor:
        return self.actors.log_prob_agent(agent, obs_i, actions_i, avail_i, per_dim=per_dim)

    def entropy_agent(self, agent: int, obs_i: Tensor, avail_i: Tensor | None = None) -> Tensor:
        return self.actors.entropy_agent(agent, obs_i, avail_i)

    def log_prob_and_entropy_agent(self, agent: int, obs_i: Tensor, actions_i: Tensor, avail_i: Tensor | None = None,
                                   per_dim: bool = False) -> tuple[Tensor, Tensor]:
        return self.actors.log_prob_and_entropy_agent(agent, obs_i, actions_i, avail_i, per_dim=per_dim)

    def log_prob(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None, *,
                 order: Tensor | None = None) -> Tensor:
        return self.actors.log_prob(obs, actions, avail, order=order)

    def entropy(self, obs: Tensor, avail: Tensor | None = None, *, order: Tensor | None = None,
                actions: Tensor | None = None) -> Tensor:
        return self.actors.entropy(obs, avail, order=order, actions=actions)

    def evaluate(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None, *,
                 order: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(log_probs, entropies, values)`` ``[..., n]``: the per-agent marginals and the encoder's values."""
        return (self.actors.log_prob(obs, actions, avail, order=order), self.actors.entropy(obs, avail, order=order),
                self.encoder(obs)[0])

    def values(self, obs: Tensor) -> Tensor:
        return self.encoder(obs)[0]

    def forward(self, obs: Tensor) -> Tensor:
        return self.values(obs)

    @torch.no_grad()
    def sample(self, obs: Tensor, avail: Tensor | None = None, generator: torch.Generator | None = None,
               deterministic: bool = False, *, order: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.actors.sample(obs, avail, generator=generator, deterministic=deterministic, order=order)

    def parameters_of(self, agent: int) -> list[nn.Parameter]:
        raise ValueError("MAT-Dec's policy is ONE shared MLP (with the shared encoder): per-agent parameter groups "
                         "do not exist")
