"""Mixing networks for value-decomposition learners: VDN, QMIX, QPLEX and the Weighted-QMIX central mixer.

Common interface (every mixer is an ``nn.Module``)::

    q_tot = mixer(chosen_qs, state, *, max_qs=None, actions_onehot=None)

* ``chosen_qs`` ``[..., n]``: the agents' utilities ``Q_i(tau_i, a_i)`` of the taken (or evaluated) actions;
* ``state`` ``[..., state_dim]``: the global state (ignored by :class:`VDNMixer`, which also accepts ``None``);
* ``max_qs`` ``[..., n]``: ``max_a Q_i(tau_i, a)`` over the *available* actions (QPLEX only);
* ``actions_onehot`` ``[..., n, n_actions]``: the joint action being evaluated, one-hot (QPLEX only);
* returns ``q_tot`` ``[...]``.

The leading dimensions ``...`` are arbitrary and shared by all inputs (``[B]`` for transitions, ``[B, T]`` for
episode batches, ``()`` for a single sample): inputs are flattened to one batch axis and the result is reshaped back.
Every class has the class attribute ``needs_max_and_actions`` (True only for :class:`QPLEXMixer`); mixers that
do not need ``max_qs``/``actions_onehot`` ignore them, so a learner may always pass them. Nothing is allocated on a
fixed device: a mixer works wherever its parameters and the inputs are (construct with ``device``/``dtype`` or call
``.to(...)``).

What each mixer computes (equations in the class docstrings):

* :class:`VDNMixer` -- ``Q_tot = sum_i Q_i`` (Sunehag et al. 2018).
* :class:`QMIXMixer` -- a monotone mixing network whose weights are produced by hypernetworks of the state
  (Rashid et al. 2018); ``dQ_tot/dQ_i >= 0``.
* :class:`QPLEXMixer` -- duplex dueling mixing (Wang et al. 2021); satisfies IGM exactly: the greedy joint action of
  ``Q_tot`` is the tuple of per-agent greedy actions, while ``Q_tot`` is not restricted to monotone functions.
* :class:`CentralQMixer` -- the unrestricted feed-forward ``Q^*`` estimator of Weighted QMIX (Rashid et al. 2020);
  :func:`wqmix_weights` computes the OW/CW loss weights.
* :func:`make_mixer` -- build one by name (``"vdn"``, ``"qmix"``, ``"qplex"``, ``"central"``; ``None``/``"none"``
  for IQL).

Sources of the defaults (official configs, each cited at its class): PyMARL ``src/config/algs/qmix.yaml``
(oxwhirl/pymarl; the same values in EPyMARL uoe-agents/epymarl), QPLEX ``pymarl-master/src/config/algs/qplex*.yaml``
(wjh720/QPLEX), WQMIX ``src/config/algs/{cw,ow}_qmix.yaml`` (oxwhirl/wqmix, oxwhirl/pymarl).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_flag_tensor, check_int, check_prob, check_tensor

Tensor = torch.Tensor

__all__ = [
    "VDNMixer",
    "QMIXMixer",
    "QPLEXMixer",
    "CentralQMixer",
    "wqmix_weights",
    "make_mixer",
    "MIXER_NAMES",
]

#: Names accepted by :func:`make_mixer` (besides ``None``/``"none"``, which mean "no mixer": IQL).
MIXER_NAMES = ("vdn", "qmix", "qplex", "central")

_WEIGHT_ACTIVATIONS = ("abs", "softplus", "none")
_WQMIX_KINDS = ("ow", "cw")


# --------------------------------------------------------------------------------------------------- helpers
def _check_bool(v: Any, name: str) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"{name} must be a bool, got {type(v).__name__}")
    return v


def _check_agent_qs(qs: Any, name: str, n_agents: int) -> Tensor:
    check_tensor(qs, name, floating=True, ndim_min=1)
    if qs.shape[-1] != n_agents:
        raise ValueError(f"{name} must have shape [..., n_agents={n_agents}], got {tuple(qs.shape)}")
    return qs


def _check_state(state: Any, lead: torch.Size, state_dim: int) -> Tensor:
    if state is None:
        raise ValueError("state is required by this mixer (got None)")
    check_tensor(state, "state", floating=True, ndim_min=1)
    if state.shape[:-1] != lead or state.shape[-1] != state_dim:
        raise ValueError(
            f"state must have shape {tuple(lead) + (state_dim,)} (the leading dims of chosen_qs, then "
            f"state_dim={state_dim}), got {tuple(state.shape)}"
        )
    return state


def _mlp(sizes: list[int], device: Any, dtype: Any) -> nn.Module:
    """``Linear -> ReLU -> ... -> Linear`` through ``sizes`` (a single Linear for two sizes)."""
    layers: list[nn.Module] = []
    for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        if k:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(i, o, device=device, dtype=dtype))
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


# ------------------------------------------------------------------------------------------------------- VDN
class VDNMixer(nn.Module):
    """VDN: ``Q_tot(tau, a) = sum_i Q_i(tau_i, a_i)`` (Sunehag et al. 2018, "Value-Decomposition Networks";
    PyMARL ``src/modules/mixers/vdn.py``). No parameters; ``state`` is ignored (may be None)."""

    needs_max_and_actions: bool = False

    def __init__(self) -> None:
        super().__init__()

    def forward(self, chosen_qs: Tensor, state: Tensor | None = None, *, max_qs: Tensor | None = None,
                actions_onehot: Tensor | None = None) -> Tensor:
        return check_tensor(chosen_qs, "chosen_qs", floating=True, ndim_min=1).sum(dim=-1)


# ------------------------------------------------------------------------------------------------------ QMIX
class QMIXMixer(nn.Module):
    """QMIX monotone mixer (Rashid et al. 2018, "QMIX: Monotonic Value Function Factorisation"; PyMARL
    ``src/modules/mixers/qmix.py``).

    Hypernetworks of the state give ``W1(s)`` ``[n, embed]``, ``b1(s)`` ``[embed]``, ``W2(s)`` ``[embed, 1]`` and
    ``V(s)`` (an MLP ``state -> embed -> 1``)::

        hidden = ELU(Q @ g(W1(s)) + b1(s));   Q_tot = hidden @ g(W2(s)) + V(s)

    with ``g = |.|`` (``weight_activation="abs"``, the paper and PyMARL), ``softplus``, or the identity
    (``"none"``: signed weights, an *ablation* that drops the monotonicity guarantee ``dQ_tot/dQ_i >= 0``).
    ``hypernet_layers`` = 1 makes ``W1``/``W2`` linear in ``s``; 2 uses ``state -> hypernet_embed -> ReLU -> .``.

    Defaults: ``embed_dim=32`` (``mixing_embed_dim``), ``hypernet_layers=2``, ``hypernet_embed=64`` from
    ``src/config/algs/qmix.yaml`` of oxwhirl/pymarl (identical in uoe-agents/epymarl; hijkzzz/pymarl2 uses
    ``mixing_embed_dim: 32``, ``hypernet_embed: 64``). Default PyTorch initialisation, as in PyMARL.
    """

    needs_max_and_actions: bool = False

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 32, hypernet_layers: int = 2,
                 hypernet_embed: int = 64, weight_activation: str = "abs", *, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        self.n_agents = check_int(n_agents, "n_agents", minimum=1)
        self.state_dim = check_int(state_dim, "state_dim", minimum=1)
        self.embed_dim = check_int(embed_dim, "embed_dim", minimum=1)
        self.hypernet_layers = check_int(hypernet_layers, "hypernet_layers", minimum=1)
        if self.hypernet_layers > 2:
            raise ValueError(f"hypernet_layers must be 1 or 2 (as in PyMARL), got {hypernet_layers}")
        self.hypernet_embed = check_int(hypernet_embed, "hypernet_embed", minimum=1)
        if weight_activation not in _WEIGHT_ACTIVATIONS:
            raise ValueError(f"weight_activation must be one of {_WEIGHT_ACTIVATIONS}, got {weight_activation!r}")
        self.weight_activation = weight_activation
        hidden = [self.hypernet_embed] if self.hypernet_layers == 2 else []
        s, e = self.state_dim, self.embed_dim
        self.hyper_w1 = _mlp([s, *hidden, e * self.n_agents], device, dtype)
        self.hyper_w2 = _mlp([s, *hidden, e], device, dtype)
        self.hyper_b1 = _mlp([s, e], device, dtype)
        self.V = _mlp([s, e, 1], device, dtype)

    def positive(self, w: Tensor) -> Tensor:
        """The weight activation ``g`` (``abs``, ``softplus`` or identity)."""
        if self.weight_activation == "abs":
            return w.abs()
        if self.weight_activation == "softplus":
            return F.softplus(w)
        return w

    def forward(self, chosen_qs: Tensor, state: Tensor, *, max_qs: Tensor | None = None,
                actions_onehot: Tensor | None = None) -> Tensor:
        _check_agent_qs(chosen_qs, "chosen_qs", self.n_agents)
        lead = chosen_qs.shape[:-1]
        _check_state(state, lead, self.state_dim)
        q = chosen_qs.reshape(-1, 1, self.n_agents)
        s = state.reshape(-1, self.state_dim)
        w1 = self.positive(self.hyper_w1(s)).view(-1, self.n_agents, self.embed_dim)
        b1 = self.hyper_b1(s).view(-1, 1, self.embed_dim)
        hidden = F.elu(torch.bmm(q, w1) + b1)
        w2 = self.positive(self.hyper_w2(s)).view(-1, self.embed_dim, 1)
        q_tot = torch.bmm(hidden, w2).view(-1) + self.V(s).view(-1)
        return q_tot.reshape(lead)


# ----------------------------------------------------------------------------------------------------- QPLEX
class QPLEXMixer(nn.Module):
    """QPLEX duplex dueling mixer (Wang et al. 2021, "QPLEX: Duplex Dueling Multi-Agent Q-Learning"; official
    wjh720/QPLEX ``pymarl-master/src/modules/mixers/dmaq_general.py`` and ``dmaq_si_weight.py``).

    With ``V_i = max_a Q_i`` (``max_qs``) and the per-agent *transformation* ``w_i(s) = |h_w(s)|_i + 1e-10 > 0``,
    ``b_i(s) = h_b(s)_i`` (two MLPs ``state -> hypernet_embed -> n``; identity if ``weighted_head=False``)::

        Q_i' = w_i Q_i + b_i,   V_i' = w_i V_i + b_i,   A_i' = Q_i' - V_i' <= 0   (= 0 iff a_i is greedy)
        Q_tot = sum_i V_i' + sum_i lambda_i(s, a) A_i'

    ``lambda_i(s, a) = sum_k (|key_k(s)| + 1e-10) * sigmoid(agents_k(s))_i * sigmoid(action_k([s, a]))_i > 0`` is the
    multi-head (``n_kernels``) attention of ``DMAQ_SI_Weight``; ``key_k``/``agents_k``/``action_k`` are MLPs with
    ``adv_hypernet_layers`` (1, 2 or 3) linear layers of width ``adv_hypernet_embed``. Computed as in the official
    learner: ``Q_tot = sum_i Q_i' + sum_i (lambda_i - 1) A_i'`` (``is_minus_one=True``; the two forms are equal) or
    ``sum_i Q_i' + sum_i lambda_i A_i'`` (``is_minus_one=False``, i.e. weights ``lambda_i + 1``). With
    ``stop_gradient_advantage=True`` (official ``is_stop_gradient: True``) ``A_i'`` is detached in the advantage
    term, so ``Q_i`` and the transformation learn through ``sum_i Q_i'`` and the attention through ``lambda``.

    **IGM.** Every ``A_i' <= 0`` with equality exactly at the agent's greedy action and every weight of ``A_i'`` is
    positive, so ``Q_tot(s, a) <= sum_i V_i'`` with equality iff every ``a_i`` is greedy: ``argmax_a Q_tot`` is the
    tuple of per-agent argmaxes. This needs ``max_qs`` to be the true per-agent maxima (over available actions);
    ``max_qs`` is detached inside (the official learner takes it from a detached copy of the agent outputs).

    Defaults: ``hypernet_embed=64``, ``adv_hypernet_embed=64``, ``is_minus_one=True``, ``weighted_head=True``,
    ``stop_gradient_advantage=True`` in every official config (``qplex.yaml``, ``qplex_sc2.yaml``; also
    hijkzzz/pymarl2 ``qplex.yaml``). ``n_kernels=4`` is ``num_kernel`` of ``qplex_sc2.yaml`` and pymarl2
    (``qplex.yaml`` of wjh720/QPLEX uses 10); ``adv_hypernet_layers=3`` is wjh720/QPLEX ``qplex.yaml``
    (``qplex_sc2.yaml``: 1, pymarl2: 2). ``embed_dim=32`` (``mixing_embed_dim``) is accepted for config
    compatibility but, as in the official ``DMAQer``, unused.
    """

    needs_max_and_actions: bool = True

    def __init__(self, n_agents: int, n_actions: int, state_dim: int, embed_dim: int = 32, hypernet_embed: int = 64,
                 n_kernels: int = 4, adv_hypernet_layers: int = 3, adv_hypernet_embed: int = 64,
                 is_minus_one: bool = True, weighted_head: bool = True, stop_gradient_advantage: bool = True, *,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.n_agents = check_int(n_agents, "n_agents", minimum=1)
        self.n_actions = check_int(n_actions, "n_actions", minimum=1)
        self.state_dim = check_int(state_dim, "state_dim", minimum=1)
        self.embed_dim = check_int(embed_dim, "embed_dim", minimum=1)
        self.hypernet_embed = check_int(hypernet_embed, "hypernet_embed", minimum=1)
        self.n_kernels = check_int(n_kernels, "n_kernels", minimum=1)
        self.adv_hypernet_layers = check_int(adv_hypernet_layers, "adv_hypernet_layers", minimum=1)
        if self.adv_hypernet_layers > 3:
            raise ValueError(
                f"adv_hypernet_layers must be 1, 2 or 3 (as in the official code), got {adv_hypernet_layers}"
            )
        self.adv_hypernet_embed = check_int(adv_hypernet_embed, "adv_hypernet_embed", minimum=1)
        self.is_minus_one = _check_bool(is_minus_one, "is_minus_one")
        self.weighted_head = _check_bool(weighted_head, "weighted_head")
        self.stop_gradient_advantage = _check_bool(stop_gradient_advantage, "stop_gradient_advantage")
        n, s = self.n_agents, self.state_dim
        if self.weighted_head:
            self.hyper_w = _mlp([s, self.hypernet_embed, n], device, dtype)
            self.hyper_b = _mlp([s, self.hypernet_embed, n], device, dtype)
        hidden = [self.adv_hypernet_embed] * (self.adv_hypernet_layers - 1)
        sa = s + n * self.n_actions
        self.key_heads = nn.ModuleList(_mlp([s, *hidden, 1], device, dtype) for _ in range(self.n_kernels))
        self.agent_heads = nn.ModuleList(_mlp([s, *hidden, n], device, dtype) for _ in range(self.n_kernels))
        self.action_heads = nn.ModuleList(_mlp([sa, *hidden, n], device, dtype) for _ in range(self.n_kernels))

    def transformation(self, state: Tensor) -> tuple[Tensor, Tensor]:
        """``(w, b)``, each ``[B, n]``, of ``Q_i' = w_i Q_i + b_i`` for flat states ``[B, state_dim]``
        (``w = 1, b = 0`` when ``weighted_head=False``); ``w > 0``."""
        if not self.weighted_head:
            ones = state.new_ones(state.shape[0], self.n_agents)
            return ones, torch.zeros_like(ones)
        return self.hyper_w(state).abs() + 1e-10, self.hyper_b(state)

    def attention(self, state: Tensor, actions_onehot: Tensor) -> Tensor:
        """``lambda(s, a)`` ``[B, n]`` (> 0) for flat states ``[B, state_dim]`` and ``actions_onehot`` ``[B, n, A]``."""
        sa = torch.cat([state, actions_onehot.reshape(state.shape[0], -1)], dim=-1)
        lam = state.new_zeros(state.shape[0], self.n_agents)
        for key, agents, action in zip(self.key_heads, self.agent_heads, self.action_heads):
            lam = lam + (key(state).abs() + 1e-10) * torch.sigmoid(agents(state)) * torch.sigmoid(action(sa))
        return lam

    def forward(self, chosen_qs: Tensor, state: Tensor, *, max_qs: Tensor | None = None,
                actions_onehot: Tensor | None = None) -> Tensor:
        _check_agent_qs(chosen_qs, "chosen_qs", self.n_agents)
        lead = chosen_qs.shape[:-1]
        _check_state(state, lead, self.state_dim)
        if max_qs is None or actions_onehot is None:
            missing = [k for k, v in (("max_qs", max_qs), ("actions_onehot", actions_onehot)) if v is None]
            raise ValueError(f"QPLEXMixer needs {' and '.join(missing)} (see needs_max_and_actions)")
        _check_agent_qs(max_qs, "max_qs", self.n_agents)
        if max_qs.shape != chosen_qs.shape:
            raise ValueError(
                f"max_qs must have the shape of chosen_qs {tuple(chosen_qs.shape)}, got {tuple(max_qs.shape)}"
            )
        check_tensor(actions_onehot, "actions_onehot")
        if actions_onehot.shape != chosen_qs.shape + (self.n_actions,):
            raise ValueError(
                f"actions_onehot must have shape {tuple(chosen_qs.shape) + (self.n_actions,)} "
                f"([..., n_agents, n_actions]), got {tuple(actions_onehot.shape)}"
            )
        s = state.reshape(-1, self.state_dim)
        q = chosen_qs.reshape(-1, self.n_agents)
        v = max_qs.reshape(-1, self.n_agents).detach()  # a constant, as in the official learner (detached copy)
        a = actions_onehot.reshape(-1, self.n_agents, self.n_actions).to(s.dtype)
        w, b = self.transformation(s)
        q_t = w * q + b
        adv = q_t - (w * v + b)
        if self.stop_gradient_advantage:
            adv = adv.detach()
        lam = self.attention(s, a)
        coef = lam - 1.0 if self.is_minus_one else lam
        q_tot = q_t.sum(dim=-1) + (coef * adv).sum(dim=-1)
        return q_tot.reshape(lead)


# ------------------------------------------------------------------------------------------- Weighted QMIX
class CentralQMixer(nn.Module):
    """Unrestricted central ``Q^*`` mixer of Weighted QMIX (Rashid et al. 2020, "Weighted QMIX"; official
    oxwhirl/wqmix ``src/modules/mixers/qmix_central_no_hyper.py``, ``central_mixer: "ff"``)::

        Q^*(s, u) = f([s, Q_1, ..., Q_n]) + V(s)   (+ sum_i Q_i if skip_connection)

    ``f`` is ``Linear -> ReLU`` through ``n_hidden_layers`` layers of width ``embed_dim`` then ``Linear -> 1``;
    ``V`` is ``state -> embed_dim -> ReLU -> 1``; no sign constraint anywhere (the class is not monotone).
    ``chosen_qs`` are the utilities of the central agent network (``central_action_embed: 1``).

    Defaults: ``embed_dim=256`` (``central_mixing_embed_dim``) from ``src/config/algs/cw_qmix.yaml`` (oxwhirl/wqmix)
    and ``ow_qmix.yaml`` (oxwhirl/pymarl); ``n_hidden_layers=3`` and ReLU as hard-coded in
    ``qmix_central_no_hyper.py``; ``skip_connection`` is its ``central_skip`` option (off here).
    """

    needs_max_and_actions: bool = False

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 256, n_hidden_layers: int = 3,
                 skip_connection: bool = False, *, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.n_agents = check_int(n_agents, "n_agents", minimum=1)
        self.state_dim = check_int(state_dim, "state_dim", minimum=1)
        self.embed_dim = check_int(embed_dim, "embed_dim", minimum=1)
        self.n_hidden_layers = check_int(n_hidden_layers, "n_hidden_layers", minimum=1)
        self.skip_connection = _check_bool(skip_connection, "skip_connection")
        e = self.embed_dim
        self.net = _mlp([self.state_dim + self.n_agents, *([e] * self.n_hidden_layers), 1], device, dtype)
        self.V = _mlp([self.state_dim, e, 1], device, dtype)

    def forward(self, chosen_qs: Tensor, state: Tensor, *, max_qs: Tensor | None = None,
                actions_onehot: Tensor | None = None) -> Tensor:
        _check_agent_qs(chosen_qs, "chosen_qs", self.n_agents)
        lead = chosen_qs.shape[:-1]
        _check_state(state, lead, self.state_dim)
        s = state.reshape(-1, self.state_dim)
        q = chosen_qs.reshape(-1, self.n_agents)
        y = self.net(torch.cat([s, q], dim=-1)).view(-1) + self.V(s).view(-1)
        if self.skip_connection:
            y = y + q.sum(dim=-1)
        return y.reshape(lead)


def wqmix_weights(kind: str, targets: Tensor, q_tot: Tensor, *, central_q_of_greedy: Tensor | None = None,
                  is_greedy: Tensor | None = None, alpha: float = 0.1) -> Tensor:
    """Per-sample weights of the Weighted-QMIX loss ``sum w (Q_tot(s, u) - y)^2`` (Rashid et al. 2020, §4-5;
    official oxwhirl/wqmix ``src/learners/max_q_learner.py``). Returned detached, shape of ``targets``.

    * ``kind="ow"`` (optimistic): ``w = 1 if Q_tot(s, u) < y else alpha``.
    * ``kind="cw"`` (centrally weighted): ``w = 1 if y > Q^*(s, u_hat*) or u = u_hat* else alpha``, where
      ``u_hat* = argmax_u Q_tot(s, u)`` is the greedy joint action of the QMIX agents, ``central_q_of_greedy`` is
      ``Q^*(s, u_hat*)`` from the (target) central mixer and ``is_greedy`` (bool or 0/1) says ``u == u_hat*``
      (all agents' actions equal). Both are required for ``"cw"`` and rejected for ``"ow"``.

    ``alpha`` in ``(0, 1]`` (1 = unweighted QMIX); default 0.1 = ``w`` of ``cw_qmix.yaml``/``ow_qmix.yaml``
    (oxwhirl/wqmix, oxwhirl/pymarl), the paper's alpha (``qmix_w.yaml`` of oxwhirl/wqmix uses 0.5).
    """
    if kind not in _WQMIX_KINDS:
        raise ValueError(f"kind must be one of {_WQMIX_KINDS}, got {kind!r}")
    alpha = check_prob(alpha, "alpha", low_open=True)
    check_tensor(targets, "targets", floating=True)
    check_tensor(q_tot, "q_tot", floating=True)
    if q_tot.shape != targets.shape:
        raise ValueError(f"q_tot must have the shape of targets {tuple(targets.shape)}, got {tuple(q_tot.shape)}")
    targets, q_tot = targets.detach(), q_tot.detach()
    if kind == "ow":
        if central_q_of_greedy is not None or is_greedy is not None:
            raise ValueError("central_q_of_greedy and is_greedy are used only by kind='cw'")
        full = q_tot < targets
    else:
        if central_q_of_greedy is None or is_greedy is None:
            given = (("central_q_of_greedy", central_q_of_greedy), ("is_greedy", is_greedy))
            missing = [k for k, v in given if v is None]
            raise ValueError(f"kind='cw' needs {' and '.join(missing)}")
        check_tensor(central_q_of_greedy, "central_q_of_greedy", floating=True)
        greedy = check_flag_tensor(is_greedy, "is_greedy")
        for name, t in (("central_q_of_greedy", central_q_of_greedy), ("is_greedy", greedy)):
            if t.shape != targets.shape:
                raise ValueError(f"{name} must have the shape of targets {tuple(targets.shape)}, got {tuple(t.shape)}")
        full = greedy | (targets > central_q_of_greedy.detach())
    return torch.where(full, torch.ones_like(targets), torch.full_like(targets, alpha))


# --------------------------------------------------------------------------------------------------- factory
def make_mixer(name: str | None, n_agents: int, n_actions: int, state_dim: int, **options: Any) -> nn.Module | None:
    """Build a mixer by name: ``"vdn"``, ``"qmix"``, ``"qplex"`` or ``"central"`` (the WQMIX ``Q^*`` mixer);
    ``None``/``"none"`` (IQL) returns None. ``options`` are the class's keyword arguments (e.g. ``embed_dim``,
    ``weight_activation``, ``n_kernels``, ``device``); an option the class does not take raises ValueError."""
    check_int(n_agents, "n_agents", minimum=1)
    check_int(n_actions, "n_actions", minimum=1)
    check_int(state_dim, "state_dim", minimum=1)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {type(name).__name__}")
    key = "none" if name is None else name.lower()
    if key == "none":
        if options:
            raise ValueError(f"mixer None (IQL) takes no options, got {sorted(options)}")
        return None
    classes: dict[str, tuple[type[nn.Module], dict[str, int]]] = {
        "vdn": (VDNMixer, {}),
        "qmix": (QMIXMixer, {"n_agents": n_agents, "state_dim": state_dim}),
        "qplex": (QPLEXMixer, {"n_agents": n_agents, "n_actions": n_actions, "state_dim": state_dim}),
        "central": (CentralQMixer, {"n_agents": n_agents, "state_dim": state_dim}),
    }
    if key not in classes:
        raise ValueError(f"unknown mixer {name!r}; known: {', '.join(MIXER_NAMES)} (or None/'none' for IQL)")
    cls, sizes = classes[key]
    params = inspect.signature(cls.__init__).parameters.values()
    accepted = [p.name for p in params if p.name not in ("self", *sizes) and p.kind is not p.VAR_POSITIONAL]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for mixer {key!r}; accepted: {accepted}")
    return cls(**sizes, **options)
