"""Typed configs of the on-policy family, with the source of every default.

Defaults follow the official HARL yaml files (theory.md §1.3, §1.10, §1.11, §2.3) unless stated.
One dataclass per algorithm; :func:`config_for` maps an algorithm name to its config class.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

ActorUpdate = Literal["joint_clip", "sequential_clip", "sequential_a2c", "sequential_trust_region"]


@dataclass
class OnPolicyConfig:
    """Shared settings of MAPPO/IPPO/HAPPO/HATRPO/HAA2C.

    Attributes (default — source):
        lr: actor Adam step size (5e-4 — HARL mappo/happo.yaml).
        critic_lr: critic Adam step size (5e-4 — HARL).
        gamma, gae_lambda: discount and GAE lambda (0.99 / 0.95 — HARL).
        clip: PPO ratio clip epsilon (0.2 — HARL).
        ppo_epoch: actor epochs per update (5 — HARL).
        critic_epoch: critic epochs per update (5 — HARL).
        actor_num_mini_batch / critic_num_mini_batch: minibatches per epoch (1 — HARL happo.yaml).
        entropy_coef: entropy bonus (0.01 — HARL).
        max_grad_norm: gradient clipping (10 — HARL).
        huber_delta: Huber loss delta of the critic (10 — HARL); ``use_huber`` toggles it.
        value_clip: clip of the value update around old values (0.2 — HARL ``clip_param``); ``use_clipped_value_loss``.
        use_value_norm: normalise value targets with a running normaliser, de-normalised before GAE (True — HARL).
        hidden: MLP hidden sizes (128, 128 — HARL); activation "relu" (HARL).
        share_param: one actor for all agents (MAPPO True, HA* False — HARL).
        agent_id: append a one-hot agent id to the shared actor's input (False; MAPPO paper uses it on SMAC).
        fixed_order: sequential agent order fixed (True) or a fresh random permutation each update (False — HARL).
        simultaneous: for the sequential updates, drop the factor so every agent steps against the OLD joint
            policy at once (the MAPPO/IPPO-style independent step; Fu et al.'s ``--no_factor``). False — HARL.
        granularity: ``agent_outer`` (each agent runs all its epochs before the next — HARL official) or
            ``minibatch_outer`` (for each epoch and minibatch, all agents in order).
        ratio_aggregation: ``prod`` (HARL default) or ``mean`` over continuous action dimensions.
        adv_norm: ``batch`` (normalise advantages over the whole rollout — HARL), ``minibatch`` or ``none``.
        critic: ``centralised`` V(state) (MAPPO/HA*) or ``decentralised`` V_i(obs_i) (IPPO).
        kl_threshold, cg_iters, ls_steps, backtrack_coeff, accept_ratio, fvp_damping: HATRPO step
            (0.01, 10, 10, 0.8, 0.5 — HARL hatrpo.yaml; damping 0.1 — TRPO-in-MARL code; 0 disables).
        use_rnn: recurrent actors and critic, ``MLP -> GRU -> head`` (False). The MAPPO/HARL recurrent policy
            option (``use_recurrent_policy``, one GRU layer, ``recurrent_n = 1``). Hidden states are zeroed at
            episode starts; the update replays the GRU over the WHOLE rollout in time order from the stored
            state at t = 0 (data-chunk length = rollout length), and minibatches are whole environment
            sequences (``*_num_mini_batch <= num_envs``). HARL's chunked minibatches (``data_chunk_length``)
            are not implemented.
        rnn_hidden: GRU hidden size (64; HARL/MAPPO use the MLP width, ``hidden_sizes[-1]``).
    """

    lr: float = 5e-4
    critic_lr: float = 5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    ppo_epoch: int = 5
    critic_epoch: int = 5
    actor_num_mini_batch: int = 1
    critic_num_mini_batch: int = 1
    entropy_coef: float = 0.01
    max_grad_norm: float = 10.0
    use_huber: bool = True
    huber_delta: float = 10.0
    use_clipped_value_loss: bool = True
    value_clip: float = 0.2
    use_value_norm: bool = True
    hidden: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    share_param: bool = False
    agent_id: bool = False
    fixed_order: bool = False
    simultaneous: bool = False
    granularity: str = "agent_outer"
    ratio_aggregation: str = "prod"
    adv_norm: str = "batch"
    critic: str = "centralised"
    actor_update: str = "sequential_clip"
    kl_threshold: float = 0.01
    cg_iters: int = 10
    ls_steps: int = 10
    backtrack_coeff: float = 0.8
    accept_ratio: float = 0.5
    fvp_damping: float = 0.1
    log_std_init: float = 0.0
    use_rnn: bool = False
    rnn_hidden: int = 64

    _CHOICES = {
        "activation": ("relu", "tanh"),
        "granularity": ("agent_outer", "minibatch_outer"),
        "ratio_aggregation": ("prod", "mean"),
        "adv_norm": ("batch", "minibatch", "none"),
        "critic": ("centralised", "decentralised"),
        "actor_update": ("joint_clip", "sequential_clip", "sequential_a2c", "sequential_trust_region"),
    }

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        for name, choices in self._CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        for name in ("lr", "critic_lr", "clip", "max_grad_norm", "huber_delta", "value_clip", "kl_threshold",
                     "backtrack_coeff", "accept_ratio"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma must lie in [0, 1], got {self.gamma}")
        if not 0 <= self.gae_lambda <= 1:
            raise ValueError(f"gae_lambda must lie in [0, 1], got {self.gae_lambda}")
        if self.clip >= 1:
            raise ValueError(f"clip must lie in (0, 1), got {self.clip}")
        if self.backtrack_coeff >= 1:
            raise ValueError(f"backtrack_coeff must lie in (0, 1), got {self.backtrack_coeff}")
        for name in ("ppo_epoch", "critic_epoch", "actor_num_mini_batch", "critic_num_mini_batch", "cg_iters", "ls_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.entropy_coef < 0:
            raise ValueError(f"entropy_coef must be >= 0, got {self.entropy_coef}")
        if self.fvp_damping < 0:
            raise ValueError(f"fvp_damping must be >= 0, got {self.fvp_damping}")
        if any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden must hold positive layer sizes, got {self.hidden}")
        if not isinstance(self.use_rnn, bool):
            raise TypeError(f"use_rnn must be a bool, got {type(self.use_rnn).__name__}")
        if isinstance(self.rnn_hidden, bool) or not isinstance(self.rnn_hidden, int) or self.rnn_hidden < 1:
            raise ValueError(f"rnn_hidden must be a positive integer, got {self.rnn_hidden!r}")
        if self.agent_id and not self.share_param:
            raise ValueError("agent_id=True needs share_param=True (separate actors already know their agent)")
        if self.actor_update.startswith("sequential") and self.share_param:
            raise ValueError(
                f"actor_update={self.actor_update!r} updates agents one after another and needs share_param=False"
            )

    @property
    def sequential(self) -> bool:
        return self.actor_update.startswith("sequential")


@dataclass
class MAPPOConfig(OnPolicyConfig):
    """MAPPO (Yu et al.; HARL mappo.yaml): shared actor, centralised critic, joint clipped update."""

    share_param: bool = True
    actor_update: str = "joint_clip"


@dataclass
class IPPOConfig(OnPolicyConfig):
    """IPPO (de Witt et al.): joint clipped update with decentralised critics V_i(o_i)."""

    share_param: bool = True
    actor_update: str = "joint_clip"
    critic: str = "decentralised"


@dataclass
class HAPPOConfig(OnPolicyConfig):
    """HAPPO (ICLR22 eq. 11; HARL happo.yaml): separate actors, random order, factor M, clipped."""

    actor_update: str = "sequential_clip"


@dataclass
class HATRPOConfig(OnPolicyConfig):
    """HATRPO (ICLR22 eq. 7-8; HARL hatrpo.yaml): per-agent natural step with KL threshold and line search.

    ``ppo_epoch``/``entropy_coef`` are unused by the trust-region step."""

    actor_update: str = "sequential_trust_region"
    entropy_coef: float = 0.0


@dataclass
class HAA2CConfig(OnPolicyConfig):
    """HAA2C (HARL actors/haa2c.py): HAPPO's factor without clipping; ``ppo_epoch`` plays ``a2c_epoch`` (5)."""

    actor_update: str = "sequential_a2c"


CONFIGS: dict[str, type[OnPolicyConfig]] = {
    "mappo": MAPPOConfig,
    "ippo": IPPOConfig,
    "happo": HAPPOConfig,
    "hatrpo": HATRPOConfig,
    "haa2c": HAA2CConfig,
}


def config_for(algo: str) -> type[OnPolicyConfig]:
    """The config class of ``algo``; unknown names raise with the known ones."""
    if algo not in CONFIGS:
        raise ValueError(f"unknown algo {algo!r}; known algorithms: {sorted(CONFIGS)}")
    return CONFIGS[algo]


def field_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if not f.name.startswith("_")]
