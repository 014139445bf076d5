"""seqmarl.algos — PyTorch algorithms built from the shared parts in :mod:`seqmarl.algos.core`.

On-policy family: ``mappo``, ``ippo``, ``happo``, ``hatrpo``, ``haa2c``, ``ar_mappo``, ``mat``, ``mat_dec``, ``tad_ppo`` (one agent class, the actor
update and the policy — product or auto-regressive — chosen by the config). Example::

    from seqmarl.envs import make
    from seqmarl.algos import make_agent, Trainer, TrainerConfig
    env = make("matrix/xor", n_agents=2, num_envs=64)
    agent = make_agent("happo", env.spec, lr=5e-3)
    Trainer(env, agent, TrainerConfig(total_steps=20_000, rollout_length=1)).train()
"""

from __future__ import annotations

from typing import Any

import torch

from .base import Algorithm
from .configs import (
    CONFIGS,
    ARMAPPOConfig,
    MATConfig,
    MATDecConfig,
    HAA2CConfig,
    HAPPOConfig,
    HATRPOConfig,
    IPPOConfig,
    MAPPOConfig,
    OnPolicyConfig,
    TADPPOConfig,
    config_for,
)
from .core.buffer import RolloutBuffer
from .offpolicy import ValueDecompositionAgent
from .onpolicy import OnPolicyAgent
from .trainer import Trainer, TrainerConfig
from .value_configs import (
    CWQMIXConfig,
    IQLConfig,
    OWQMIXConfig,
    QMIXConfig,
    QPLEXConfig,
    ValueDecompositionConfig,
    VDNConfig,
)



def known_algorithms() -> list[str]:
    return sorted(CONFIGS)


def make_agent(algo: str, spec: Any, device: str | torch.device = "cpu", seed: int = 0,
               **overrides: Any) -> OnPolicyAgent | ValueDecompositionAgent:
    """Build algorithm ``algo`` for an env ``spec`` with config ``overrides`` (unknown keys raise)."""
    cls = config_for(algo)
    from dataclasses import fields

    known = {f.name for f in fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown {algo} config key(s) {unknown}; allowed: {sorted(known)}")
    if getattr(cls, "family", "on_policy") == "off_policy":
        return ValueDecompositionAgent(spec, cls(**overrides), device=device, seed=seed)
    return OnPolicyAgent(spec, cls(**overrides), device=device, seed=seed)


__all__ = [
    "Algorithm", "OnPolicyAgent", "OnPolicyConfig", "MAPPOConfig", "IPPOConfig", "HAPPOConfig", "HATRPOConfig",
    "HAA2CConfig", "ARMAPPOConfig", "MATConfig", "MATDecConfig", "TADPPOConfig", "ValueDecompositionAgent", "ValueDecompositionConfig", "IQLConfig", "VDNConfig",
    "QMIXConfig",
    "QPLEXConfig", "OWQMIXConfig", "CWQMIXConfig", "RolloutBuffer", "Trainer", "TrainerConfig", "make_agent", "known_algorithms", "config_for",
]
