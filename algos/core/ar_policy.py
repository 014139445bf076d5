"""An auto-regressive joint policy with ONE shared network (AR-MAPPO, Fu et al. ICML 2022 §4).

Agent ``i``, acting k-th in the execution order, draws from

.. math:: \\pi^{i}(a^{i} \\mid o^{i}, a^{i_1}, \\dots, a^{i_{k-1}})
          = \\mathrm{softmax}\\big(W_\\pi\\, g([e_i ; c_i])\\big)\\ \\text{over its available actions},

with

* ``e_i = MLP(o^i [; onehot(i)])`` the observation embedding (``hidden`` layers; the one-hot id only with
  ``agent_id=True``);
* ``t_j = MLP(onehot(a^j) ; onehot(j))`` one token per agent: its action and its id;
* ``c_i = sum_{j before i} alpha_ij V t_j`` with ``alpha_i = softmax_{j before i}((Q e_i) . (K t_j) / sqrt(H))``
  — single-head scaled dot-product attention whose query is the acting agent's observation embedding and whose
  keys/values are the tokens of the agents BEFORE it in the order (masked out otherwise: their weight is exactly
  0, so the distribution of an agent never depends on the actions of agents at or after its position);
  ``c_i = 0`` for the first agent;
* ``g`` one hidden layer on the concatenation, ``W_pi`` the categorical head (orthogonal init, gain 0.01).

``condition=False`` (config ``ar_condition=False``) replaces ``c_i`` by zeros: the same network and parameters
with the previous actions hidden — a product policy ``pi^i(a^i | o^i)``, the ablation of the tests.

Differences from Fu et al.'s code (garrett4wade/revisiting_marl, ``algorithm/modules/ar_utils.py``
``ARAgentwiseObsEncoder``): there the previous agents' action embeddings (masked by an "execution mask") are
SUBTRACTED from the entity tokens of an agent-wise observation and a 4-head self-attention (query = the agent's
own token) runs over them; the matrix-game script (``perm_ar.py``) uses an MLP on the masked one-hot actions of
the other agents. Here the attention runs over (action, id) tokens of the earlier agents only, with one head,
and the observation is a flat vector. No LayerNorm by default (``layer_norm``/``feature_norm`` options as in
:class:`~seqmarl.algos.core.networks.MLP`). Discrete actions only (continuous AR heads are not implemented).

The class implements :class:`~seqmarl.algos.core.joint_policy.JointPolicy`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._checks import check_flag_tensor, check_int, check_tensor
from .distributions import MaskedCategorical
from .joint_policy import check_order, fixed_orders, order_positions
from .networks import MLP, CategoricalHead, DiscreteSpace, as_action_space, init_linear

Tensor = torch.Tensor

__all__ = ["AutoRegressiveActor"]


class AutoRegressiveActor(nn.Module):
    """One shared auto-regressive policy for ``n_agents`` agents with discrete actions (module docstring).

    Shapes: ``obs [..., n, obs_dim]``, ``actions [..., n]`` (int64), ``avail [..., n, A_max]``, ``order [..., n]``
    (``order[..., k]`` = the agent acting k-th; ``None`` = ``0..n-1``). Heterogeneous action counts use one head of
    ``A_max`` logits with each agent's extra actions masked (``valid [n, A_max]``).
    """

    autoregressive = True
    discrete = True
    recurrent = False
    share = True

    def __init__(
        self,
        n_agents: int,
        obs_dim: int,
        action_spaces: Any | Sequence[Any],
        *,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
        agent_id: bool = False,
        condition: bool = True,
        out_gain: float = 0.01,
        layer_norm: bool = False,
        feature_norm: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.n_agents = check_int(n_agents, "n_agents")
        self.obs_dim = check_int(obs_dim, "obs_dim")
        for name, flag in (("agent_id", agent_id), ("condition", condition)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        if isinstance(action_spaces, Sequence) and not isinstance(action_spaces, (str, bytes)):
            if len(action_spaces) != n_agents:
                raise ValueError(f"action_spaces must have n_agents={n_agents} entries, got {len(action_spaces)}")
            spaces = tuple(as_action_space(s) for s in action_spaces)
        else:
            spaces = (as_action_space(action_spaces),) * n_agents
        if not all(isinstance(s, DiscreteSpace) for s in spaces):
            raise ValueError("AutoRegressiveActor supports discrete action spaces only (continuous AR heads are not "
                             "implemented)")
        hidden = tuple(hidden)
        if not hidden:
            raise ValueError("hidden must hold at least one layer size (the embedding width is hidden[-1])")
        self.agent_id = agent_id
        self.condition = condition
        self.sizes = tuple(s.n for s in spaces)  # type: ignore[union-attr]
        self.size_max = max(self.sizes)
        valid = torch.arange(self.size_max).unsqueeze(0) < torch.tensor(self.sizes).unsqueeze(1)
        self.register_buffer("valid", valid.to(device), persistent=False)
        n, A = self.n_agents, self.size_max
        kw: dict[str, Any] = dict(activation=activation, layer_norm=layer_norm, device=device, dtype=dtype)
        self.obs_encoder = MLP(obs_dim + (n if agent_id else 0), hidden, None, feature_norm=feature_norm, **kw)
        H = self.obs_encoder.out_dim
        self.embed_dim = H
        self.action_encoder = MLP(A + n, (H,), None, **kw)  # token of (onehot(a_j), onehot(j))
        self.query = init_linear(nn.Linear(H, H, device=device, dtype=dtype), 1.0)
        self.key = init_linear(nn.Linear(H, H, device=device, dtype=dtype), 1.0)
        self.value = init_linear(nn.Linear(H, H, device=device, dtype=dtype), 1.0)
        self.trunk = MLP(2 * H, (H,), None, **kw)
        self.head = CategoricalHead(H, A, gain=out_gain, device=device, dtype=dtype)

    # ------------------------------------------------------------------ helpers
    @property
    def n_actions(self) -> tuple[int, ...]:
        return self.sizes

    def _check_obs(self, obs: Tensor) -> tuple[int, ...]:
        check_tensor(obs, "obs", floating=True, ndim_min=2)
        if tuple(obs.shape[-2:]) != (self.n_agents, self.obs_dim):
            raise ValueError(f"obs must end with (n_agents, obs_dim) = {(self.n_agents, self.obs_dim)}, "
                             f"got {tuple(obs.shape)}")
        return tuple(obs.shape[:-2])

    def _avail(self, avail: Tensor | None, lead: tuple[int, ...]) -> Tensor:
        """The mask ``lead + (n, A_max)``: ``avail`` (checked) and each agent's padding."""
        pad = self.valid.expand(lead + (self.n_agents, self.size_max))
        if avail is None:
            return pad
        avail = check_flag_tensor(avail, "avail")
        if tuple(avail.shape) != lead + (self.n_agents, self.size_max):
            raise ValueError(f"avail must have shape {lead + (self.n_agents, self.size_max)}, got {tuple(avail.shape)}")
        return avail & pad

    def _check_actions(self, actions: Tensor, lead: tuple[int, ...]) -> Tensor:
        check_tensor(actions, "actions")
        if actions.is_floating_point() or actions.dtype == torch.bool:
            raise TypeError(f"actions must be an integer tensor, got dtype {actions.dtype}")
        if tuple(actions.shape) != lead + (self.n_agents,):
            raise ValueError(f"actions must have shape {lead + (self.n_agents,)}, got {tuple(actions.shape)}")
        if actions.numel() and (bool((actions < 0).any()) or bool((actions >= self.size_max).any())):
            raise ValueError(f"actions must lie in [0, {self.size_max})")
        return actions.long()

    def _embed_obs(self, obs: Tensor) -> Tensor:
        """``e_i`` for every agent: ``[..., n, H]``."""
        if self.agent_id:
            eye = torch.eye(self.n_agents, device=obs.device, dtype=obs.dtype)
            obs = torch.cat([obs, eye.expand(obs.shape[:-1] + (self.n_agents,))], -1)
        return self.obs_encoder(obs)

    def _tokens(self, actions: Tensor, dtype: torch.dtype) -> Tensor:
        """``t_j`` for every agent from its action and id: ``[..., n, H]``."""
        onehot = nn.functional.one_hot(actions, self.size_max).to(dtype)
        eye = torch.eye(self.n_agents, device=actions.device, dtype=dtype)
        return self.action_encoder(torch.cat([onehot, eye.expand(actions.shape + (self.n_agents,))], -1))

    def _context(self, e: Tensor, tokens: Tensor, before: Tensor) -> Tensor:
        """Attention of query ``e [..., H]`` over ``tokens [..., m, H]`` restricted to ``before [..., m]`` (bool);
        zeros where nothing is before (and everywhere with ``condition=False``)."""
        if not self.condition:
            return torch.zeros_like(e)
        q = self.query(e).unsqueeze(-2)  # [..., 1, H]
        k, v = self.key(tokens), self.value(tokens)  # [..., m, H]
        scores = (q * k).sum(-1) / math.sqrt(self.embed_dim)  # [..., m]
        scores = scores.masked_fill(~before, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, -1) * before.to(scores.dtype)  # exact zeros off the mask
        return (weights.unsqueeze(-1) * v).sum(-2)

    def _dist(self, e: Tensor, context: Tensor, avail: Tensor) -> MaskedCategorical:
        return self.head(self.trunk(torch.cat([e, context], -1)), avail)

    def distribution(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None,
                     order: Tensor | None = None) -> MaskedCategorical:
        """Teacher-forced conditionals of every agent given the earlier agents' ``actions``: a
        :class:`MaskedCategorical` of batch shape ``[..., n]`` (agent-indexed)."""
        lead = self._check_obs(obs)
        actions = self._check_actions(actions, lead)
        mask = self._avail(avail, lead)
        order = check_order(order, lead, self.n_agents)
        if order is None:
            order = fixed_orders(lead, self.n_agents, obs.device)
        pos = order_positions(order)  # [..., n]
        e = self._embed_obs(obs)  # [..., n, H]
        tokens = self._tokens(actions, e.dtype)  # [..., n, H]
        before = pos.unsqueeze(-2) < pos.unsqueeze(-1)  # [..., i, j]: j acts before i
        n = self.n_agents
        context = self._context(e, tokens.unsqueeze(-3).expand(lead + (n, n, self.embed_dim)), before)
        return self._dist(e, context, mask)

    # ------------------------------------------------------------------ JointPolicy
    def log_prob(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None, *,
                 order: Tensor | None = None) -> Tensor:
        """Per-agent conditional log-probs ``[..., n]`` of the joint ``actions`` (teacher forcing)."""
        return self.distribution(obs, actions, avail, order).log_prob(actions.long())

    def entropy(self, obs: Tensor, avail: Tensor | None = None, *, order: Tensor | None = None,
                actions: Tensor | None = None) -> Tensor:
        """Per-agent conditional entropies ``[..., n]`` given the earlier agents' taken ``actions`` (required)."""
        if actions is None:
            raise ValueError("an auto-regressive policy's conditional entropies depend on the earlier agents' "
                             "actions: pass actions= (the taken joint actions)")
        return self.distribution(obs, actions, avail, order).entropy()

    def log_prob_and_entropy(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None, *,
                             order: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """:meth:`log_prob` and :meth:`entropy` from one forward pass."""
        dist = self.distribution(obs, actions, avail, order)
        return dist.log_prob(actions.long()), dist.entropy()

    def sample(self, obs: Tensor, avail: Tensor | None = None, generator: torch.Generator | None = None, *,
               order: Tensor | None = None, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """Agents act one after another in ``order``, each conditioned on the actions drawn before it:
        ``(actions [..., n], log_probs [..., n])`` (agent-indexed conditional log-probs). ``deterministic`` takes
        each conditional's mode."""
        lead = self._check_obs(obs)
        mask = self._avail(avail, lead)
        order = check_order(order, lead, self.n_agents)
        if order is None:
            order = fixed_orders(lead, self.n_agents, obs.device)
        n, H = self.n_agents, self.embed_dim
        flat_obs = obs.reshape((-1, n, self.obs_dim))
        flat_mask = mask.reshape((-1, n, self.size_max))
        flat_order = order.reshape((-1, n))
        B = flat_obs.shape[0]
        pos = order_positions(flat_order)
        e = self._embed_obs(flat_obs)  # [B, n, H]
        actions = torch.zeros(B, n, dtype=torch.long, device=obs.device)
        log_probs = torch.zeros(B, n, dtype=e.dtype, device=obs.device)
        rows = torch.arange(B, device=obs.device)
        for k in range(n):
            agent = flat_order[:, k]  # [B]
            tokens = self._tokens(actions, e.dtype)  # unsampled entries are masked out below
            context = self._context(e[rows, agent], tokens, pos < k)
            dist = self._dist(e[rows, agent], context, flat_mask[rows, agent])
            a = dist.mode() if deterministic else dist.sample(generator)
            actions[rows, agent] = a
            log_probs[rows, agent] = dist.log_prob(a)
        return actions.reshape(lead + (n,)), log_probs.reshape(lead + (n,))

    def parameters_of(self, agent: int) -> list[nn.Parameter]:
        raise ValueError("an auto-regressive actor is ONE shared network: per-agent parameter groups do not exist")
