"""Typed configs of the on-policy family, with the source of every default.

Defaults follow the official HARL yaml files (theory.md §1.3, §1.10, §1.11, §2.3) unless stated. Five
HARL choices are options whose default here differs (``layer_norm``, ``feature_norm``, ``std_param``,
``value_norm_update``, ``rnn_hidden``); ``OnPolicyConfig.from_preset("harl")`` / ``seqmarl train preset=harl``
gives HARL's values for every field (:data:`HARL_PRESETS`). docs/harl_differences.md lists every remaining
difference from HARL and why.
One dataclass per algorithm; :func:`config_for` maps an algorithm name to its config class.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

ActorUpdate = Literal["joint_clip", "joint_ratio_clip", "sequential_clip", "sequential_a2c", "sequential_trust_region"]
StdParam = Literal["exp", "harl"]
ValueNormUpdate = Literal["per_iteration", "per_minibatch"]


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
            (0.01, 10, 10, 0.8, 0.5 — HARL hatrpo.yaml ``kl_threshold``/``ls_step``/``backtrack_coeff``/
            ``accept_ratio``; cg_iters 10 — harl/algorithms/actors/hatrpo.py ``nsteps=10``; damping 0.1 —
            harl/utils/trpo_util.py fisher_vector_product; 0 disables).
        use_rnn: recurrent actors and critic, ``MLP -> GRU -> head`` (False). The MAPPO/HARL recurrent policy
            option (``use_recurrent_policy``, one GRU layer, ``recurrent_n = 1``). Hidden states are zeroed at
            episode starts; the update replays the GRU over the WHOLE rollout in time order from the stored
            state at t = 0 (data-chunk length = rollout length), and minibatches are whole environment
            sequences (``*_num_mini_batch <= num_envs``). HARL's chunked minibatches (``data_chunk_length``)
            are not implemented.
        rnn_hidden: GRU hidden size (64; HARL/MAPPO use the MLP width, ``hidden_sizes[-1]``).
        layer_norm: ``LayerNorm`` after every hidden layer (``Linear -> act -> LayerNorm``) of actors and critics,
            and after the GRU when ``use_rnn`` (False; HARL: always on — ``harl/models/base/mlp.py`` MLPLayer,
            ``harl/models/base/rnn.py`` RNNLayer.norm). Off here because the tabular games give 1-dimensional
            constant observations and every oracle test and validation table was calibrated without it;
            ``preset=harl`` turns it on.
        feature_norm: ``LayerNorm`` on the network input (False; HARL ``use_feature_normalization: True`` —
            ``harl/configs/algos_cfgs/happo.yaml`` model, ``harl/models/base/mlp.py`` MLPBase.feature_norm). On a
            1-dimensional observation (every matrix game here) it maps every input to the same vector.
        std_param: Gaussian std parametrisation. ``exp``: ``std = exp(p)``, ``p`` initialised to ``log_std_init``
            (std 1, unbounded; the MAPPO/PPO convention). ``harl``: ``std = sigmoid(p / std_x_coef) * std_y_coef``
            with ``p`` initialised to ``std_x_coef`` (``harl/models/base/distributions.py`` DiagGaussian): starts
            at ``sigmoid(1) * 0.5 = 0.3655`` and stays in ``(0, std_y_coef)``; ``log_std_init`` is then unused.
        std_x_coef, std_y_coef: the ``harl`` parametrisation's coefficients (1.0 / 0.5 — HARL happo.yaml model).
        value_norm_update: when the value normaliser folds in returns. ``per_iteration``: once per update on the
            whole rollout, before the critic epochs (default here: one statistic per rollout, independent of the
            minibatch count). ``per_minibatch``: before every critic minibatch of every epoch, on that
            minibatch's returns (HARL ``harl/algorithms/critics/v_critic.py`` cal_value_loss).
        linear_lr_decay: actor and critic step sizes decay linearly: iteration ``k`` of ``K`` (0-based) uses
            ``lr * (1 - k / K)`` (False — HARL ``use_linear_lr_decay: False``; schedule of
            ``harl/utils/models_tools.py`` update_linear_schedule called with ``episode = k + 1``). ``K`` is the
            trainer's number of updates.
        gain: orthogonal-init gain of the policy output layer (0.01 — HARL happo.yaml model ``gain``).
        opti_eps, weight_decay: Adam ``eps`` and ``weight_decay`` of every optimiser (1e-5 / 0 — HARL
            ``opti_eps``/``weight_decay``).
        value_loss_coef: multiplier of the critic loss (1 — HARL ``value_loss_coef``; the critic has its own
            optimiser, so with Adam it only matters through ``max_grad_norm`` and ``opti_eps``).
        policy: ``product`` (one actor per agent or one shared actor, agents independent given their observations)
            or ``autoregressive`` (AR-MAPPO, Fu et al. ICML22: ONE shared network, agent k conditioned on the
            actions of the agents before it; :class:`~seqmarl.algos.core.ar_policy.AutoRegressiveActor`; discrete or
            continuous actions (Gaussian head: ``std_param``, ``log_std_init`` apply), ``share_param=True``, ``actor_update=joint_ratio_clip``, centralised critic, no RNN).
        ar_order: execution order of an auto-regressive policy: ``fixed`` (0..n-1) or ``random`` (a fresh uniform
            permutation per sample, stored with the sample so the update teacher-forces the same order).
        ar_condition: an auto-regressive policy sees the earlier agents' actions (True); False zeros the attention
            output, i.e. the same network with the previous actions hidden (the ablation).
        ar_token_id: the tokens of the earlier agents carry their one-hot id (True, default) or the action alone
            (False: Fu-code, whose tokens have no ally id — bridge.yaml ``use_ally_id: False``; with a swap-symmetric
            observation, e.g. ``bridge`` with ``symmetric=True``, a shared AR policy is then swap-symmetric too).
        ar_entropy: the entropy bonus of an auto-regressive policy (``joint_ratio_clip``): ``conditional`` (default:
            ``sum_k H(pi^{i_k}(. | o, a^{i_<k}))`` at the taken earlier actions, the joint policy's entropy along the
            sample) or ``counterfactual`` (Fu-code ``algorithm/trainers/ar_mappo.py``: ``sum_i H(pi^i(. | o^i, 0))``,
            every agent's distribution with the earlier actions zeroed, i.e. as if it acted first — it keeps the
            first mover's choice of mode stochastic while the later agents' conditionals may become deterministic).
        actor_update: ``joint_clip`` (MAPPO/IPPO), ``sequential_clip``/``sequential_a2c``/``sequential_trust_region``
            (HAPPO/HAA2C/HATRPO) or ``joint_ratio_clip``: PPO clip on the JOINT ratio ``prod_i r^i = exp(sum_i
            (log pi^i - log pi^i_old))`` (conditionals for an AR policy) against the centralised GAE advantage, with
            an entropy bonus on the sum of the (conditional) entropies (AR-MAPPO; any joint policy, e.g. MAPPO's
            product actors). See :mod:`seqmarl.algos.actor_updates`.
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
    # HARL-fidelity options (docs/harl_differences.md); defaults and sources in the class docstring.
    layer_norm: bool = False  # HARL: harl/models/base/mlp.py MLPLayer (always on)
    feature_norm: bool = False  # HARL: harl/configs/algos_cfgs/happo.yaml model.use_feature_normalization = True
    std_param: StdParam = "exp"  # HARL: "harl" (harl/models/base/distributions.py DiagGaussian)
    std_x_coef: float = 1.0  # HARL: happo.yaml model.std_x_coef
    std_y_coef: float = 0.5  # HARL: happo.yaml model.std_y_coef
    value_norm_update: ValueNormUpdate = "per_iteration"  # HARL: "per_minibatch" (harl/algorithms/critics/v_critic.py)
    linear_lr_decay: bool = False  # HARL: happo.yaml train.use_linear_lr_decay = False
    gain: float = 0.01  # HARL: happo.yaml model.gain
    opti_eps: float = 1e-5  # HARL: happo.yaml model.opti_eps
    weight_decay: float = 0.0  # HARL: happo.yaml model.weight_decay
    value_loss_coef: float = 1.0  # HARL: happo.yaml algo.value_loss_coef
    # Joint-policy options (AR-MAPPO); docs in the class docstring.
    policy: str = "product"
    ar_order: str = "fixed"
    ar_condition: bool = True
    ar_token_id: bool = True  # Fu-code: False (bridge.yaml use_ally_id False)
    ar_entropy: str = "conditional"  # Fu-code: "counterfactual" (algorithm/trainers/ar_mappo.py)

    algo_name: ClassVar[str] = ""

    _CHOICES = {
        "activation": ("relu", "tanh"),
        "granularity": ("agent_outer", "minibatch_outer"),
        "ratio_aggregation": ("prod", "mean"),
        "adv_norm": ("batch", "minibatch", "none"),
        "critic": ("centralised", "decentralised"),
        "actor_update": ("joint_clip", "joint_ratio_clip", "sequential_clip", "sequential_a2c",
                         "sequential_trust_region"),
        "std_param": ("exp", "harl"),
        "value_norm_update": ("per_iteration", "per_minibatch"),
        "policy": ("product", "autoregressive"),
        "ar_order": ("fixed", "random"),
        "ar_entropy": ("conditional", "counterfactual"),
    }
    _BOOLS = ("use_huber", "use_clipped_value_loss", "use_value_norm", "share_param", "agent_id", "fixed_order",
              "simultaneous", "use_rnn", "layer_norm", "feature_norm", "linear_lr_decay", "ar_condition",
              "ar_token_id")

    def __post_init__(self) -> None:
        self.validate()

    _INTS = ("ppo_epoch", "critic_epoch", "actor_num_mini_batch", "critic_num_mini_batch", "cg_iters", "ls_steps")
    _FLOATS = ("lr", "critic_lr", "gamma", "gae_lambda", "clip", "entropy_coef", "max_grad_norm", "huber_delta",
               "value_clip", "kl_threshold", "backtrack_coeff", "accept_ratio", "fvp_damping", "log_std_init",
               "std_x_coef", "std_y_coef", "gain", "opti_eps", "weight_decay", "value_loss_coef")

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad field."""
        for name in self._INTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
        for name in self._FLOATS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        hidden = self.hidden
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (tuple, list)) or any(
                isinstance(h, bool) or not isinstance(h, numbers.Integral) for h in hidden):
            raise TypeError(f"hidden must be a tuple of layer sizes such as (64, 64), got {hidden!r}")
        self.hidden = tuple(int(h) for h in hidden)
        for name in ("activation", "granularity", "ratio_aggregation", "adv_norm", "critic", "actor_update",
                     "std_param", "value_norm_update", "policy", "ar_order", "ar_entropy"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {getattr(self, name)!r}")
        for name, choices in self._CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        for name in self._BOOLS:
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {type(getattr(self, name)).__name__}")
        for name in ("lr", "critic_lr", "clip", "max_grad_norm", "huber_delta", "value_clip", "kl_threshold",
                     "backtrack_coeff", "accept_ratio", "std_x_coef", "std_y_coef", "gain", "opti_eps",
                     "value_loss_coef"):
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
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.std_param == "harl" and self.log_std_init != 0.0:
            raise ValueError("log_std_init is the initial log-std of std_param='exp'; with std_param='harl' the "
                             "parameter starts at std_x_coef (std = sigmoid(1) * std_y_coef)")
        if self.std_param == "exp" and (self.std_x_coef, self.std_y_coef) != (1.0, 0.5):
            raise ValueError("std_x_coef/std_y_coef belong to std_param='harl'; set algo.std_param=harl to use them")
        if any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden must hold positive layer sizes, got {self.hidden}")
        if isinstance(self.rnn_hidden, bool) or not isinstance(self.rnn_hidden, int) or self.rnn_hidden < 1:
            raise ValueError(f"rnn_hidden must be a positive integer, got {self.rnn_hidden!r}")
        if self.agent_id and not self.share_param:
            raise ValueError("agent_id=True needs share_param=True (separate actors already know their agent)")
        if self.actor_update.startswith("sequential") and self.share_param:
            raise ValueError(
                f"actor_update={self.actor_update!r} updates agents one after another and needs share_param=False"
            )
        if self.actor_update == "joint_ratio_clip":
            if self.critic != "centralised":
                raise ValueError("actor_update='joint_ratio_clip' clips the joint ratio against ONE advantage per "
                                 "sample: it needs critic='centralised'")
            if self.use_rnn:
                raise ValueError("actor_update='joint_ratio_clip' is implemented for feed-forward actors only "
                                 "(use_rnn=False)")
        if self.policy == "autoregressive":
            if not self.share_param:
                raise ValueError("policy='autoregressive' is ONE shared network conditioned on the earlier agents' "
                                 "actions: it needs share_param=True")
            if self.actor_update != "joint_ratio_clip":
                raise ValueError(f"policy='autoregressive' is trained by the joint ratio of its conditionals: it needs "
                                 f"actor_update='joint_ratio_clip', got {self.actor_update!r}")
        if self.ar_entropy != "conditional" and self.policy != "autoregressive":
            raise ValueError(f"ar_entropy={self.ar_entropy!r} is the entropy bonus of an auto-regressive policy (AR-MAPPO): "
                             f"it needs policy='autoregressive', got policy={self.policy!r}")

    @property
    def sequential(self) -> bool:
        return self.actor_update.startswith("sequential")

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> "OnPolicyConfig":
        """This algorithm's config under ``preset`` (see :func:`preset_values`), then ``overrides`` on top."""
        if not cls.algo_name:
            raise ValueError("from_preset needs an algorithm's config class (MAPPOConfig, HAPPOConfig, ...)")
        return cls(**{**preset_values(cls.algo_name, preset), **overrides})


@dataclass
class MAPPOConfig(OnPolicyConfig):
    """MAPPO (Yu et al.; HARL mappo.yaml): shared actor, centralised critic, joint clipped update."""

    algo_name: ClassVar[str] = "mappo"

    share_param: bool = True
    actor_update: str = "joint_clip"


@dataclass
class IPPOConfig(OnPolicyConfig):
    """IPPO (de Witt et al.): joint clipped update with decentralised critics V_i(o_i)."""

    algo_name: ClassVar[str] = "ippo"

    share_param: bool = True
    actor_update: str = "joint_clip"
    critic: str = "decentralised"


@dataclass
class HAPPOConfig(OnPolicyConfig):
    """HAPPO (ICLR22 eq. 11; HARL happo.yaml): separate actors, random order, factor M, clipped."""

    algo_name: ClassVar[str] = "happo"

    actor_update: str = "sequential_clip"


@dataclass
class HATRPOConfig(OnPolicyConfig):
    """HATRPO (ICLR22 eq. 7-8; HARL hatrpo.yaml): per-agent natural step with KL threshold and line search.

    ``ppo_epoch``/``entropy_coef`` are unused by the trust-region step."""

    algo_name: ClassVar[str] = "hatrpo"

    actor_update: str = "sequential_trust_region"
    entropy_coef: float = 0.0


@dataclass
class HAA2CConfig(OnPolicyConfig):
    """HAA2C (HARL actors/haa2c.py): HAPPO's factor without clipping; ``ppo_epoch`` plays ``a2c_epoch`` (5)."""

    algo_name: ClassVar[str] = "haa2c"

    actor_update: str = "sequential_a2c"


@dataclass
class ARMAPPOConfig(OnPolicyConfig):
    """AR-MAPPO (Fu et al., ICML22 "Revisiting some common practices in cooperative MARL", §4): ONE shared
    auto-regressive actor (agent k conditioned on the actions of the agents before it, attention over their
    (action, id) embeddings; :class:`~seqmarl.algos.core.ar_policy.AutoRegressiveActor`), a centralised critic,
    PPO clip on the JOINT ratio ``prod_k r^k`` and an entropy bonus on the sum of the conditional entropies.

    Defaults and sources ("Fu-code" = garrett4wade/revisiting_marl, the paper's code): ``hidden`` (64, 64) —
    Fu-code configs/bridge.yaml ``policy.args.hidden_dim: 64``, ``num_dense_layers: 2``; ``ppo_epoch`` 5 —
    bridge.yaml ``base.ppo_epoch``; ``lr``/``critic_lr`` 5e-4, ``opti_eps`` 1e-5, ``weight_decay`` 0, ``clip`` 0.2,
    ``actor_num_mini_batch`` 1 (``num_mini_batch``), ``entropy_coef`` 0.01, ``value_loss_coef`` 1,
    ``max_grad_norm`` 10, ``gamma`` 0.99, ``gae_lambda`` 0.95, ``use_huber``/``huber_delta`` 10,
    ``use_clipped_value_loss`` — Fu-code configs/config.py; ``use_value_norm`` — bridge_ar.py ``popart=True``;
    ``agent_id`` False — bridge.yaml ``use_agent_id: False``. Differences from Fu-code: ``ar_order`` defaults to
    ``fixed`` and the update uses the order the sample was drawn in (Fu-code samples in the fixed order and, with
    bridge.yaml's ``random_order: True``, teacher-forces a fresh random order in the update); the entropy bonus
    is by default on the conditional entropies of the taken actions (Fu-code: the entropy of the unconditioned
    "counterfactual" distribution, all previous actions zeroed — ``ar_entropy="counterfactual"``); the clip is on the full joint ratio (Fu-code
    ``algorithm/trainers/ar_mappo.py``: agent k's ratio is the product over the agents up to k, clipped per
    agent); LayerNorm/feature norm off (Fu-code bridge_ar.py: on), as for every algorithm here.
    """

    algo_name: ClassVar[str] = "ar_mappo"

    share_param: bool = True
    actor_update: str = "joint_ratio_clip"
    policy: str = "autoregressive"
    hidden: tuple[int, ...] = (64, 64)


@dataclass
class TADPPOConfig(OnPolicyConfig):
    """TAD-PPO (Ye et al., arXiv 2207.11143, "Towards Global Optimality in Cooperative MARL with the Transformation
    And Distillation Framework"; T-PPO of its v1; theory.md §6.1; docs/tad_ppo.md): single-agent PPO on the
    transformed sequential MDP ``M~`` (agent k acts seeing the observation and the actions of agents 0..k-1;
    reward and discount ``gamma`` on the last sub-step only) and distillation of that teacher into decentralised
    students ``pi^i(a^i | o^i)``.

    The teacher is the auto-regressive actor of AR-MAPPO (:class:`~seqmarl.algos.core.ar_policy.AutoRegressiveActor`,
    fixed order 0..n-1); the critic is the sub-step value ``V~(s, a^{<k})``
    (:class:`~seqmarl.algos.core.tad.SubstepCritic`); the update ``actor_update="tad_substep_clip"`` clips every
    sub-step's own conditional ratio against its own sub-step GAE advantage (:func:`~seqmarl.algos.core.tad.substep_gae`),
    i.e. PPO on ``M~`` with each (step, sub-step) one sample; the entropy bonus is the mean of the conditional
    entropies over the sub-steps. The students are :class:`~seqmarl.algos.core.networks.MultiAgentActors` (one
    network per agent, the agent's own observation only) trained after every update by behaviour cloning on the
    rollout (:func:`~seqmarl.algos.core.tad.distillation_loss`).

    TAD-specific attributes (default — source):
        substep_lambda: GAE lambda of the n-1 intra-step transitions (0.95 — chosen here equal to ``gae_lambda``,
            so every transition of ``M~`` gets the same lambda: exactly the GAE of single-agent PPO run on
            ``M~``; 1.0 makes the first sub-step's advantage the joint GAE advantage).
        distill_epochs: full-batch student epochs after every PPO update (30 — chosen here, measured: one-hot
            targets need logit gaps of ~9 for the students' product to lose < 1e-2 of J on climbing; seed 0 ended
            0.011 below the teacher with 10 epochs, 0.0015 with 30; 0 disables distillation, the students then keep
            their initial policy).
        distill_lr: the students' Adam step size (3e-2 — chosen here, measured on climbing seed 0: 1e-2 too slow,
            6e-2 oscillates).
        distill_loss: ``greedy`` (default — theory.md §6.1's MMDP distillation: cross-entropy to the teacher's
            greedy joint action, so the students' product is that deterministic joint action), ``soft`` (KL to the
            teacher's conditionals given the sampled earlier actions — the "KL-based behavior cloning" of Ye et al.;
            it matches the teacher's MARGINALS, which loses the correlation of a teacher that mixes several optimal
            joint actions: measured on penalty(-100) seed 1, a teacher at J 9.99 with 95%/5% on (a,a)/(c,c) gave
            students at J -1.97) or ``hard`` (cross-entropy on the sampled actions; marginals as well).
        distill_keep: the greedy target's hysteresis ``rho`` (0.5 — chosen here): a student keeps its current
            action while the teacher plays it with at least ``rho`` times its mode's probability
            (:func:`~seqmarl.algos.core.tad.greedy_targets`); 1 is the plain argmax. Measured on penalty(-100)
            seed 2 (teacher 49%/51% on (a,a)/(c,c)): plain argmax targets gave students at J -41, ``rho = 0.5`` at
            J ~10.
        tad_execute: which policy EXECUTES: ``student`` (the decentralised students; evaluation returns and
            ``seqmarl validate`` use them — exact J and Nash gap of the product policy) or ``teacher`` (the
            auto-regressive teacher; validate reads its exact joint table). Rollouts for training are always
            drawn from the teacher (PPO on ``M~`` is on-policy).

    Other defaults: AR-MAPPO's (``ARMAPPOConfig``: hidden (64, 64), HARL/Fu-code PPO values), except
    ``agent_id`` True (chosen here: the state ``(s, a^{<k})`` of ``M~`` includes the position k, so the teacher
    is told whose turn it is) and ``ppo_epoch`` 15 (chosen here, measured: each sub-step ratio is clipped on its
    own, and with HARL's 5 epochs the conditionals of rarely visited prefixes do not reach their clip boundary
    before the first agent leaves them — climbing ended at (a,a) in 2-6 of 10 seeds with 5 epochs, 10/10 with
    15; docs/tad_ppo.md). Ye et al.'s own hyper-parameters were not available to this implementation. ``ar_condition=False`` hides the earlier actions from the teacher (the ablation).
    Discrete or continuous actions (continuous: a Gaussian teacher and Gaussian students; ``std_param``/
    ``log_std_init`` apply to both; ``distill_loss`` is a closed-form per-sample Gaussian KL / NLL — see
    :func:`~seqmarl.algos.core.tad.distillation_loss` — and ``distill_keep`` must stay at its default); feed-forward
    only (``use_rnn=False``); fixed order only (``ar_order="fixed"``; TAD
    uses one fixed order).
    """

    algo_name: ClassVar[str] = "tad_ppo"

    share_param: bool = True
    actor_update: str = "tad_substep_clip"
    policy: str = "tad"
    hidden: tuple[int, ...] = (64, 64)
    agent_id: bool = True
    ppo_epoch: int = 15
    substep_lambda: float = 0.95
    distill_epochs: int = 30
    distill_lr: float = 3e-2
    distill_loss: str = "greedy"
    distill_keep: float = 0.5
    tad_execute: str = "student"

    _CHOICES = {**OnPolicyConfig._CHOICES,
                "actor_update": OnPolicyConfig._CHOICES["actor_update"] + ("tad_substep_clip",),
                "policy": OnPolicyConfig._CHOICES["policy"] + ("tad",),
                "distill_loss": ("greedy", "soft", "hard"), "tad_execute": ("student", "teacher")}

    def validate(self) -> None:
        super().validate()
        for name in ("substep_lambda", "distill_lr", "distill_keep"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise TypeError(f"{name} must be a finite real number, got {value!r}")
        if not 0 <= self.substep_lambda <= 1:
            raise ValueError(f"substep_lambda must lie in [0, 1], got {self.substep_lambda}")
        if not 0 < self.distill_keep <= 1:
            raise ValueError(f"distill_keep must lie in (0, 1], got {self.distill_keep}")
        if not self.distill_lr > 0:
            raise ValueError(f"distill_lr must be > 0, got {self.distill_lr}")
        if isinstance(self.distill_epochs, bool) or not isinstance(self.distill_epochs, numbers.Integral) \
                or self.distill_epochs < 0:
            raise ValueError(f"distill_epochs must be an integer >= 0, got {self.distill_epochs!r}")
        if self.policy != "tad" or self.actor_update != "tad_substep_clip":
            raise ValueError(f"tad_ppo needs policy='tad' and actor_update='tad_substep_clip' (PPO on the "
                             f"transformed MDP), got policy={self.policy!r}, actor_update={self.actor_update!r}")
        if not self.share_param:
            raise ValueError("tad_ppo's teacher is ONE auto-regressive network: it needs share_param=True (the "
                             "students are separate networks regardless)")
        if self.critic != "centralised":
            raise ValueError("tad_ppo's sub-step critic V~(s, a^{<k}) is centralised: it needs critic='centralised'")
        if self.use_rnn:
            raise ValueError("tad_ppo is implemented for feed-forward networks only (use_rnn=False)")
        if self.ar_order != "fixed":
            raise ValueError("tad_ppo transforms the game with ONE fixed order (Ye et al.): it needs ar_order='fixed'")


@dataclass
class MATConfig(OnPolicyConfig):
    """MAT (Wen et al., NeurIPS22 "Multi-Agent Reinforcement Learning is a Sequence Modeling Problem"): an encoder
    over all agents' observations with a per-agent value head and a causal decoder that emits the actions agent
    after agent (:class:`~seqmarl.algos.core.mat_policy.MultiAgentTransformer`; docs/mat.md), trained by ONE Adam
    optimiser on one combined loss (``actor_update="mat_clip"``, :func:`seqmarl.algos.actor_updates._mat_clip`):
    per-agent PPO clip of each agent's own conditional ratio against its (joint, per-agent-baseline) GAE
    advantage, minus ``entropy_coef`` times the entropy, plus ``value_loss_coef`` times the clipped Huber value
    loss with value normalisation.

    MAT attributes: ``n_block`` (encoder and decoder blocks), ``n_embd`` (width), ``n_head`` (attention heads),
    ``mat_condition`` (True; False zeroes every decoder input token: the same network with the previous actions
    hidden — the ablation), ``mat_token_id`` (True: a decoder token carries the one-hot id of the agent that took
    its action; False: start bit and action only, as the official MAT — with ``agent_id=False`` the weights then
    fit any number of agents, :func:`seqmarl.algos.mat_transfer.load_for_agents`; needs ``ar_order="fixed"``).
    ``ar_order``: ``fixed`` (0..n-1, the official MAT) or ``random`` (a fresh permutation
    per sample, stored with the sample; needs ``agent_id=True`` so the agent acting at a position is known).
    ``critic="encoder"``: the values are the encoder's per-agent ``V_i`` (per-agent GAE, as the official buffer).
    Unused: ``hidden``, ``critic_lr``, ``critic_epoch``, ``critic_num_mini_batch`` (one network, one optimiser).

    Defaults and sources ("MAT-code" = PKU-MARL/Multi-Agent-Transformer, commit be3ff49; "config" =
    ``mat/config.py`` argument): ``lr`` 5e-4 (config ``--lr``), ``opti_eps`` 1e-5 (``--opti_eps``),
    ``weight_decay`` 0 (``--weight_decay``), ``ppo_epoch`` 15 (``--ppo_epoch``; also ``mat/scripts/train_smac.sh``;
    ``train_mujoco.sh`` uses 10), ``clip`` 0.2 (``--clip_param``; both train scripts use 0.05), ``value_clip`` 0.2
    (``mat/algorithms/mat/mat_trainer.py`` cal_value_loss clips the values with ``clip_param``),
    ``actor_num_mini_batch`` 1 (``--num_mini_batch``; ``train_mujoco.sh`` 40), ``entropy_coef`` 0.01
    (``--entropy_coef``; ``train_mujoco.sh`` 0.001), ``value_loss_coef`` 1 (``--value_loss_coef``),
    ``max_grad_norm`` 10 (``--max_grad_norm``; ``train_mujoco.sh`` 0.5), ``gamma`` 0.99 / ``gae_lambda`` 0.95
    (``--gamma``/``--gae_lambda``), ``use_huber``/``huber_delta`` True/10 (``--use_huber_loss``/``--huber_delta``),
    ``use_clipped_value_loss`` True (``--use_clipped_value_loss``), ``use_value_norm`` True (``--use_valuenorm``),
    ``value_norm_update`` ``per_minibatch`` (mat_trainer.py cal_value_loss updates the normaliser on every
    minibatch), ``adv_norm`` ``batch`` (mat_trainer.py train: mean/std over the whole buffer),
    ``linear_lr_decay`` False (``--use_linear_lr_decay``), ``n_block`` 1 / ``n_embd`` 64 / ``n_head`` 1
    (``--n_block``/``--n_embd``/``--n_head``), ``gain`` 0.01 (``mat/algorithms/mat/algorithm/ma_transformer.py``
    ``init_`` default gain of the output layers), ``agent_id`` False (ma_transformer.py: the agent-id embedding is
    commented out), ``ar_order`` ``fixed`` (ma_transformer.py decodes agents 0..n-1).

    Differences from MAT-code: ``feature_norm`` False (MAT-code: a LayerNorm on the observation, always; off here
    because the matrix games' 1-dimensional observation maps every input to one vector under it); the Gaussian
    std is ``exp(p)`` with ``p`` from ``log_std_init`` 0 (MAT-code ``sigmoid(p) * 0.5`` with ``p`` starting at 1:
    ``std_param="harl"`` gives exactly that); a continuous agent's ratio is the product over its action
    dimensions (MAT-code clips each dimension's ratio and sums the clipped terms); decoder tokens also carry the
    id of the agent that took the action and a random order is an option (see the module docstring of
    :mod:`seqmarl.algos.core.mat_policy`); no RNN. Active masks (agents dead when they acted, e.g. SMAX) apply to
    the policy, entropy and value terms as in MAT-code's ``use_policy_active_masks``/``use_value_active_masks``.
    """

    algo_name: ClassVar[str] = "mat"

    lr: float = 5e-4
    ppo_epoch: int = 15
    share_param: bool = True
    actor_update: str = "mat_clip"
    policy: str = "mat"
    critic: str = "encoder"
    value_norm_update: ValueNormUpdate = "per_minibatch"
    n_block: int = 1
    n_embd: int = 64
    n_head: int = 1
    mat_condition: bool = True
    mat_token_id: bool = True

    _CHOICES = {**OnPolicyConfig._CHOICES,
                "actor_update": OnPolicyConfig._CHOICES["actor_update"] + ("mat_clip",),
                "policy": OnPolicyConfig._CHOICES["policy"] + ("mat", "mat_dec"),
                "critic": OnPolicyConfig._CHOICES["critic"] + ("encoder",)}
    _POLICY: ClassVar[str] = "mat"

    def validate(self) -> None:
        super().validate()
        for name in ("n_block", "n_embd", "n_head"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd must be divisible by n_head (one slice per head), got n_embd={self.n_embd}, "
                             f"n_head={self.n_head}")
        if not isinstance(self.mat_condition, bool):
            raise TypeError(f"mat_condition must be a bool, got {type(self.mat_condition).__name__}")
        if not isinstance(self.mat_token_id, bool):
            raise TypeError(f"mat_token_id must be a bool, got {type(self.mat_token_id).__name__}")
        if self.policy == "mat" and not self.mat_token_id and self.ar_order != "fixed":
            raise ValueError("mat with mat_token_id=False needs ar_order='fixed': with a random order only the token "
                             "ids tell the decoder which agent took each earlier action")
        if self.policy != self._POLICY or self.actor_update != "mat_clip" or self.critic != "encoder":
            raise ValueError(f"{self.algo_name} is one network trained on one combined loss: it needs "
                             f"policy={self._POLICY!r}, actor_update='mat_clip' and critic='encoder', got "
                             f"policy={self.policy!r}, actor_update={self.actor_update!r}, critic={self.critic!r}")
        if not self.share_param:
            raise ValueError(f"{self.algo_name} is ONE network for all agents: it needs share_param=True")
        if self.use_rnn:
            raise ValueError(f"{self.algo_name} is implemented for feed-forward networks only (use_rnn=False)")
        if self.ratio_aggregation != "prod":
            raise ValueError(f"{self.algo_name}'s ratio is agent i's conditional ratio over all its action dimensions: "
                             f"it needs ratio_aggregation='prod', got {self.ratio_aggregation!r}")
        if self.policy == "mat" and self.ar_order == "random" and not self.agent_id:
            raise ValueError("mat with ar_order='random' needs agent_id=True: the agent acting at a decoder position "
                             "is known only through its encoder representation, which then carries its one-hot id")
        if self.policy == "mat_dec" and (not self.mat_condition or not self.mat_token_id
                                         or self.ar_order != "fixed"):
            raise ValueError("mat_dec is a product policy (no decoder): mat_condition, mat_token_id and ar_order do "
                             "not apply; leave them at True / True / 'fixed'")


@dataclass
class MATDecConfig(MATConfig):
    """MAT-Dec (Wen et al. NeurIPS22 §5; MAT-code ``mat/scripts/train/train_smac.py``: ``algorithm_name ==
    "mat_dec"`` sets ``dec_actor`` and ``share_actor``): MAT's encoder (per-agent values) and, instead of the
    decoder, ONE shared MLP policy on the agent's own observation (width ``n_embd``, two hidden layers with
    LayerNorm — ma_transformer.py Decoder ``dec_actor``/``share_actor``); a product policy. Same combined update
    and defaults as :class:`MATConfig` (MAT-code uses one trainer for both)."""

    algo_name: ClassVar[str] = "mat_dec"

    policy: str = "mat_dec"
    _POLICY: ClassVar[str] = "mat_dec"


CONFIGS: dict[str, type[OnPolicyConfig]] = {
    "mappo": MAPPOConfig,
    "ippo": IPPOConfig,
    "happo": HAPPOConfig,
    "hatrpo": HATRPOConfig,
    "haa2c": HAA2CConfig,
    "ar_mappo": ARMAPPOConfig,
    "mat": MATConfig,
    "mat_dec": MATDecConfig,
    "tad_ppo": TADPPOConfig,
}


def _register_value_decomposition() -> None:
    from .value_configs import VALUE_CONFIGS

    CONFIGS.update(VALUE_CONFIGS)  # type: ignore[arg-type]  # the off-policy family shares the name space


_register_value_decomposition()


def config_for(algo: str) -> type[OnPolicyConfig]:
    """The config class of ``algo``; unknown names raise with the known ones."""
    if algo not in CONFIGS:
        raise ValueError(f"unknown algo {algo!r}; known algorithms: {sorted(CONFIGS)}")
    return CONFIGS[algo]


def field_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if not f.name.startswith("_")]


# ------------------------------------------------------------------------------------------------- presets
PRESETS: tuple[str, ...] = ("harl",)

# HARL's defaults (PKU-MARL/HARL, commit d539bad) for every field with a counterpart here. "yaml" is
# harl/configs/algos_cfgs/<algo>.yaml (section.key); the other sources are the code that hard-codes a value.
_HARL_COMMON: dict[str, Any] = {
    "hidden": (128, 128),  # yaml model.hidden_sizes
    "activation": "relu",  # yaml model.activation_func
    "feature_norm": True,  # yaml model.use_feature_normalization
    "layer_norm": True,  # harl/models/base/mlp.py MLPLayer (LayerNorm after every hidden layer, not configurable)
    "gain": 0.01,  # yaml model.gain (initialization_method orthogonal_ is the only init here)
    "use_rnn": False,  # yaml model.use_recurrent_policy / use_naive_recurrent_policy
    "rnn_hidden": 128,  # harl/models/policy_models/stochastic_policy.py: RNNLayer(hidden_sizes[-1], ...)
    "lr": 5e-4,  # yaml model.lr
    "critic_lr": 5e-4,  # yaml model.critic_lr
    "opti_eps": 1e-5,  # yaml model.opti_eps
    "weight_decay": 0.0,  # yaml model.weight_decay
    "std_param": "harl",  # harl/models/base/distributions.py DiagGaussian: sigmoid(p / x) * y
    "std_x_coef": 1.0,  # yaml model.std_x_coef
    "std_y_coef": 0.5,  # yaml model.std_y_coef
    "critic_epoch": 5,  # yaml algo.critic_epoch
    "use_clipped_value_loss": True,  # yaml algo.use_clipped_value_loss
    "value_clip": 0.2,  # yaml algo.clip_param (harl/algorithms/critics/v_critic.py clips values with clip_param)
    "critic_num_mini_batch": 1,  # yaml algo.critic_num_mini_batch
    "value_loss_coef": 1.0,  # yaml algo.value_loss_coef
    "max_grad_norm": 10.0,  # yaml algo.max_grad_norm (use_max_grad_norm: True)
    "gamma": 0.99,  # yaml algo.gamma
    "gae_lambda": 0.95,  # yaml algo.gae_lambda (use_gae: True)
    "use_huber": True,  # yaml algo.use_huber_loss
    "huber_delta": 10.0,  # yaml algo.huber_delta
    "ratio_aggregation": "prod",  # yaml algo.action_aggregation
    "use_value_norm": True,  # yaml train.use_valuenorm
    "value_norm_update": "per_minibatch",  # harl/algorithms/critics/v_critic.py cal_value_loss
    "linear_lr_decay": False,  # yaml train.use_linear_lr_decay
    "adv_norm": "batch",  # harl/algorithms/actors/happo.py train (EP state: whole-batch mean/std)
}
_HARL_PPO: dict[str, Any] = {
    "ppo_epoch": 5,  # yaml algo.ppo_epoch (haa2c.yaml: algo.a2c_epoch)
    "clip": 0.2,  # yaml algo.clip_param
    "actor_num_mini_batch": 1,  # yaml algo.actor_num_mini_batch
    "entropy_coef": 0.01,  # yaml algo.entropy_coef
}
_HARL_SEQUENTIAL: dict[str, Any] = {
    "share_param": False,  # yaml algo.share_param
    "fixed_order": False,  # yaml algo.fixed_order
    "granularity": "agent_outer",  # harl/runners/on_policy_ha_runner.py train (each agent runs all its epochs)
    "simultaneous": False,  # harl/runners/on_policy_ha_runner.py (the factor is always applied)
}
HARL_PRESETS: dict[str, dict[str, Any]] = {
    "mappo": {**_HARL_COMMON, **_HARL_PPO, "share_param": True,  # mappo.yaml algo.share_param
              "fixed_order": True},  # mappo.yaml algo.fixed_order (unused by the joint update)
    # HARL has no IPPO: mappo.yaml's values, the decentralised critic kept.
    "ippo": {**_HARL_COMMON, **_HARL_PPO, "share_param": True, "fixed_order": True},
    # HARL has no AR-MAPPO: mappo.yaml's values, the auto-regressive actor and joint-ratio update kept.
    "ar_mappo": {**_HARL_COMMON, **_HARL_PPO, "share_param": True, "fixed_order": True},
    "happo": {**_HARL_COMMON, **_HARL_PPO, **_HARL_SEQUENTIAL},
    "haa2c": {**_HARL_COMMON, **_HARL_PPO, **_HARL_SEQUENTIAL},
    "hatrpo": {
        **_HARL_COMMON, **_HARL_SEQUENTIAL,
        "clip": 0.2,  # hatrpo.yaml algo.clip_param (HATRPO uses it only for the value clip)
        "kl_threshold": 0.01,  # hatrpo.yaml algo.kl_threshold
        "ls_steps": 10,  # hatrpo.yaml algo.ls_step
        "accept_ratio": 0.5,  # hatrpo.yaml algo.accept_ratio
        "backtrack_coeff": 0.8,  # hatrpo.yaml algo.backtrack_coeff
        "cg_iters": 10,  # harl/algorithms/actors/hatrpo.py conjugate_gradient(..., nsteps=10)
        "fvp_damping": 0.1,  # harl/utils/trpo_util.py fisher_vector_product: kl_hessian_p + 0.1 * p
        "entropy_coef": 0.0,  # hatrpo.yaml has no entropy term
    },
}

# Run-level settings of HARL's train section with a counterpart in ``seqmarl.config.RunConfig``. ``preset=harl``
# applies them unless given explicitly; num_env_steps (1e7) is a budget and is left to ``total_steps``.
HARL_RUN: dict[str, Any] = {
    "num_envs": 20,  # yaml train.n_rollout_threads
    "rollout_length": 200,  # yaml train.episode_length
}


def preset_values(algo: str, preset: str = "harl") -> dict[str, Any]:
    """Field values of ``algo``'s config under ``preset`` (a copy). ``harl``: PKU-MARL/HARL's defaults (the
    algorithm's yaml under harl/configs/algos_cfgs/ and the values its code hard-codes)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known presets: {list(PRESETS)}")
    if algo not in HARL_PRESETS:
        raise ValueError(f"unknown algo {algo!r}; known algorithms: {sorted(HARL_PRESETS)}")
    return dict(HARL_PRESETS[algo])
