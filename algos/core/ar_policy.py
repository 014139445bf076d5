"""An auto-regressive joint policy with ONE shared network (AR-MAPPO, Fu et al. ICML 2022 §4).

Agent ``i``, acting k-th in the execution order, draws from

.. math:: \\pi^{i}(a^{i} \\mid o^{i}, a^{i_1}, \\dots, a^{i_{k-1}})
          = \\mathrm{softmax}\\big(W_\\pi\\, g([e_i ; c_i])\\big)\\ \\text{over its available actions}

(discrete actions) or, for continuous actions of dimension ``d_i`` (padded to ``d_max = max_i d_i``),

.. math:: \\pi^{i}(a^{i} \\mid o^{i}, a^{i_1}, \\dots, a^{i_{k-1}})
          = \\prod_{l < d_i} \\mathcal N\\big(a^i_l;\\ [W_\\mu\\, g([e_i ; c_i])]_l,\\ \\sigma_l^2\\big),

a diagonal Gaussian whose mean comes from the same trunk and whose standard deviation ``sigma`` is ONE
state-independent parameter vector ``[d_max]`` shared by all agents (``std_param="exp"``: ``sigma = e^p`` with
``p`` starting at ``log_std_init``; ``"harl"``: ``sigma = sigmoid(p / x) * y``; the
:class:`~seqmarl.algos.core.networks.DiagGaussianHead` of the independent actors). The padded dimensions
``l >= d_i`` of agent ``i`` are excluded: its log-prob and entropy sum over ``l < d_i`` only, its sampled action
is 0 there, and its token reads ``a^i * valid_i`` (as in MAT, :mod:`~seqmarl.algos.core.mat_policy`). In
both cases

* ``e_i = MLP(o^i [; onehot(i)])`` the observation embedding (``hidden`` layers; the one-hot id only with
  ``agent_id=True``);
* ``t_j = MLP(phi(a^j) ; onehot(j))`` one token per agent: its action and its id (``token_id=False``: the action
  alone, ``MLP(phi(a^j))``, as Fu-code's tokens, which carry no ally id), with ``phi(a) = onehot(a)``
  (``A_max`` entries) for discrete actions and ``phi(a) = a * valid_j`` (the action vector, padded dimensions
  zeroed, ``d_max`` entries) for continuous ones;
* ``c_i = sum_{j before i} alpha_ij V t_j`` with ``alpha_i = softmax_{j before i}((Q e_i) . (K t_j) / sqrt(H))``
  — single-head scaled dot-product attention whose query is the acting agent's observation embedding and whose
  keys/values are the tokens of the agents BEFORE it in the order (masked out otherwise: their weight is exactly
  0, so the distribution of an agent never depends on the actions of agents at or after its position);
  ``c_i = 0`` for the first agent;
* ``g`` one hidden layer on the concatenation, ``W_pi`` the categorical head / ``W_mu`` the Gaussian mean head
  (orthogonal init, gain ``out_gain`` = 0.01).

``condition=False`` (config ``ar_condition=False``) replaces ``c_i`` by zeros: the same network and parameters
with the previous actions hidden — a product policy ``pi^i(a^i | o^i)``, the ablation of the tests.

Differences from Fu et al.'s code (garrett4wade/revisiting_marl, ``algorithm/modules/ar_utils.py``
``ARAgentwiseObsEncoder``): there the previous agents' action embeddings (masked by an "execution mask") are
SUBTRACTED from the entity tokens of an agent-wise observation and a 4-head self-attention (query = the agent's
own token) runs over them; the matrix-game script (``perm_ar.py``) uses an MLP on the masked one-hot actions of
the other agents. Here the attention runs over (action, id) tokens of the earlier agents only, with one head,
and the observation is a flat vector. No LayerNorm by default (``layer_norm``/``feature_norm`` options as in
:class:`~seqmarl.algos.core.networks.MLP`). Fu et al.'s code is discrete-only; the continuous head here (a
Gaussian conditional with the previous action VECTORS as tokens and a state-independent std) follows MAT's
continuous decoder (Wen et al. 2022) and the MAPPO/HARL Gaussian actors, not a published AR-MAPPO variant.
Mixed discrete/continuous action spaces are refused.

The class implements :class:`~seqmarl.algos.core.joint_policy.JointPolicy`.
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
from .networks import MLP, CategoricalHead, DiagGaussianHead, DiscreteSpace, as_action_space, init_linear

Tensor = torch.Tensor

__all__ = ["AutoRegressiveActor"]


class AutoRegressiveActor(nn.Module):
    """One shared auto-regressive policy for ``n_agents`` agents (module docstring).

    Shapes: ``obs [..., n, obs_dim]``; discrete ``actions [..., n]`` (int64) and ``avail [..., n, A_max]``;
    continuous ``actions [..., n, d_max]`` (float, no ``avail``); ``order [..., n]`` (``order[..., k]`` = the agent
    acting k-th; ``None`` = ``0..n-1``). Heterogeneous action counts/dimensions use one head of ``A_max`` logits /
    ``d_max`` means with each agent's extra actions masked / extra dimensions excluded (``valid [n, size_max]``).
    Log-probs and entropies are per agent ``[..., n]`` (continuous: summed over the agent's own dimensions).
    """

    autoregressive = True
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
        token_id: bool = True,
        out_gain: float = 0.01,
        log_std_init: float = 0.0,
        std_param: str = "exp",
        std_x_coef: float = 1.0,
        std_y_coef: float = 0.5,
        layer_norm: bool = False,
        feature_norm: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.n_agents = check_int(n_agents, "n_agents")
        self.obs_dim = check_int(obs_dim, "obs_dim")
        for name, flag in (("agent_id", agent_id), ("condition", condition), ("token_id", token_id)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        if isinstance(action_spaces, Sequence) and not isinstance(action_spaces, (str, bytes)):
            if len(action_spaces) != n_agents:
                raise ValueError(f"action_spaces must have n_agents={n_agents} entries, got {len(action_spaces)}")
            spaces = tuple(as_action_space(s) for s in action_spaces)
        else:
            spaces = (as_action_space(action_spaces),) * n_agents
        if len({type(s) for s in spaces}) != 1:
            raise ValueError("action_spaces must be all discrete or all continuous: AutoRegressiveActor does not "
                             f"support mixed discrete/continuous agents, got {[type(s).__name__ for s in spaces]}")
        self.discrete = isinstance(spaces[0], DiscreteSpace)
        hidden = tuple(hidden)
        if not hidden:
            raise ValueError("hidden must hold at least one layer size (the embedding width is hidden[-1])")
        self.agent_id = agent_id
        self.condition = condition
        self.sizes = tuple(s.n if self.discrete else s.dim for s in spaces)  # type: ignore[union-attr]
        self.size_max = max(self.sizes)
        valid = torch.arange(self.size_max).unsqueeze(0) < torch.tensor(self.sizes).unsqueeze(1)
        self.register_buffer("valid", valid.to(device), persistent=False)
        n, A = self.n_agents, self.size_max
        kw: dict[str, Any] = dict(activation=activation, layer_norm=layer_norm, device=device, dtype=dtype)
        self.obs_encoder = MLP(obs_dim + (n if agent_id else 0), hidden, None, feature_norm=feature_norm, **kw)
        H = self.obs_encoder.out_dim
        self.embed_dim = H
        self.token_id = token_id
        self.action_encoder = MLP(A + (n if token_id else 0), (H,), None, **kw)  # token of (phi(a_j) [; onehot(j)])
        self.query = init_linear(nn.Linear(H, H, device=device, dtype=dtype), 1.0)
        self.key = init_linear(nn.Linear(H, H, device=device, dtype=dtype), 1.0)
        self.value = init_linear(nn.Linear(H, H, device=device, dtype=dtype), 1.0)
        self.trunk = MLP(2 * H, (H,), None, **kw)
        self.head: CategoricalHead | DiagGaussianHead
        if self.discrete:
            self.head = CategoricalHead(H, A, gain=out_gain, device=device, dtype=dtype)
        else:
            self.head = DiagGaussianHead(H, A, gain=out_gain, log_std_init=log_std_init, std_param=std_param,
                                         std_x_coef=std_x_coef, std_y_coef=std_y_coef, device=device, dtype=dtype)

    # ------------------------------------------------------------------ helpers
    @property
    def n_actions(self) -> tuple[int, ...]:
        """Per-agent action counts (discrete) or action dimensions (continuous)."""
        return self.sizes

    def _check_obs(self, obs: Tensor) -> tuple[int, ...]:
        check_tensor(obs, "obs", floating=True, ndim_min=2)
        if tuple(obs.shape[-2:]) != (self.n_agents, self.obs_dim):
            raise ValueError(f"obs must end with (n_agents, obs_dim) = {(self.n_agents, self.obs_dim)}, "
                             f"got {tuple(obs.shape)}")
        return tuple(obs.shape[:-2])

    def _avail(self, avail: Tensor | None, lead: tuple[int, ...]) -> Tensor | None:
        """The mask ``lead + (n, A_max)``: ``avail`` (checked) and each agent's padding; None (continuous)."""
        if not self.discrete:
            if avail is not None:
                raise ValueError("avail (action masks) is only defined for discrete actions; this policy is "
                                 "continuous")
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
        if not self.discrete:
            if not actions.is_floating_point():
                raise TypeError(f"continuous actions must be a floating tensor, got dtype {actions.dtype}")
            if tuple(actions.shape) != lead + (self.n_agents, self.size_max):
                raise ValueError(f"actions must have shape {lead + (self.n_agents, self.size_max)} "
                                 f"(..., n_agents, d_max), got {tuple(actions.shape)}")
            return actions
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
        """``t_j`` for every agent from its action and id: ``[..., n, H]`` (``actions [..., n]`` discrete,
        ``[..., n, d_max]`` continuous — padded dimensions zeroed)."""
        if self.discrete:
            phi = nn.functional.one_hot(actions, self.size_max).to(dtype)
        else:
            phi = actions.to(dtype) * self.valid.to(dtype)
        if not self.token_id:  # the action alone (Fu-code: no ally id, bridge.yaml use_ally_id False)
            return self.action_encoder(phi)
        lead = phi.shape[:-1]  # [..., n]
        eye = torch.eye(self.n_agents, device=actions.device, dtype=dtype)
        return self.action_encoder(torch.cat([phi, eye.expand(lead + (self.n_agents,))], -1))

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

    def _dist(self, e: Tensor, context: Tensor, avail: Tensor | None) -> MaskedCategorical | DiagGaussian:
        return self.head(self.trunk(torch.cat([e, context], -1)), avail)

    def _lp_ent(self, dist: MaskedCategorical | DiagGaussian, actions: Tensor,
                valid: Tensor) -> tuple[Tensor, Tensor]:
        """Log-probs and entropies of ``dist`` at ``actions``; continuous: summed over the ``valid`` dimensions
        only (``valid`` broadcasts to the action shape)."""
        if self.discrete:
            return dist.log_prob(actions.long()), dist.entropy()  # type: ignore[call-arg]
        v = valid.to(dist.mean.dtype)  # type: ignore[union-attr]
        return (dist.log_prob(actions, per_dim=True) * v).sum(-1), self._entropy(dist, valid)  # type: ignore[call-arg]

    def _entropy(self, dist: MaskedCategorical | DiagGaussian, valid: Tensor) -> Tensor:
        """Entropies of ``dist``; continuous: summed over the ``valid`` (unpadded) dimensions only."""
        if self.discrete:
            return dist.entropy()
        return (dist.entropy(per_dim=True) * valid.to(dist.mean.dtype)).sum(-1)  # type: ignore[call-arg,union-attr]

    def distribution(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None,
                     order: Tensor | None = None) -> MaskedCategorical | DiagGaussian:
        """Teacher-forced conditionals of every agent given the earlier agents' ``actions``: a
        :class:`MaskedCategorical` of batch shape ``[..., n]`` (agent-indexed) or, continuous, a
        :class:`DiagGaussian` with ``mean [..., n, d_max]`` — its padded dimensions are NOT masked there; use
        :meth:`log_prob`/:meth:`entropy`, which exclude them."""
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
        """Per-agent conditional log-probs ``[..., n]`` of the joint ``actions`` (teacher forcing; continuous:
        summed over the agent's own dimensions)."""
        return self.log_prob_and_entropy(obs, actions, avail, order=order)[0]

    def entropy(self, obs: Tensor, avail: Tensor | None = None, *, order: Tensor | None = None,
                actions: Tensor | None = None) -> Tensor:
        """Per-agent conditional entropies ``[..., n]`` given the earlier agents' taken ``actions`` (required)."""
        if actions is None:
            raise ValueError("an auto-regressive policy's conditional entropies depend on the earlier agents' "
                             "actions: pass actions= (the taken joint actions)")
        return self.log_prob_and_entropy(obs, actions, avail, order=order)[1]

    def log_prob_and_entropy(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None, *,
                             order: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """:meth:`log_prob` and :meth:`entropy` from one forward pass."""
        dist = self.distribution(obs, actions, avail, order)
        return self._lp_ent(dist, actions, self.valid)

    def counterfactual_entropy(self, obs: Tensor, avail: Tensor | None = None) -> Tensor:
        """Per-agent entropies ``[..., n]`` of the "counterfactual" distributions ``pi^i(. | o^i, c_i = 0)``: every
        agent's distribution with the earlier actions zeroed, as if it acted first (Fu-code's entropy bonus,
        ``algorithm/trainers/ar_mappo.py``). Does not depend on any action or order."""
        lead = self._check_obs(obs)
        mask = self._avail(avail, lead)
        e = self._embed_obs(obs)
        return self._entropy(self._dist(e, torch.zeros_like(e), mask), self.valid)  # c_i = 0: the first mover's

    def sample(self, obs: Tensor, avail: Tensor | None = None, generator: torch.Generator | None = None, *,
               order: Tensor | None = None, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """Agents act one after another in ``order``, each conditioned on the actions drawn before it:
        ``(actions, log_probs [..., n])`` (agent-indexed conditional log-probs; ``actions [..., n]`` int64 or
        ``[..., n, d_max]`` float with the padded dimensions 0). ``deterministic`` takes each conditional's mode
        (continuous: its mean)."""
        lead = self._check_obs(obs)
        mask = self._avail(avail, lead)
        order = check_order(order, lead, self.n_agents)
        if order is None:
            order = fixed_orders(lead, self.n_agents, obs.device)
        n, H = self.n_agents, self.embed_dim
        flat_obs = obs.reshape((-1, n, self.obs_dim))
        flat_mask = None if mask is None else mask.reshape((-1, n, self.size_max))
        flat_order = order.reshape((-1, n))
        B = flat_obs.shape[0]
        pos = order_positions(flat_order)
        e = self._embed_obs(flat_obs)  # [B, n, H]
        shape = (B, n) if self.discrete else (B, n, self.size_max)
        actions = torch.zeros(shape, dtype=torch.long if self.discrete else e.dtype, device=obs.device)
        log_probs = torch.zeros(B, n, dtype=e.dtype, device=obs.device)
        rows = torch.arange(B, device=obs.device)
        for k in range(n):
            agent = flat_order[:, k]  # [B]
            tokens = self._tokens(actions, e.dtype)  # unsampled entries are masked out below
            context = self._context(e[rows, agent], tokens, pos < k)
            dist = self._dist(e[rows, agent], context, None if flat_mask is None else flat_mask[rows, agent])
            a = dist.mode() if deterministic else dist.sample(generator)
            valid = self.valid[agent]  # [B, size_max]
            if not self.discrete:
                a = a * valid.to(a.dtype)  # padded dimensions are 0
            actions[rows, agent] = a.detach()
            log_probs[rows, agent] = self._lp_ent(dist, a, valid)[0]
        return actions.reshape(lead + shape[1:]), log_probs.reshape(lead + (n,))

    def parameters_of(self, agent: int) -> list[nn.Parameter]:
        raise ValueError("an auto-regressive actor is ONE shared network: per-agent parameter groups do not exist")
