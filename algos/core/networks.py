"""Networks shared by the on-policy algorithms: MLP, GRU core, policy heads, actors, critics.

Defaults follow HARL `[SOURCE: HARL-code]` (hidden (128, 128), ReLU, orthogonal init with the activation's
gain, policy-output gain 0.01, zero biases) except three choices that are options here (HARL's value in
brackets; docs/harl_differences.md): ``feature_norm`` (on), ``layer_norm`` (on) and the Gaussian
``std_param`` (``harl``: ``sigmoid(p) * 0.5``); all default to the plain PPO network here. Every module is device-agnostic: pass ``device``/``dtype`` at
construction or call ``.to(...)``; float32 by default.

Recurrent option (``rnn_hidden``; the MAPPO/HARL recurrent policy, ``use_recurrent_policy``): actor and critic
become ``MLP body -> GRUCore -> head``. Their forward passes then take ``rnn=(h, episode_start)``: ``h`` the
hidden state entering the first step (``[B, H]``, per agent for actors) and ``episode_start`` ``[B]`` (one step)
or ``[T, B]`` (a sequence) marking the steps where the state is zeroed first.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ._checks import check_flag_tensor, check_int, check_positive, check_tensor
from .distributions import DiagGaussian, MaskedCategorical
from .joint_policy import check_order
from .stacked import StackedActors, same_architecture

Tensor = torch.Tensor

__all__ = [
    "DiscreteSpace",
    "BoxSpace",
    "as_action_space",
    "init_linear",
    "MLP",
    "GRUCore",
    "CategoricalHead",
    "DiagGaussianHead",
    "Actor",
    "Critic",
    "MultiAgentActors",
]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
_STD_PARAMS = ("exp", "harl")


# ---------------------------------------------------------------------------------------------------- spaces
@dataclass(frozen=True)
class DiscreteSpace:
    """``n`` discrete actions {0, ..., n-1}."""

    n: int

    def __post_init__(self) -> None:
        check_int(self.n, "n", minimum=1)


@dataclass(frozen=True)
class BoxSpace:
    """A continuous ``dim``-dimensional action (bounds, if any, are the environment's business)."""

    dim: int

    def __post_init__(self) -> None:
        check_int(self.dim, "dim", minimum=1)


def as_action_space(space: Any) -> DiscreteSpace | BoxSpace:
    """Interpret ``space``: a DiscreteSpace/BoxSpace, an int (= DiscreteSpace(n)), any object with an int
    attribute ``n`` (gym-style Discrete) or a 1-D ``shape`` (gym-style Box)."""
    if isinstance(space, (DiscreteSpace, BoxSpace)):
        return space
    if isinstance(space, numbers.Integral) and not isinstance(space, bool):
        return DiscreteSpace(int(space))
    n = getattr(space, "n", None)
    if isinstance(n, numbers.Integral) and not isinstance(n, bool):
        return DiscreteSpace(int(n))
    shape = getattr(space, "shape", None)
    if shape is not None and len(tuple(shape)) == 1:
        return BoxSpace(int(tuple(shape)[0]))
    raise TypeError(
        "action_space must be a DiscreteSpace, BoxSpace, an int (number of actions), or an object with an int "
        f"attribute 'n' or a 1-D 'shape'; got {space!r}"
    )


# ---------------------------------------------------------------------------------------------------- MLP
def _check_generator(generator: torch.Generator | None) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def init_linear(layer: nn.Linear, gain: float, generator: torch.Generator | None = None) -> nn.Linear:
    """Orthogonal weight init with ``gain`` (drawn from ``generator`` if given) and zero bias, in place."""
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"layer must be nn.Linear, got {type(layer).__name__}")
    check_positive(gain, "gain")
    nn.init.orthogonal_(layer.weight, gain=gain, generator=_check_generator(generator))
    nn.init.zeros_(layer.bias)
    return layer


def _check_hidden(hidden: Sequence[int]) -> tuple[int, ...]:
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        raise TypeError(f"hidden must be a sequence of ints, got {type(hidden).__name__}")
    return tuple(check_int(h, f"hidden[{i}]") for i, h in enumerate(hidden))


def _check_activation(activation: str) -> str:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    return activation


class MLP(nn.Module):
    """``[LayerNorm ->]`` then ``Linear -> act [-> LayerNorm]`` for each hidden size, then an optional output
    ``Linear``.

    ``feature_norm`` puts a ``LayerNorm(in_dim)`` on the input and ``layer_norm`` one after every hidden
    activation: HARL's MLPBase (``harl/models/base/mlp.py``: ``use_feature_normalization``, default on) and
    MLPLayer (always on). Both default to off here.

    Hidden layers use orthogonal init with ``gain`` (default: ``nn.init.calculate_gain(activation)``:
    sqrt(2) for ReLU, 5/3 for tanh); the output layer uses ``out_gain``. ``out_dim=None`` returns the last
    hidden features (``self.out_dim`` is then the last hidden size, or ``in_dim`` if ``hidden`` is empty).
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int] = (128, 128),
        out_dim: int | None = None,
        *,
        activation: str = "relu",
        layer_norm: bool = False,
        feature_norm: bool = False,
        gain: float | None = None,
        out_gain: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        in_dim = check_int(in_dim, "in_dim")
        hidden = _check_hidden(hidden)
        activation = _check_activation(activation)
        if not isinstance(layer_norm, bool):
            raise TypeError(f"layer_norm must be a bool, got {type(layer_norm).__name__}")
        if not isinstance(feature_norm, bool):
            raise TypeError(f"feature_norm must be a bool, got {type(feature_norm).__name__}")
        gain = nn.init.calculate_gain(activation) if gain is None else check_positive(gain, "gain")
        check_positive(out_gain, "out_gain")
        layers: list[nn.Module] = []
        if feature_norm:
            layers.append(nn.LayerNorm(in_dim, device=device, dtype=dtype))
        d = in_dim
        for h in hidden:
            layers.append(init_linear(nn.Linear(d, h, device=device, dtype=dtype), gain, generator))
            layers.append(_ACTIVATIONS[activation]())
            if layer_norm:
                layers.append(nn.LayerNorm(h, device=device, dtype=dtype))
            d = h
        if out_dim is not None:
            out_dim = check_int(out_dim, "out_dim")
            layers.append(init_linear(nn.Linear(d, out_dim, device=device, dtype=dtype), out_gain, generator))
            d = out_dim
        self.net = nn.Sequential(*layers)
        self.in_dim = in_dim
        self.out_dim = d

    def forward(self, x: Tensor) -> Tensor:
        check_tensor(x, "x", floating=True, ndim_min=1)
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"x must have last dimension {self.in_dim}, got shape {tuple(x.shape)}")
        return self.net(x)


class GRUCore(nn.Module):
    """A GRU whose hidden state is zeroed at episode starts.

    ``forward(x, h, episode_start)``: ``x`` is ``[B, in_dim]`` (one step) or ``[T, B, in_dim]``; ``h`` is
    ``[n_layers, B, hidden_dim]``; ``episode_start`` is ``[B]`` or ``[T, B]`` (bool / 0-1): where True, the
    state entering that step is replaced by zeros (the step is the first of a new episode). Returns
    ``(out, h_next)`` with ``out`` shaped like ``x`` but with ``hidden_dim`` features.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        n_layers: int = 1,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_dim = check_int(in_dim, "in_dim")
        self.hidden_dim = check_int(hidden_dim, "hidden_dim")
        self.n_layers = check_int(n_layers, "n_layers")
        self.gru = nn.GRU(in_dim, hidden_dim, num_layers=n_layers, device=device, dtype=dtype)
        for name, p in self.gru.named_parameters():
            if "weight" in name:
                nn.init.orthogonal_(p, generator=_check_generator(generator))
            else:
                nn.init.zeros_(p)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> Tensor:
        w = self.gru.weight_ih_l0
        return torch.zeros(self.n_layers, check_int(batch, "batch"), self.hidden_dim, device=device or w.device,
                           dtype=w.dtype)

    def forward(self, x: Tensor, h: Tensor, episode_start: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor(x, "x", floating=True)
        check_tensor(h, "h", floating=True)
        starts = check_flag_tensor(episode_start, "episode_start")
        single = x.dim() == 2
        if single:
            x = x.unsqueeze(0)
            starts = starts.unsqueeze(0)
        if x.dim() != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"x must be [B, {self.in_dim}] or [T, B, {self.in_dim}], got {tuple(x.shape)}")
        T, B = x.shape[:2]
        if tuple(h.shape) != (self.n_layers, B, self.hidden_dim):
            raise ValueError(f"h must have shape {(self.n_layers, B, self.hidden_dim)}, got {tuple(h.shape)}")
        if tuple(starts.shape) != (T, B):
            raise ValueError(f"episode_start must have shape {(T, B)[1:] if single else (T, B)}, "
                             f"got {tuple(episode_start.shape)}")
        keep = (~starts).to(x.dtype)
        # Run the stretches without any reset in one GRU call each (the state is zeroed only at a stretch's
        # first step); identical maths to stepping one t at a time, far fewer kernel launches.
        cuts = [0] + (torch.nonzero(starts[1:].any(1)).flatten() + 1).tolist() + [T]  # one host sync
        outs = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            h = h * keep[a].view(1, B, 1)
            o, h = self.gru(x[a:b], h)
            outs.append(o)
        out = torch.cat(outs, 0)
        return (out[0] if single else out), h


RNNInput = tuple[Tensor, Tensor]  # (h [B, H] entering the first step, episode_start [B] or [T, B])


def _check_rnn_hidden(rnn_hidden: int | None) -> int | None:
    return None if rnn_hidden is None else check_int(rnn_hidden, "rnn_hidden")


def _run_gru(core: GRUCore | None, x: Tensor, rnn: RNNInput | None, owner: str) -> tuple[Tensor, Tensor | None]:
    """Features ``x`` through ``core`` (if any): ``(out, h_next [B, H])`` or ``(x, None)`` without a core."""
    if core is None:
        if rnn is not None:
            raise ValueError(f"rnn state given to a feed-forward {owner} (built with rnn_hidden=None)")
        return x, None
    if rnn is None:
        raise ValueError(f"a recurrent {owner} needs rnn=(h, episode_start): h [B, {core.hidden_dim}] entering the "
                         "first step and episode_start [B] (one step) or [T, B] (a sequence)")
    if not isinstance(rnn, tuple) or len(rnn) != 2:
        raise TypeError(f"rnn must be a pair (h, episode_start), got {type(rnn).__name__}")
    h, starts = rnn
    check_tensor(h, "h", floating=True)
    batch = x.shape[-2] if x.dim() >= 2 else None
    if h.dim() != 2 or h.shape != (batch, core.hidden_dim):
        raise ValueError(f"h must have shape {(batch, core.hidden_dim)} (batch, rnn_hidden), got {tuple(h.shape)}")
    out, h_next = core(x, h.unsqueeze(0), starts)
    return out, h_next.squeeze(0)


# ---------------------------------------------------------------------------------------------------- heads
class CategoricalHead(nn.Module):
    """Linear logits (orthogonal init, ``gain`` = 0.01 by default) -> :class:`MaskedCategorical`."""

    def __init__(self, in_dim: int, n_actions: int, *, gain: float = 0.01,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.n_actions = check_int(n_actions, "n_actions")
        self.linear = init_linear(nn.Linear(check_int(in_dim, "in_dim"), n_actions, device=device, dtype=dtype), gain,
                                  generator)

    def forward(self, features: Tensor, avail: Tensor | None = None) -> MaskedCategorical:
        return MaskedCategorical(self.linear(features), avail)


class DiagGaussianHead(nn.Module):
    """Linear mean (orthogonal init, ``gain`` 0.01) and a state-independent std parameter ``log_std`` ->
    :class:`DiagGaussian`.

    ``std_param`` chooses how the parameter ``p`` (``self.log_std``) gives the standard deviation:

    * ``"exp"``: ``std = exp(p)``, ``p`` initialised to ``log_std_init`` (std 1 by default; unbounded);
    * ``"harl"``: ``std = sigmoid(p / std_x_coef) * std_y_coef``, ``p`` initialised to ``std_x_coef``
      (HARL ``harl/models/base/distributions.py`` DiagGaussian, coefficients 1 / 0.5 from
      ``harl/configs/algos_cfgs/happo.yaml``): starts at ``sigmoid(1) * 0.5 ≈ 0.3655`` and always lies in
      ``(0, std_y_coef)``. ``log_std_init`` is not used.
    """

    def __init__(self, in_dim: int, action_dim: int, *, gain: float = 0.01, log_std_init: float = 0.0,
                 std_param: str = "exp", std_x_coef: float = 1.0, std_y_coef: float = 0.5,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.action_dim = check_int(action_dim, "action_dim")
        if isinstance(log_std_init, bool) or not isinstance(log_std_init, numbers.Real):
            raise TypeError(f"log_std_init must be a real number, got {type(log_std_init).__name__}")
        if std_param not in _STD_PARAMS:
            raise ValueError(f"std_param must be one of {_STD_PARAMS}, got {std_param!r}")
        self.std_param = std_param
        self.std_x_coef = float(check_positive(std_x_coef, "std_x_coef"))
        self.std_y_coef = float(check_positive(std_y_coef, "std_y_coef"))
        self.linear = init_linear(nn.Linear(check_int(in_dim, "in_dim"), action_dim, device=device, dtype=dtype),
                                  gain, generator)
        init = float(log_std_init) if std_param == "exp" else self.std_x_coef
        self.log_std = nn.Parameter(torch.full((action_dim,), init, device=device, dtype=dtype))

    def log_std_value(self) -> Tensor:
        """``log(std)`` ``[action_dim]`` under the chosen parametrisation (differentiable in the parameter)."""
        if self.std_param == "exp":
            return self.log_std
        # log(sigmoid(p / x) * y), computed stably
        return nn.functional.logsigmoid(self.log_std / self.std_x_coef) + math.log(self.std_y_coef)

    def std(self) -> Tensor:
        """The standard deviation ``[action_dim]``."""
        if self.std_param == "exp":
            return self.log_std.exp()
        return torch.sigmoid(self.log_std / self.std_x_coef) * self.std_y_coef

    def forward(self, features: Tensor, avail: Tensor | None = None) -> DiagGaussian:
        if avail is not None:
            raise ValueError("avail (action masks) is only defined for discrete actions; got a mask for a Gaussian head")
        return DiagGaussian(self.linear(features), self.log_std_value())


# ---------------------------------------------------------------------------------------------------- actor / critic
class Actor(nn.Module):
    """MLP body (+ optional GRU, ``rnn_hidden``) + policy head for one agent.

    ``distribution(obs, avail)`` gives a :class:`MaskedCategorical` (discrete) or :class:`DiagGaussian`
    (continuous) over ``obs``'s leading axes. A recurrent actor takes ``rnn=(h [B, H], episode_start)`` with
    ``obs`` ``[B, obs_dim]`` (one step) or ``[T, B, obs_dim]`` (a sequence); :meth:`features` also returns
    the next hidden state.
    """

    def __init__(
        self,
        obs_dim: int,
        action_space: Any,
        hidden: Sequence[int] = (128, 128),
        *,
        activation: str = "relu",
        layer_norm: bool = False,
        feature_norm: bool = False,
        out_gain: float = 0.01,
        log_std_init: float = 0.0,
        std_param: str = "exp",
        std_x_coef: float = 1.0,
        std_y_coef: float = 0.5,
        rnn_hidden: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.action_space = as_action_space(action_space)
        self.obs_dim = check_int(obs_dim, "obs_dim")
        rnn_hidden = _check_rnn_hidden(rnn_hidden)
        self.body = MLP(obs_dim, hidden, None, activation=activation, layer_norm=layer_norm,
                        feature_norm=feature_norm, device=device, dtype=dtype, generator=generator)
        self.rnn = None if rnn_hidden is None else GRUCore(self.body.out_dim, rnn_hidden, device=device, dtype=dtype,
                                                           generator=generator)
        # HARL's RNNLayer normalises the GRU output (harl/models/base/rnn.py RNNLayer.norm)
        self.rnn_norm = (nn.LayerNorm(rnn_hidden, device=device, dtype=dtype)
                         if rnn_hidden is not None and layer_norm else None)
        feat = self.body.out_dim if rnn_hidden is None else rnn_hidden
        if isinstance(self.action_space, DiscreteSpace):
            self.head: nn.Module = CategoricalHead(feat, self.action_space.n, gain=out_gain,
                                                   device=device, dtype=dtype, generator=generator)
        else:
            self.head = DiagGaussianHead(feat, self.action_space.dim, gain=out_gain, log_std_init=log_std_init,
                                         std_param=std_param, std_x_coef=std_x_coef, std_y_coef=std_y_coef,
                                         device=device, dtype=dtype, generator=generator)

    @property
    def discrete(self) -> bool:
        return isinstance(self.action_space, DiscreteSpace)

    @property
    def recurrent(self) -> bool:
        return self.rnn is not None

    def features(self, obs: Tensor, rnn: RNNInput | None = None) -> tuple[Tensor, Tensor | None]:
        """Head input and next hidden state ``[B, H]`` (``None`` for a feed-forward actor)."""
        out, h_next = _run_gru(self.rnn, self.body(obs), rnn, "actor")
        return (out if self.rnn_norm is None else self.rnn_norm(out)), h_next

    def distribution(self, obs: Tensor, avail: Tensor | None = None,
                     rnn: RNNInput | None = None) -> MaskedCategorical | DiagGaussian:
        return self.head(self.features(obs, rnn)[0], avail)

    forward = distribution

    def log_prob(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None, per_dim: bool = False,
                 rnn: RNNInput | None = None) -> Tensor:
        dist = self.distribution(obs, avail, rnn)
        if self.discrete:
            if per_dim:
                raise ValueError("per_dim log-probabilities are only defined for continuous actions")
            return dist.log_prob(actions)
        return dist.log_prob(actions, per_dim=per_dim)

    def entropy(self, obs: Tensor, avail: Tensor | None = None, rnn: RNNInput | None = None) -> Tensor:
        return self.distribution(obs, avail, rnn).entropy()

    def sample(self, obs: Tensor, avail: Tensor | None = None, generator: torch.Generator | None = None,
               deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """Return ``(actions, log_probs)``; ``deterministic`` takes the mode (feed-forward actors only; recurrent
        ones sample through :meth:`MultiAgentActors.sample`, which carries the hidden state)."""
        dist = self.distribution(obs, avail)
        actions = dist.mode() if deterministic else dist.sample(generator)
        return actions, dist.log_prob(actions)


class Critic(nn.Module):
    """State-value MLP ``V(state)``; output ``[...]`` when ``out_dim == 1`` (squeezed), else ``[..., out_dim]``.

    With ``rnn_hidden`` the critic is ``MLP body -> GRUCore -> Linear``; ``forward(state, rnn=(h, starts))`` then
    returns ``(values, h_next [B, H])`` for ``state`` ``[B, d]`` or ``[T, B, d]``.
    """

    def __init__(
        self,
        state_dim: int,
        hidden: Sequence[int] = (128, 128),
        *,
        out_dim: int = 1,
        activation: str = "relu",
        layer_norm: bool = False,
        feature_norm: bool = False,
        out_gain: float = 1.0,
        rnn_hidden: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.out_features = check_int(out_dim, "out_dim")
        rnn_hidden = _check_rnn_hidden(rnn_hidden)
        self.rnn_norm: nn.LayerNorm | None = None
        if rnn_hidden is None:
            self.net = MLP(state_dim, hidden, out_dim, activation=activation, layer_norm=layer_norm,
                           feature_norm=feature_norm, out_gain=out_gain, device=device, dtype=dtype,
                           generator=generator)
            self.rnn: GRUCore | None = None
        else:
            self.net = MLP(state_dim, hidden, None, activation=activation, layer_norm=layer_norm,
                           feature_norm=feature_norm, device=device, dtype=dtype, generator=generator)
            self.rnn = GRUCore(self.net.out_dim, rnn_hidden, device=device, dtype=dtype, generator=generator)
            if layer_norm:  # HARL harl/models/base/rnn.py RNNLayer.norm
                self.rnn_norm = nn.LayerNorm(rnn_hidden, device=device, dtype=dtype)
            self.out = init_linear(nn.Linear(rnn_hidden, out_dim, device=device, dtype=dtype), out_gain, generator)

    @property
    def recurrent(self) -> bool:
        return self.rnn is not None

    def initial_state(self, batch: int) -> Tensor:
        """Zero hidden state ``[batch, H]`` (recurrent critics only)."""
        if self.rnn is None:
            raise ValueError("initial_state is only defined for a recurrent critic (rnn_hidden set)")
        return self.rnn.initial_state(batch)[0]

    def forward(self, state: Tensor, rnn: RNNInput | None = None) -> Tensor | tuple[Tensor, Tensor]:
        if self.rnn is None:
            _run_gru(None, state, rnn, "critic")
            v = self.net(state)
            return v.squeeze(-1) if self.out_features == 1 else v
        out, h_next = _run_gru(self.rnn, self.net(state), rnn, "critic")
        v = self.out(out if self.rnn_norm is None else self.rnn_norm(out))
        return (v.squeeze(-1) if self.out_features == 1 else v), h_next


# ---------------------------------------------------------------------------------------------------- multi-agent
class MultiAgentActors(nn.Module):
    """The n agents' policies behind one interface.

    * ``share=True``: one :class:`Actor` for all agents (MAPPO-style parameter sharing); with ``agent_id=True``
      the one-hot agent index is appended to each agent's observation. Heterogeneous action counts use one
      padded head of ``max(n_actions)`` logits whose extra entries are masked out per agent; heterogeneous
      continuous dimensions use a padded Gaussian whose extra dimensions are ignored (log-prob/entropy 0,
      sample 0).
    * ``share=False``: one :class:`Actor` per agent with its own head size (HAPPO/HATRPO default);
      :meth:`parameters_of` gives agent i's parameter group for sequential per-agent updates.

    Shapes: ``obs [..., n, obs_dim]``; discrete ``actions [..., n]`` (int64), ``avail [..., n, A_max]``;
    continuous ``actions [..., n, d_max]``. Outputs ``[..., n]``. The bool buffer ``valid [n, size_max]`` marks
    which padded actions (discrete) or action dimensions (continuous) exist for each agent; pass ``valid[i]`` as
    ``dim_mask`` to :func:`~seqmarl.algos.core.losses.aggregate_ratio` for per-dimension ratios.

    Recurrent actors (``rnn_hidden`` set; MAPPO/HARL recurrent policy): every agent carries a hidden state
    ``[B, H]`` (all agents: ``[B, n, H]``, :meth:`initial_state`); with a shared actor the agents share the GRU
    weights but not the state. The per-agent methods take ``rnn=(h_i [B, H], episode_start)`` and then accept
    one step (``obs_i [B, obs_dim]``, ``episode_start [B]``) or a whole sequence (``obs_i [T, B, obs_dim]``,
    ``episode_start [T, B]``, outputs ``[T, B]``), so a rollout can be replayed from its first stored state.
    :meth:`sample` with ``rnn=(h [B, n, H], episode_start [B])`` also returns the next state.
    """

    def __init__(
        self,
        n_agents: int,
        obs_dim: int,
        action_spaces: Any | Sequence[Any],
        *,
        share: bool = False,
        agent_id: bool = False,
        hidden: Sequence[int] = (128, 128),
        activation: str = "relu",
        layer_norm: bool = False,
        feature_norm: bool = False,
        out_gain: float = 0.01,
        log_std_init: float = 0.0,
        std_param: str = "exp",
        std_x_coef: float = 1.0,
        std_y_coef: float = 0.5,
        rnn_hidden: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n_agents = check_int(n_agents, "n_agents")
        self.rnn_hidden = _check_rnn_hidden(rnn_hidden)
        self.obs_dim = check_int(obs_dim, "obs_dim")
        if not isinstance(share, bool):
            raise TypeError(f"share must be a bool, got {type(share).__name__}")
        if not isinstance(agent_id, bool):
            raise TypeError(f"agent_id must be a bool, got {type(agent_id).__name__}")
        if agent_id and not share:
            raise ValueError("agent_id=True appends a one-hot agent index to a SHARED actor's input; "
                             "it needs share=True (separate actors already know which agent they are)")
        if isinstance(action_spaces, Sequence) and not isinstance(action_spaces, (str, bytes)):
            if len(action_spaces) != n_agents:
                raise ValueError(f"action_spaces must have n_agents={n_agents} entries, got {len(action_spaces)}")
            spaces = tuple(as_action_space(s) for s in action_spaces)
        else:
            spaces = (as_action_space(action_spaces),) * n_agents
        kinds = {type(s) for s in spaces}
        if len(kinds) != 1:
            raise ValueError("action_spaces must be all discrete or all continuous; mixed spaces are not supported")
        self.action_spaces = spaces
        self.share = share
        self.agent_id = agent_id
        self.discrete = isinstance(spaces[0], DiscreteSpace)
        sizes = [s.n if self.discrete else s.dim for s in spaces]  # type: ignore[union-attr]
        self.sizes = tuple(sizes)
        self.size_max = max(sizes)
        # valid[i, k]: action k (discrete) or action dimension k (continuous) exists for agent i
        valid = torch.arange(self.size_max).unsqueeze(0) < torch.tensor(sizes).unsqueeze(1)
        self.register_buffer("valid", valid.to(device), persistent=False)
        kw = dict(hidden=hidden, activation=activation, layer_norm=layer_norm, feature_norm=feature_norm,
                  out_gain=out_gain, log_std_init=log_std_init, std_param=std_param, std_x_coef=std_x_coef,
                  std_y_coef=std_y_coef, device=device, dtype=dtype, generator=generator)
        if self.rnn_hidden is not None:  # keep the feed-forward construction call exactly as before
            kw["rnn_hidden"] = self.rnn_hidden
        if share:
            padded = DiscreteSpace(self.size_max) if self.discrete else BoxSpace(self.size_max)
            in_dim = obs_dim + (n_agents if agent_id else 0)
            self.actors = nn.ModuleList([Actor(in_dim, padded, **kw)])
        else:
            self.actors = nn.ModuleList([Actor(obs_dim, s, **kw) for s in spaces])
        #: acting with separate feed-forward actors of one architecture: all agents in one pass (:mod:`.stacked`);
        #: built on first use, None where the actors cannot be stacked; ``stacked_inference=False`` turns it off
        self.stacked_inference = True
        self._stacked: StackedActors | None | bool = False  # False: not decided yet

    # ------------------------------------------------------------------ helpers
    @property
    def recurrent(self) -> bool:
        return self.rnn_hidden is not None

    def initial_state(self, batch: int) -> Tensor:
        """Zero hidden states ``[batch, n, H]`` of every agent (recurrent actors only)."""
        if self.rnn_hidden is None:
            raise ValueError("initial_state is only defined for recurrent actors (rnn_hidden set)")
        w = self.actors[0].rnn.gru.weight_ih_l0
        return torch.zeros(check_int(batch, "batch"), self.n_agents, self.rnn_hidden, device=w.device, dtype=w.dtype)

    @property
    def n_actions(self) -> tuple[int, ...]:
        if not self.discrete:
            raise ValueError("n_actions is only defined for discrete action spaces; see action_dims")
        return self.sizes

    @property
    def action_dims(self) -> tuple[int, ...]:
        if self.discrete:
            raise ValueError("action_dims is only defined for continuous action spaces; see n_actions")
        return self.sizes

    def _agent(self, agent: int) -> int:
        if isinstance(agent, bool) or not isinstance(agent, numbers.Integral):
            raise TypeError(f"agent must be an int, got {type(agent).__name__}")
        if not 0 <= agent < self.n_agents:
            raise ValueError(f"agent must lie in [0, {self.n_agents}), got {agent}")
        return int(agent)

    def parameters_of(self, agent: int) -> list[nn.Parameter]:
        """Agent ``agent``'s own parameters (share=False only)."""
        return list(self.actor_of(agent).parameters())

    def actor_of(self, agent: int) -> Actor:
        """Agent ``agent``'s :class:`Actor` (share=False only)."""
        agent = self._agent(agent)
        if self.share:
            raise ValueError("share=True: all agents use ONE parameter set, so per-agent parameter groups do not "
                             "exist; sequential per-agent updates (HAPPO/HATRPO) need share=False")
        return self.actors[agent]  # type: ignore[return-value]

    def _check_obs(self, obs: Tensor) -> None:
        check_tensor(obs, "obs", floating=True, ndim_min=2)
        if tuple(obs.shape[-2:]) != (self.n_agents, self.obs_dim):
            raise ValueError(f"obs must end with (n_agents, obs_dim) = {(self.n_agents, self.obs_dim)}, "
                             f"got {tuple(obs.shape)}")

    def _check_avail(self, avail: Tensor | None, lead: tuple[int, ...]) -> Tensor | None:
        if avail is None:
            return None
        if not self.discrete:
            raise ValueError("avail (action masks) is only defined for discrete actions")
        avail = check_flag_tensor(avail, "avail")
        if tuple(avail.shape) != lead + (self.n_agents, self.size_max):
            raise ValueError(f"avail must have shape {lead + (self.n_agents, self.size_max)}, "
                             f"got {tuple(avail.shape)}")
        return avail

    def _check_avail_i(self, avail_i: Tensor | None, lead: tuple[int, ...]) -> Tensor | None:
        if avail_i is None:
            return None
        if not self.discrete:
            raise ValueError("avail (action masks) is only defined for discrete actions")
        avail_i = check_flag_tensor(avail_i, "avail_i")
        if tuple(avail_i.shape) != lead + (self.size_max,):
            raise ValueError(f"avail_i must have shape {lead + (self.size_max,)}, got {tuple(avail_i.shape)}")
        return avail_i

    def _shared_input(self, obs_i: Tensor, agent: int | None) -> Tensor:
        """Append one-hot ids: obs_i is [..., n, obs_dim] (agent None) or [..., obs_dim] for one agent."""
        if not self.agent_id:
            return obs_i
        eye = torch.eye(self.n_agents, device=obs_i.device, dtype=obs_i.dtype)
        ids = eye if agent is None else eye[agent]
        return torch.cat([obs_i, ids.expand(obs_i.shape[:-1] + (self.n_agents,))], -1)

    def _dist_agent_state(self, agent: int, obs_i: Tensor, avail_i: Tensor | None, rnn: RNNInput | None = None):
        """``(distribution, h_next)`` of agent ``agent`` given its obs ``[..., obs_dim]``, avail ``[..., A_max]``
        and (recurrent actors) ``rnn``; ``h_next`` is None for feed-forward actors."""
        if self.share:
            if self.discrete:
                pad = self.valid[agent].expand(obs_i.shape[:-1] + (self.size_max,))
                avail_i = pad if avail_i is None else (avail_i & pad)
            actor, x = self.actors[0], self._shared_input(obs_i, agent)
        else:
            if avail_i is not None:
                avail_i = avail_i[..., : self.sizes[agent]]
            actor, x = self.actors[agent], obs_i
        features, h_next = actor.features(x, rnn)
        return actor.head(features, avail_i), h_next

    def _dist_agent(self, agent: int, obs_i: Tensor, avail_i: Tensor | None, rnn: RNNInput | None = None):
        """Distribution of agent ``agent`` given its obs ``[..., obs_dim]`` and avail ``[..., A_max]``."""
        return self._dist_agent_state(agent, obs_i, avail_i, rnn)[0]

    def _log_prob_from(self, agent: int, dist, actions_i: Tensor, per_dim: bool) -> Tensor:
        """Agent ``agent``'s log-probs of (padded) ``actions_i`` under its distribution ``dist``."""
        if self.discrete:
            if per_dim:
                raise ValueError("per_dim log-probabilities are only defined for continuous actions")
            return dist.log_prob(actions_i)
        valid = self.valid[agent].to(actions_i.dtype)
        if self.share:
            lp = dist.log_prob(actions_i, per_dim=True) * valid
        else:
            lp = self._pad_actions(dist.log_prob(actions_i[..., : self.sizes[agent]], per_dim=True), agent)
        return lp if per_dim else lp.sum(-1)

    def _entropy_from(self, agent: int, dist) -> Tensor:
        if self.discrete:
            return dist.entropy()
        if self.share:
            return (dist.entropy(per_dim=True) * self.valid[agent].to(dist.mean.dtype)).sum(-1)
        return dist.entropy()

    def _dist_all(self, obs: Tensor, avail: Tensor | None):
        """Shared mode: one distribution over [..., n, *]."""
        if self.discrete:
            pad = self.valid.expand(obs.shape[:-1] + (self.size_max,))
            avail = pad if avail is None else (avail & pad)
        return self.actors[0].distribution(self._shared_input(obs, None), avail)

    def _pad_actions(self, a: Tensor, agent: int) -> Tensor:
        """Continuous: pad agent's [..., d_i] to [..., d_max] with zeros."""
        d = self.sizes[agent]
        if self.discrete or d == self.size_max:
            return a
        return torch.cat([a, a.new_zeros(a.shape[:-1] + (self.size_max - d,))], -1)

    def _check_actions_agent(self, actions_i: Tensor, lead: tuple[int, ...]) -> None:
        check_tensor(actions_i, "actions")
        expected = lead if self.discrete else lead + (self.size_max,)
        if tuple(actions_i.shape) != expected:
            raise ValueError(f"actions must have shape {expected}, got {tuple(actions_i.shape)}")

    def _stacked_actors(self) -> StackedActors | None:
        """The stacked view of separate feed-forward actors of one architecture (None if not applicable/off)."""
        if not self.stacked_inference or self.share or self.recurrent:
            return None
        if self._stacked is False:
            same = len(set(self.sizes)) == 1 and same_architecture(list(self.actors))
            self._stacked = StackedActors(list(self.actors)) if same else None
        return self._stacked  # type: ignore[return-value]

    def parameters_unchanged(self) -> contextlib.AbstractContextManager[None]:
        """A block in which the caller promises not to change the actors' parameters (e.g. a rollout, which only
        acts): the stacked view's staleness check (:meth:`StackedActors.unchanged`) runs once on entry instead of
        at every act. A no-op for actors that are not stacked."""
        stacked = self._stacked_actors()
        return stacked.unchanged() if stacked is not None else contextlib.nullcontext()

    def _check_agent_inputs(self, agent: int, obs_i: Tensor, actions_i: Tensor, avail_i: Tensor | None,
                            per_dim: bool) -> tuple[int, Tensor | None]:
        """Checks of the per-agent log-prob calls; returns the agent index and the checked mask."""
        agent = self._agent(agent)
        check_tensor(obs_i, "obs_i", floating=True, ndim_min=1)
        lead = tuple(obs_i.shape[:-1])
        self._check_actions_agent(actions_i, lead)
        avail_i = self._check_avail_i(avail_i, lead)
        if per_dim and self.discrete:
            raise ValueError("per_dim log-probabilities are only defined for continuous actions")
        return agent, avail_i

    def _check_joint_inputs(self, obs: Tensor, actions: Tensor, avail: Tensor | None, per_dim: bool,
                            order: Tensor | None) -> tuple[tuple[int, ...], Tensor | None]:
        """Checks of the all-agent log-prob calls; returns the leading shape and the checked mask."""
        self._check_obs(obs)
        lead = tuple(obs.shape[:-2])
        check_order(order, lead, self.n_agents)
        avail = self._check_avail(avail, lead)
        check_tensor(actions, "actions")
        expected = lead + (self.n_agents,) + (() if self.discrete else (self.size_max,))
        if tuple(actions.shape) != expected:
            raise ValueError(f"actions must have shape {expected}, got {tuple(actions.shape)}")
        if per_dim and self.discrete:
            raise ValueError("per_dim log-probabilities are only defined for continuous actions")
        return lead, avail

    # ------------------------------------------------------------------ one agent
    def distribution_agent(self, agent: int, obs_i: Tensor, avail_i: Tensor | None = None,
                           rnn: RNNInput | None = None):
        """Agent ``agent``'s action distribution given ``obs_i [..., obs_dim]`` and ``avail_i [..., A_max]``.

        Discrete: a :class:`MaskedCategorical` over the agent's own ``n_i`` actions (separate actors) or over
        the padded ``A_max`` actions with the extra ones masked (shared actor). Continuous: a
        :class:`DiagGaussian` over ``d_i`` (separate) or the padded ``d_max`` dimensions (shared).
        Use it e.g. to freeze the old policy for a KL (HATRPO). Recurrent actors need ``rnn`` (class docstring).
        """
        agent = self._agent(agent)
        check_tensor(obs_i, "obs_i", floating=True, ndim_min=1)
        avail_i = self._check_avail_i(avail_i, tuple(obs_i.shape[:-1]))
        return self._dist_agent(agent, obs_i, avail_i, rnn)

    def log_prob_agent(self, agent: int, obs_i: Tensor, actions_i: Tensor, avail_i: Tensor | None = None,
                       per_dim: bool = False, rnn: RNNInput | None = None) -> Tensor:
        """Agent ``agent``'s log-probs: ``obs_i [..., obs_dim]``, ``actions_i [...]`` or ``[..., d_max]``,
        ``avail_i [..., A_max]``. Returns ``[...]`` (or ``[..., d_max]`` with ``per_dim``; padded dims 0).
        Recurrent actors need ``rnn`` (class docstring)."""
        agent, avail_i = self._check_agent_inputs(agent, obs_i, actions_i, avail_i, per_dim)
        dist = self._dist_agent(agent, obs_i, avail_i, rnn)
        return self._log_prob_from(agent, dist, actions_i, per_dim)

    def entropy_agent(self, agent: int, obs_i: Tensor, avail_i: Tensor | None = None,
                      rnn: RNNInput | None = None) -> Tensor:
        agent = self._agent(agent)
        check_tensor(obs_i, "obs_i", floating=True, ndim_min=1)
        avail_i = self._check_avail_i(avail_i, tuple(obs_i.shape[:-1]))
        return self._entropy_from(agent, self._dist_agent(agent, obs_i, avail_i, rnn))

    def log_prob_and_entropy_agent(self, agent: int, obs_i: Tensor, actions_i: Tensor, avail_i: Tensor | None = None,
                                   per_dim: bool = False, rnn: RNNInput | None = None) -> tuple[Tensor, Tensor]:
        """:meth:`log_prob_agent` and :meth:`entropy_agent` from ONE forward pass of agent ``agent``'s actor
        (the PPO loss needs both; two calls would run the network twice)."""
        agent, avail_i = self._check_agent_inputs(agent, obs_i, actions_i, avail_i, per_dim)
        dist = self._dist_agent(agent, obs_i, avail_i, rnn)
        return self._log_prob_from(agent, dist, actions_i, per_dim), self._entropy_from(agent, dist)

    # ------------------------------------------------------------------ all agents
    def _agent_rnn(self, rnn: RNNInput | None, agent: int, batch: int) -> RNNInput | None:
        """Agent ``agent``'s slice ``(h[:, agent], episode_start)`` of an all-agent ``rnn=(h [B, n, H], starts)``."""
        if rnn is None:
            if self.recurrent:
                raise ValueError(f"recurrent actors need rnn=(h [B, n, {self.rnn_hidden}], episode_start [B] or [T, B])")
            return None
        if not self.recurrent:
            raise ValueError("rnn state given to feed-forward actors (built with rnn_hidden=None)")
        if not isinstance(rnn, tuple) or len(rnn) != 2:
            raise TypeError(f"rnn must be a pair (h, episode_start), got {type(rnn).__name__}")
        h, starts = rnn
        check_tensor(h, "h", floating=True)
        if tuple(h.shape) != (batch, self.n_agents, self.rnn_hidden):
            raise ValueError(f"h must have shape {(batch, self.n_agents, self.rnn_hidden)} (B, n_agents, rnn_hidden), "
                             f"got {tuple(h.shape)}")
        return h[:, agent], starts

    def log_prob(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None, per_dim: bool = False,
                 rnn: RNNInput | None = None, *, order: Tensor | None = None) -> Tensor:
        """Per-agent log-probs ``[..., n]`` (``[..., n, d_max]`` with ``per_dim``, padded dims 0).
        Recurrent actors need ``rnn=(h [B, n, H], episode_start)`` (class docstring). ``order``
        (:class:`~seqmarl.algos.core.joint_policy.JointPolicy`) is checked and changes nothing: a product
        policy's conditionals are its marginals."""
        lead, avail = self._check_joint_inputs(obs, actions, avail, per_dim, order)
        if self.share and not self.recurrent and rnn is None:
            dist = self._dist_all(obs, avail)
            if self.discrete:
                return dist.log_prob(actions)
            lp = dist.log_prob(actions, per_dim=True) * self.valid.to(obs.dtype)
            return lp if per_dim else lp.sum(-1)
        batch = obs.shape[-3] if obs.dim() >= 3 else 1
        cols = [
            self.log_prob_agent(i, obs[..., i, :], actions[..., i] if self.discrete else actions[..., i, :],
                                None if avail is None else avail[..., i, :], per_dim=per_dim,
                                rnn=self._agent_rnn(rnn, i, batch))
            for i in range(self.n_agents)
        ]
        return torch.stack(cols, dim=len(lead))

    def entropy(self, obs: Tensor, avail: Tensor | None = None, rnn: RNNInput | None = None, *,
                order: Tensor | None = None, actions: Tensor | None = None) -> Tensor:
        """Per-agent entropies ``[..., n]`` (recurrent actors need ``rnn``, see :meth:`log_prob`). ``order`` and
        ``actions`` (:class:`~seqmarl.algos.core.joint_policy.JointPolicy`) change nothing: the conditional
        entropies of a product policy are its marginal entropies."""
        self._check_obs(obs)
        lead = tuple(obs.shape[:-2])
        check_order(order, lead, self.n_agents)
        avail = self._check_avail(avail, lead)
        if self.share and not self.recurrent and rnn is None:
            dist = self._dist_all(obs, avail)
            if self.discrete:
                return dist.entropy()
            return (dist.entropy(per_dim=True) * self.valid.to(obs.dtype)).sum(-1)
        batch = obs.shape[-3] if obs.dim() >= 3 else 1
        cols = [self.entropy_agent(i, obs[..., i, :], None if avail is None else avail[..., i, :],
                                   rnn=self._agent_rnn(rnn, i, batch))
                for i in range(self.n_agents)]
        return torch.stack(cols, dim=len(lead))

    def log_prob_and_entropy(self, obs: Tensor, actions: Tensor, avail: Tensor | None = None, per_dim: bool = False,
                             rnn: RNNInput | None = None, *, order: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """:meth:`log_prob` and :meth:`entropy` (``[..., n]`` each; log-probs ``[..., n, d_max]`` with ``per_dim``)
        from one forward pass per actor: a shared feed-forward actor runs once on all agents' inputs."""
        lead, avail = self._check_joint_inputs(obs, actions, avail, per_dim, order)
        if self.share and not self.recurrent and rnn is None:
            dist = self._dist_all(obs, avail)
            if self.discrete:
                return dist.log_prob(actions), dist.entropy()
            valid = self.valid.to(obs.dtype)
            lp = dist.log_prob(actions, per_dim=True) * valid
            return (lp if per_dim else lp.sum(-1)), (dist.entropy(per_dim=True) * valid).sum(-1)
        batch = obs.shape[-3] if obs.dim() >= 3 else 1
        pairs = [
            self.log_prob_and_entropy_agent(i, obs[..., i, :], actions[..., i] if self.discrete else actions[..., i, :],
                                            None if avail is None else avail[..., i, :], per_dim=per_dim,
                                            rnn=self._agent_rnn(rnn, i, batch))
            for i in range(self.n_agents)
        ]
        return (torch.stack([lp for lp, _ in pairs], dim=len(lead)),
                torch.stack([ent for _, ent in pairs], dim=len(lead)))

    def sample(self, obs: Tensor, avail: Tensor | None = None, generator: torch.Generator | None = None,
               deterministic: bool = False, rnn: RNNInput | None = None, *, order: Tensor | None = None):
        """Joint sample: ``(actions [..., n] or [..., n, d_max], log_probs [..., n])``.

        Recurrent actors: ``obs [B, n, obs_dim]`` (one step) and ``rnn=(h [B, n, H], episode_start [B])``;
        returns ``(actions, log_probs, h_next [B, n, H])`` where ``h_next`` is the state after this step.
        ``order`` (:class:`~seqmarl.algos.core.joint_policy.JointPolicy`) is checked and changes nothing: the
        agents of a product policy draw independently."""
        self._check_obs(obs)
        lead = tuple(obs.shape[:-2])
        check_order(order, lead, self.n_agents)
        avail = self._check_avail(avail, lead)
        if self.recurrent or rnn is not None:
            if len(lead) != 1:
                raise ValueError(f"recurrent sampling takes one step: obs must be [B, n, obs_dim], got {tuple(obs.shape)}")
            acts, lps, hs = [], [], []
            for i in range(self.n_agents):
                dist, h_i = self._dist_agent_state(i, obs[:, i, :], None if avail is None else avail[:, i, :],
                                                   self._agent_rnn(rnn, i, lead[0]))
                a = dist.mode() if deterministic else dist.sample(generator)
                if not self.discrete:
                    a = a * self.valid[i].to(a.dtype) if self.share else self._pad_actions(a, i)
                lps.append(self._log_prob_from(i, dist, a, per_dim=False))
                acts.append(a)
                hs.append(h_i)
            return torch.stack(acts, dim=1), torch.stack(lps, dim=1), torch.stack(hs, dim=1)
        if self.share:
            dist = self._dist_all(obs, avail)
            a = dist.mode() if deterministic else dist.sample(generator)
            if self.discrete:
                return a, dist.log_prob(a)
            valid = self.valid.to(obs.dtype)
            a = a * valid
            return a, (dist.log_prob(a, per_dim=True) * valid).sum(-1)
        stacked = self._stacked_actors() if not torch.is_grad_enabled() else None
        if stacked is not None:  # every agent in one pass: same distributions as the loop below
            flat = obs.reshape((-1,) + tuple(obs.shape[-2:]))
            out = stacked.head_inputs(flat).reshape(lead + (self.n_agents, -1))
            dist = MaskedCategorical(out, avail) if self.discrete else DiagGaussian(out, stacked.log_std())
            a = dist.mode() if deterministic else dist.sample(generator)
            return a, dist.log_prob(a)
        acts, lps = [], []
        for i in range(self.n_agents):
            dist = self._dist_agent(i, obs[..., i, :], None if avail is None else avail[..., i, :])
            a = dist.mode() if deterministic else dist.sample(generator)
            lps.append(dist.log_prob(a))
            acts.append(self._pad_actions(a, i))
        return torch.stack(acts, dim=len(lead)), torch.stack(lps, dim=len(lead))
