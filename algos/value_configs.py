"""Typed configs of the value-decomposition (off-policy) family: IQL, VDN, QMIX, QPLEX, OW-QMIX, CW-QMIX.

Defaults follow PyMARL (oxwhirl/pymarl ``src/config/default.yaml`` and ``src/config/algs/qmix.yaml``) unless
stated; EPyMARL (uoe-agents/epymarl) and PyMARL2 (hijkzzz/pymarl2) values are given where they differ so a user
can switch. Every field with its source:

    lr: 5e-4 — PyMARL default.yaml ``lr``.
    optimizer: "rmsprop" — PyMARL learners (``RMSprop(alpha=optim_alpha 0.99, eps=optim_eps 1e-5)``);
        "adam" is EPyMARL's / PyMARL2's choice (PyMARL2 uses lr 1e-3 with it).
    optim_alpha, optim_eps: 0.99 / 1e-5 — PyMARL default.yaml.
    gamma: 0.99 — PyMARL default.yaml.
    batch_size: 32 episodes per update — PyMARL default.yaml.
    buffer_size: 5000 episodes — PyMARL default.yaml.
    grad_norm_clip: 10 — PyMARL default.yaml.
    target_update: "hard" every ``target_update_interval`` = 200 episodes — PyMARL qmix.yaml; "soft" is Polyak
        averaging with ``tau`` (EPyMARL ``target_update_interval_or_tau`` < 1, e.g. 0.01).
    double_q: True — PyMARL qmix.yaml.
    epsilon_start / epsilon_finish / epsilon_anneal_steps: 1.0 / 0.05 / 50000 env steps — PyMARL qmix.yaml.
    n_step: 1, td_lambda: 0.0 (one-step targets) — PyMARL; PyMARL2 qmix.yaml uses ``td_lambda: 0.6``.
    use_rnn: True, rnn_hidden: 64 — PyMARL ``agent: rnn``, ``rnn_hidden_dim: 64``.
    obs_last_action, obs_agent_id: True / True — PyMARL default.yaml.
    updates_per_iteration: gradient steps after each collection (1: PyMARL trains once per collected batch).
    mixer: None (IQL), "vdn", "qmix", "qplex"; mixer options: ``mixing_embed_dim`` 32, ``hypernet_layers`` 2,
        ``hypernet_embed`` 64 — PyMARL qmix.yaml; QPLEX: ``qplex_kernels`` 4 etc. (``algos/core/mixers.py``).
    weighting: None, "ow" or "cw" (Weighted QMIX, Rashid et al. 2020, oxwhirl/wqmix ``cw_qmix.yaml``):
        ``w_alpha`` 0.1 the down-weight of the other joint actions (``w``), ``central_mixing_embed_dim`` 256 the
        unrestricted central mixer's width; the central agent is a second utility network like the first.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar


def _real(value: Any, name: str, low: float, high: float = math.inf, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    if value < low or value > high or (low_open and value == low):
        lo = "(" if low_open else "["
        raise ValueError(f"{name} must lie in {lo}{low}, {high}], got {value}")


def _integer(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


@dataclass
class ValueDecompositionConfig:
    """Shared settings of the value-decomposition learners (module docstring for each default's source)."""

    algo_name: ClassVar[str] = ""
    family: ClassVar[str] = "off_policy"

    mixer: str | None = None
    weighting: str | None = None
    lr: float = 5e-4
    optimizer: str = "rmsprop"
    optim_alpha: float = 0.99
    optim_eps: float = 1e-5
    gamma: float = 0.99
    batch_size: int = 32
    buffer_size: int = 5000
    grad_norm_clip: float = 10.0
    target_update: str = "hard"
    target_update_interval: int = 200
    tau: float = 0.01
    double_q: bool = True
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    epsilon_anneal_steps: int = 50_000
    n_step: int = 1
    td_lambda: float = 0.0
    use_rnn: bool = True
    rnn_hidden: int = 64
    obs_last_action: bool = True
    obs_agent_id: bool = True
    updates_per_iteration: int = 1
    mixing_embed_dim: int = 32
    hypernet_layers: int = 2
    hypernet_embed: int = 64
    qmix_weights: str = "abs"
    qplex_kernels: int = 4
    w_alpha: float = 0.1
    central_mixing_embed_dim: int = 256

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad field."""
        if self.mixer not in (None, "vdn", "qmix", "qplex"):
            raise ValueError(f"mixer must be None (IQL), 'vdn', 'qmix' or 'qplex', got {self.mixer!r}")
        if self.weighting not in (None, "ow", "cw"):
            raise ValueError(f"weighting must be None, 'ow' or 'cw' (Weighted QMIX), got {self.weighting!r}")
        if self.weighting is not None and self.mixer != "qmix":
            raise ValueError(f"weighting={self.weighting!r} (Weighted QMIX) needs mixer='qmix', got {self.mixer!r}")
        if self.optimizer not in ("rmsprop", "adam"):
            raise ValueError(f"optimizer must be 'rmsprop' or 'adam', got {self.optimizer!r}")
        if self.target_update not in ("hard", "soft"):
            raise ValueError(f"target_update must be 'hard' or 'soft', got {self.target_update!r}")
        if self.qmix_weights not in ("abs", "none"):
            raise ValueError(f"qmix_weights must be 'abs' (monotone, QMIX) or 'none' (signed: an ablation), "
                             f"got {self.qmix_weights!r}")
        _real(self.lr, "lr", 0.0, low_open=True)
        _real(self.optim_alpha, "optim_alpha", 0.0, 1.0)
        _real(self.optim_eps, "optim_eps", 0.0, low_open=True)
        _real(self.gamma, "gamma", 0.0, 1.0)
        _real(self.grad_norm_clip, "grad_norm_clip", 0.0, low_open=True)
        _real(self.tau, "tau", 0.0, 1.0, low_open=True)
        for name in ("epsilon_start", "epsilon_finish", "td_lambda", "w_alpha"):
            _real(getattr(self, name), name, 0.0, 1.0)
        for name in ("batch_size", "buffer_size", "target_update_interval", "epsilon_anneal_steps", "n_step",
                     "rnn_hidden", "updates_per_iteration", "mixing_embed_dim", "hypernet_layers", "hypernet_embed",
                     "qplex_kernels", "central_mixing_embed_dim"):
            _integer(getattr(self, name), name, 1)
        if self.hypernet_layers not in (1, 2):
            raise ValueError(f"hypernet_layers must be 1 or 2 (PyMARL), got {self.hypernet_layers}")
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size ({self.batch_size}) must be <= buffer_size ({self.buffer_size})")
        if self.n_step > 1 and self.td_lambda > 0:
            raise ValueError("choose n-step targets (n_step > 1) or TD(lambda) targets (td_lambda > 0), not both")
        for name in ("double_q", "use_rnn", "obs_last_action", "obs_agent_id"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")


@dataclass
class IQLConfig(ValueDecompositionConfig):
    """Independent Q-learning (Tan 1993; PyMARL ``iql.yaml``: ``mixer: None``)."""

    algo_name: ClassVar[str] = "iql"
    mixer: str | None = None


@dataclass
class VDNConfig(ValueDecompositionConfig):
    """VDN, ``Q_tot = sum_i Q_i`` (Sunehag et al. 2018; PyMARL ``vdn.yaml``)."""

    algo_name: ClassVar[str] = "vdn"
    mixer: str | None = "vdn"


@dataclass
class QMIXConfig(ValueDecompositionConfig):
    """QMIX, monotone hypernetwork mixer (Rashid et al. 2018; PyMARL ``qmix.yaml``)."""

    algo_name: ClassVar[str] = "qmix"
    mixer: str | None = "qmix"


@dataclass
class QPLEXConfig(ValueDecompositionConfig):
    """QPLEX, duplex dueling mixer (Wang et al. 2021; official repo wjh720/QPLEX ``qplex.yaml``: 3 layers of
    attention hypernetworks, ``num_kernel: 10`` on SMAC — 4 here, PyMARL2 ``qplex.yaml``)."""

    algo_name: ClassVar[str] = "qplex"
    mixer: str | None = "qplex"


@dataclass
class OWQMIXConfig(ValueDecompositionConfig):
    """Optimistically-weighted QMIX (Rashid et al. 2020; oxwhirl/wqmix ``cw_qmix.yaml`` with
    ``hysteretic_qmix: True``, which selects OW in ``max_q_learner.py``; ``w: 0.1``)."""

    algo_name: ClassVar[str] = "ow_qmix"
    mixer: str | None = "qmix"
    weighting: str | None = "ow"
    w_alpha: float = 0.1


@dataclass
class CWQMIXConfig(ValueDecompositionConfig):
    """Centrally-weighted QMIX (Rashid et al. 2020; oxwhirl/wqmix ``cw_qmix.yaml``: ``w: 0.1``, the paper's alpha)."""

    algo_name: ClassVar[str] = "cw_qmix"
    mixer: str | None = "qmix"
    weighting: str | None = "cw"
    w_alpha: float = 0.1


VALUE_CONFIGS: dict[str, type[ValueDecompositionConfig]] = {
    cls.algo_name: cls for cls in (IQLConfig, VDNConfig, QMIXConfig, QPLEXConfig, OWQMIXConfig, CWQMIXConfig)
}
