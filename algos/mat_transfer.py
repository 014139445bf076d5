"""Zero-shot transfer of a trained MAT / MAT-Dec to another number of agents (MAT §5, issue 11 §3).

MAT's encoder and decoder are attention over the agents, so their weights do not depend on ``n`` — except for
two optional one-hot agent ids: the encoder input id (config ``agent_id``) and the id in the decoder tokens
(config ``mat_token_id``; :mod:`seqmarl.algos.core.mat_policy`). With both off, :func:`load_for_agents` builds
the same network for an env spec with another ``n_agents`` (same observation size, action count and state size,
e.g. SMAX maps with the same ``pad_units``) and loads the trained weights into it.

What is carried over: the network (policy and the encoder's value head: one module) and the value normaliser
(a scalar running mean/variance, independent of ``n``; it only rescales the values, the policy does not read
it). What is not: the optimiser state (Adam's moments belong to a training run; the new agent starts with a
fresh optimiser, so further training is a new run) and the update counter (0). Evaluation only needs the policy.
"""

from __future__ import annotations

from typing import Any

import torch

from seqmarl.envs.base import EnvSpec

__all__ = ["load_for_agents", "check_transferable"]


def _state_of(source: Any) -> tuple[dict[str, Any], EnvSpec | None]:
    """``(state dict, spec or None)`` of an agent (anything with ``state_dict()``) or a state dict."""
    if isinstance(source, dict):
        return source, None
    if hasattr(source, "state_dict") and hasattr(source, "config"):
        return source.state_dict(), getattr(source, "spec", None)
    raise TypeError(f"agent_or_state_dict must be a MAT/MAT-Dec agent or its state_dict(), got {type(source).__name__}")


def check_transferable(config: dict[str, Any]) -> str:
    """The algorithm name (``"mat"`` / ``"mat_dec"``) of a saved config (``state["config"]``) whose weights do not
    depend on ``n_agents``; a ValueError names what ties them to ``n`` otherwise."""
    policy = config.get("policy")
    if policy not in ("mat", "mat_dec"):
        raise ValueError(f"only MAT and MAT-Dec (one network for all agents) transfer to another number of agents; "
                         f"got policy={policy!r} (separate actors per agent, e.g. HAPPO, cannot act for new agents)")
    if config.get("agent_id"):
        raise ValueError("agent_id=True: the encoder input carries a one-hot id of n_agents dims, so the weights "
                         "fit only the trained n_agents; train with agent_id=False to transfer")
    if policy == "mat" and config.get("mat_token_id", True):
        raise ValueError("mat_token_id=True: the decoder tokens carry a one-hot id of n_agents dims, so the weights "
                         "fit only the trained n_agents; train with algo.mat_token_id=false to transfer")
    return str(policy)


def _sizes(actors: dict[str, torch.Tensor], policy: str) -> tuple[int, int]:
    """``(obs_dim, action count)`` read off the saved weights: the encoder's input layer and the policy head."""
    obs_dim = int(actors["encoder.embed.0.weight"].shape[1])
    heads = [k for k, v in actors.items() if v.dim() == 2 and (k.startswith("head.") if policy == "mat" else
                                                                 k.startswith("actors.") and ".head." in k)]
    return obs_dim, int(actors[heads[-1]].shape[0])  # the last matrix of the policy head: its output layer


def load_for_agents(agent_or_state_dict: Any, spec: EnvSpec, *, device: str | torch.device = "cpu",
                    seed: int = 0) -> Any:
    """A MAT / MAT-Dec agent for ``spec`` (any ``n_agents``) holding the trained weights of
    ``agent_or_state_dict`` (an agent or its ``state_dict()``) and its value normaliser; fresh optimiser.

    Raises ValueError when the weights depend on ``n_agents`` (``agent_id`` or ``mat_token_id`` on, or not a
    MAT-family agent) or when ``spec``'s observation size, action count (or, for an agent source, state size)
    differ from the trained ones."""
    from seqmarl.algos import make_agent

    if not isinstance(spec, EnvSpec):
        raise TypeError(f"spec must be an EnvSpec (env.spec), got {type(spec).__name__}")
    state, old_spec = _state_of(agent_or_state_dict)
    if "config" not in state or "actors" not in state:
        raise ValueError("agent_or_state_dict must be an agent's state_dict() with 'config' and 'actors' entries")
    config = dict(state["config"])
    policy = check_transferable(config)
    obs_dim, n_actions = _sizes(state["actors"], policy)
    sizes = {s.n if s.is_discrete else s.dim for s in spec.agent_spaces}
    if spec.obs_dim != obs_dim or max(sizes) != n_actions:
        raise ValueError(f"spec must have the trained obs_dim={obs_dim} and action count {n_actions}, got "
                         f"obs_dim={spec.obs_dim} and action counts {sorted(sizes)} (pad the env, e.g. SMAX "
                         f"pad_units, so that both maps share the sizes)")
    if old_spec is not None and old_spec.state_dim != spec.state_dim:
        raise ValueError(f"spec must have the trained state_dim={old_spec.state_dim}, got {spec.state_dim}")
    agent = make_agent(policy, spec, device=device, seed=seed, **config)
    agent.actors.load_state_dict(state["actors"])  # critic IS actors (one network)
    if agent.value_norm is not None and state.get("value_norm") is not None:
        agent.value_norm.load_state_dict(state["value_norm"])
    return agent
