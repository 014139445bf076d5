"""seqmarl.algos.core -- shared, tested building blocks of the PyTorch algorithms.

GAE with terminated/truncated (:mod:`.gae`), value normalisation (:mod:`.value_norm`), networks and
distributions (:mod:`.networks`, :mod:`.distributions`), PPO losses (:mod:`.losses`), trust-region tools
(:mod:`.trust_region`), the rollout buffer (:mod:`.buffer`), the joint-policy interface (:mod:`.joint_policy`) and
the auto-regressive actor of AR-MAPPO (:mod:`.ar_policy`).
"""

from .ar_policy import AutoRegressiveActor
from .buffer import RolloutBuffer, minibatch_indices, normalise_advantages
from .distributions import DiagGaussian, MaskedCategorical
from .gae import compute_gae, compute_gae_with_value_norm
from .joint_policy import JointPolicy, exact_joint_table, is_autoregressive
from .losses import aggregate_ratio, huber_loss, masked_mean, mse_loss, ppo_clip_objective, value_loss
from .mixers import MIXER_NAMES, CentralQMixer, QMIXMixer, QPLEXMixer, VDNMixer, make_mixer, wqmix_weights
from .networks import (
    MLP,
    Actor,
    BoxSpace,
    CategoricalHead,
    Critic,
    DiagGaussianHead,
    DiscreteSpace,
    GRUCore,
    MultiAgentActors,
    as_action_space,
    init_linear,
)
from .trust_region import (
    LineSearchResult,
    backtracking_line_search,
    conjugate_gradient,
    fisher_vector_product,
    flat_grad,
    flat_params,
    natural_step,
    set_flat_params,
)
from .value_norm import PopArt, ValueNorm

__all__ = [
    "compute_gae",
    "compute_gae_with_value_norm",
    "ValueNorm",
    "PopArt",
    "MaskedCategorical",
    "DiagGaussian",
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
    "huber_loss",
    "mse_loss",
    "masked_mean",
    "value_loss",
    "ppo_clip_objective",
    "aggregate_ratio",
    "conjugate_gradient",
    "fisher_vector_product",
    "natural_step",
    "flat_params",
    "set_flat_params",
    "flat_grad",
    "LineSearchResult",
    "backtracking_line_search",
    "RolloutBuffer",
    "minibatch_indices",
    "normalise_advantages",
    "JointPolicy",
    "AutoRegressiveActor",
    "exact_joint_table",
    "is_autoregressive",
    "VDNMixer", "QMIXMixer", "QPLEXMixer", "CentralQMixer", "wqmix_weights", "make_mixer", "MIXER_NAMES",
]
