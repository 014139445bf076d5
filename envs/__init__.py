"""seqmarl.envs — batched cooperative multi-agent environments on torch tensors (DESIGN.md §3).

Every environment steps ``num_envs`` copies at once and returns a :class:`Step` with ``obs [B, n, obs_dim]``,
``state [B, state_dim]``, ``avail_actions [B, n, A_max]`` (discrete), ``reward [B]`` (shared),
``terminated [B]`` and ``truncated [B]``; ended environments are reset automatically and the observation
they reached is kept in ``step.info["final_obs"]`` (see :mod:`seqmarl.envs.base`).

Example::

    import torch
    from seqmarl import envs
    env = envs.make("matrix/xor", n_agents=4, num_envs=512, seed=0)
    step = env.reset()
    actions = torch.randint(0, 2, (512, 4), generator=env.generator)
    step = env.step(actions)
"""

from ._extras import MissingExtraError
from .base import AgentSpace, EnvSpec, MultiAgentEnv, Step
from .bridge import BridgeEnv
from .gaussian import GaussianProductEnv
from .matrix import MatrixGameEnv
from .pettingzoo import PettingZooEnv, make_pettingzoo
from .registry import describe, known_envs, make, register
from .gfootball import GFootballEnv
from .mamujoco import MaMuJoCoEnv, PettingZooBoxEnv
from .smac import PymarlEnv, SMACEnv, SMACv2Env
from .smax import SMAXEnv
from .workers import WorkerError

__all__ = [
    "make",
    "register",
    "known_envs",
    "describe",
    "MultiAgentEnv",
    "Step",
    "EnvSpec",
    "AgentSpace",
    "MatrixGameEnv",
    "BridgeEnv",
    "GaussianProductEnv",
    "PettingZooEnv",
    "make_pettingzoo",
    "MissingExtraError",
    "MaMuJoCoEnv",
    "PettingZooBoxEnv",
    "SMAXEnv",
    "PymarlEnv",
    "SMACEnv",
    "SMACv2Env",
    "GFootballEnv",
    "WorkerError",
]
