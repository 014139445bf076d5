"""``tabular_policy``: read any policy a user has (a tabular one, a ``seqmarl.algos`` agent, an own torch policy)
out as the exact tabular joint policy ``pi(a|s)`` of a finite game, the object every exact oracle evaluates.

Public as :func:`seqmarl.testing.tabular_policy`. torch is imported only when a torch object is read out.
"""

from __future__ import annotations

import inspect
import sys
from functools import partial
from typing import Any, Sequence

import numpy as np

from seqmarl.theory.markov_game import MarkovGame
from seqmarl.theory.policies import Factorized, Joint, Policy

__all__ = ["tabular_policy", "is_train_function"]

_OBS_MODES = ("state", "state+agent_id", "none")
_PAD_TOL = 1e-6  # probability a torch policy may put on padded actions a >= A_i (float32 softmax rounding)
_SUM_TOL = 1e-4  # float32 rows of a probability tensor sum to 1 within this


def _torch_instance(value: object, name: str) -> bool:
    """``isinstance(value, torch.<name>)`` without importing torch (a torch object implies torch is imported)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    cls = torch.Tensor if name == "Tensor" else getattr(torch.nn, name)
    return isinstance(value, cls)


def _is_array(value: object) -> bool:
    return isinstance(value, (np.ndarray, list, tuple)) or _torch_instance(value, "Tensor")


def _numpy(value: object) -> np.ndarray:
    if _torch_instance(value, "Tensor"):
        value = value.detach().cpu().double().numpy()  # type: ignore[union-attr]
    return np.asarray(value, dtype=np.float64)


def is_train_function(value: object) -> bool:
    """A plain function, method or ``functools.partial``: called as ``fn(game, rng)`` by the helpers that accept a
    policy *or* a train function (a torch module or an agent is a policy, even though it is callable)."""
    return inspect.isfunction(value) or inspect.ismethod(value) or isinstance(value, partial)


def _game_and_env(game: object) -> tuple[MarkovGame, Any]:
    if isinstance(game, MarkovGame):
        return game, None
    if hasattr(game, "game") and hasattr(game, "observation_table") and isinstance(game.game, MarkovGame):
        return game.game, game
    raise TypeError(f"game must be a seqmarl.theory.MarkovGame or a MatrixGameEnv built from one, got {type(game).__name__}")


def _check_shape(pi: Policy, game: MarkovGame) -> Policy:
    if pi.n_states != game.n_states or tuple(pi.n_actions) != game.n_actions:
        raise ValueError(f"policy has {pi.n_states} states and actions {tuple(pi.n_actions)}; the game has "
                         f"{game.n_states} states and actions {game.n_actions}")
    return pi


def _from_tables(tables: Sequence[object], game: MarkovGame) -> Factorized:
    arrays = [_numpy(t) for t in tables]
    for i, (t, a) in enumerate(zip(arrays, game.n_actions)):
        if t.shape != (game.n_states, a):
            raise ValueError(f"policy[{i}] (agent {i}'s table pi^{i}(a|s)) must have shape [S, A_{i}] = "
                             f"{(game.n_states, a)}, got {t.shape}")
    try:
        return Factorized(arrays)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"policy: {exc}") from None


def _obs_mode(obs: str | None, obs_dim: int | None, game: MarkovGame, env: Any) -> str:
    if obs is not None:
        if obs not in _OBS_MODES:
            raise ValueError(f"obs must be one of {_OBS_MODES}, got {obs!r}")
        return obs
    if env is not None:
        return str(env.obs_mode)
    if obs_dim is None:
        return "state"
    by_dim = {game.n_states: "state", game.n_states + game.n_agents: "state+agent_id", 1: "none"}
    if obs_dim not in by_dim:
        raise ValueError(f"the policy takes {obs_dim} observation features; the game's observations have "
                         f"{game.n_states} (obs='state'), {game.n_states + game.n_agents} (obs='state+agent_id') or "
                         f"1 (obs='none')")
    return by_dim[obs_dim]


def _observations(game: MarkovGame, env: Any, mode: str) -> tuple[Any, Any]:
    """``(obs [S, n, d], avail [S, n, A_max])`` of every state, as :class:`seqmarl.envs.MatrixGameEnv` gives them."""
    import torch

    if env is None or env.obs_mode != mode:
        from seqmarl.envs.matrix import MatrixGameEnv

        env = MatrixGameEnv(game, num_envs=1, obs=mode)
    avail = torch.stack([env.avail_actions_of_state(s) for s in range(game.n_states)])
    return env.observation_table(), avail


def _probs(out: object, what: str, game: MarkovGame, agent: int) -> np.ndarray:
    """Agent ``agent``'s ``[S, A_i]`` table from a distribution (anything with ``.probs``) or a probability array."""
    probs = getattr(out, "probs", out)
    if not _is_array(probs):
        raise TypeError(f"{what} must return a distribution with .probs (e.g. torch.distributions.Categorical) or "
                        f"a probability tensor, got {type(out).__name__}")
    table = _numpy(probs)
    a, S = game.n_actions[agent], game.n_states
    if table.ndim != 2 or table.shape[0] != S or table.shape[1] < a:
        raise ValueError(f"{what} gave agent {agent} probabilities of shape {table.shape}; expected [S, A_{agent}] = "
                         f"{(S, a)} (extra padded actions allowed)")
    if not np.all(np.isfinite(table)) or np.any(table < -_PAD_TOL):
        raise ValueError(f"{what} gave agent {agent} non-finite or negative probabilities")
    if np.any(np.abs(table.sum(axis=1) - 1.0) > _SUM_TOL):
        raise ValueError(f"{what} gave agent {agent} rows summing to {np.round(table.sum(axis=1), 6).tolist()}, not 1: "
                         "a tensor is read as probabilities (return a Categorical to pass logits)")
    if table.shape[1] > a and table[:, a:].max() > _PAD_TOL:
        raise ValueError(f"{what} puts probability {table[:, a:].max():.3g} on agent {agent}'s padded actions "
                         f">= {a}, which the game does not have")
    table = np.clip(table[:, :a], 0.0, None)
    return table / table.sum(axis=1, keepdims=True)


def _read_actors(actors: Any, game: MarkovGame, env: Any, obs: str | None) -> Factorized:
    """``pi^i(a|s)`` from ``seqmarl.algos`` actors (``distribution_agent(i, obs_i, avail_i)``) on every state."""
    import torch

    if getattr(actors, "recurrent", False):
        raise ValueError("policy is a recurrent agent (use_rnn=True): it acts on its history, so it has no stationary "
                         "table pi(a|s); use a feed-forward agent for exact checks")
    if not getattr(actors, "discrete", True):
        raise ValueError("policy has continuous actions; tabular policies need the discrete actions of a MarkovGame")
    n = getattr(actors, "n_agents", game.n_agents)
    if n != game.n_agents:
        raise ValueError(f"policy has {n} agents, the game {game.n_agents}")
    mode = _obs_mode(obs, getattr(actors, "obs_dim", None), game, env)
    obs_table, avail = _observations(game, env, mode)
    device = getattr(actors, "valid", obs_table).device
    obs_table, avail = obs_table.to(device), avail.to(device)
    with torch.no_grad():
        tables = [_probs(actors.distribution_agent(i, obs_table[:, i], avail[:, i]), "the agent's actors", game, i)
                  for i in range(game.n_agents)]
    return Factorized(tables)


def _read_joint(policy: Any, game: MarkovGame, env: Any, obs: str | None) -> Policy:
    """The exact JOINT table of an auto-regressive policy (AR-MAPPO, MAT: agent ``i_k`` conditioned on the earlier
    agents' actions), ``pi(a|s) = prod_k pi^{i_k}(a^{i_k} | s, a^{i_{<k}})`` by enumerating every action prefix
    (:func:`seqmarl.validate.joint_policy`). For an agent, its execution orders (``agent.order_support()``: the
    fixed one, or the uniform mixture over all ``n!`` for a random order per sample); for bare actors, the fixed
    order ``0, ..., n-1``. Not a product of per-agent tables, so a :class:`seqmarl.theory.Joint`."""
    actors = getattr(policy, "execution_actors", getattr(policy, "actors", None)) or policy
    if getattr(actors, "recurrent", False):
        raise ValueError("policy is a recurrent agent (use_rnn=True): it acts on its history, so it has no stationary "
                         "table pi(a|s); use a feed-forward agent for exact checks")
    if not getattr(actors, "discrete", True):
        raise ValueError("policy has continuous actions; tabular policies need the discrete actions of a MarkovGame")
    n = getattr(actors, "n_agents", game.n_agents)
    if n != game.n_agents:
        raise ValueError(f"policy has {n} agents, the game {game.n_agents}")
    mode = _obs_mode(obs, getattr(actors, "obs_dim", None), game, env)
    if env is None or env.obs_mode != mode:
        from seqmarl.envs.matrix import MatrixGameEnv

        env = MatrixGameEnv(game, num_envs=1, obs=mode)
    if hasattr(policy, "order_support") and hasattr(policy, "device"):  # a seqmarl.algos agent
        from seqmarl.validate import joint_policy

        return _check_shape(joint_policy(policy, env), game)
    import torch

    from seqmarl.algos.core.joint_policy import exact_joint_table

    obs_table, avail = _observations(game, env, mode)
    device = _device_of(actors)
    with torch.no_grad():
        table = exact_joint_table(actors, obs_table.to(device), avail.to(device), game.n_actions, None)
    return _check_shape(Joint(table), game)


def _device_of(module: object) -> Any:
    params = getattr(module, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return "cpu"


def _read_callables(policy: object, game: MarkovGame, env: Any, obs: str | None) -> Factorized:
    """A user's torch policy: ``n`` per-agent callables ``obs_i [S, d] -> dist`` or one ``obs [S, n, d] -> dist [S, n]``."""
    import torch

    mode = _obs_mode(obs, None, game, env)
    obs_table, _ = _observations(game, env, mode)
    with torch.no_grad():
        if isinstance(policy, (list, tuple)) or _torch_instance(policy, "ModuleList"):
            members = list(policy)  # type: ignore[call-overload]
            tables = [_probs(f(obs_table[:, i].to(_device_of(f))), f"policy[{i}]", game, i) for i, f in enumerate(members)]
            return Factorized(tables)
        out = policy(obs_table.to(_device_of(policy)))  # type: ignore[operator]
        if isinstance(out, (list, tuple)):
            if len(out) != game.n_agents:
                raise ValueError(f"policy returned {len(out)} per-agent outputs for a game of {game.n_agents} agents")
            return Factorized([_probs(o, "policy", game, i) for i, o in enumerate(out)])
        probs = getattr(out, "probs", out)
        if not _is_array(probs):
            raise TypeError(f"policy must return a distribution with .probs of batch shape [S, n] (or a list of n "
                            f"per-agent distributions), got {type(out).__name__}")
        joint = _numpy(probs)
        if joint.ndim != 3 or joint.shape[:2] != (game.n_states, game.n_agents):
            raise ValueError(f"policy(obs [S, n, d]) must give probabilities [S, n, A_max] = "
                             f"({game.n_states}, {game.n_agents}, >= {max(game.n_actions)}), got {joint.shape}")
        return Factorized([_probs(joint[:, i], "policy", game, i) for i in range(game.n_agents)])


def tabular_policy(policy: object, game: object, *, obs: str | None = None) -> Policy:
    """The exact tabular joint policy ``pi(a|s)`` (``[S, A1..An]``, a :class:`seqmarl.theory.Policy`) of ``policy``
    on ``game`` (a :class:`seqmarl.theory.MarkovGame`, or the :class:`seqmarl.envs.MatrixGameEnv` it trained on).

    ``policy`` may be

    * a :class:`seqmarl.theory.Policy` (returned after a shape check), a joint array ``[S, A1, ..., An]`` or a list
      of per-agent tables ``[S, A_i]`` (numpy or torch);
    * a ``seqmarl.algos`` agent (``make_agent(...)``) or its ``actors``: every agent's distribution is read on the
      observation of every state, ``pi^i(a^i|s) = actor_i(o_i(s))`` — exact, since the env's policies are
      stationary functions of ``s`` (not for recurrent agents); an auto-regressive agent (AR-MAPPO, anything whose
      actors have ``autoregressive = True``) comes back as its exact joint table :class:`seqmarl.theory.Joint`,
      ``pi(a|s) = prod_k pi^{i_k}(a^{i_k}|s, a^{i_{<k}})`` over its execution orders (:func:`_read_joint`);
    * a user's torch policy with the small protocol: a list (or ``nn.ModuleList``) of ``n`` callables
      ``obs_i [S, obs_dim] -> dist``, or one callable ``obs [S, n, obs_dim] -> dist`` of batch shape ``[S, n]``
      (or a list of ``n`` dists); ``dist`` is anything with ``.probs`` (``torch.distributions.Categorical``) or
      a probability tensor. Padded actions ``a >= A_i`` must get probability 0.

    Observations are the env's (``obs`` = ``"state"`` one-hot, ``"state+agent_id"``, ``"none"``): taken from the
    env when one is passed, else inferred from an agent's ``obs_dim``, else ``"state"``. Bad arguments raise
    ``TypeError``/``ValueError`` naming them."""
    game, env = _game_and_env(game)
    if obs is not None and obs not in _OBS_MODES:
        raise ValueError(f"obs must be one of {_OBS_MODES}, got {obs!r}")
    if isinstance(policy, Policy):
        return _check_shape(policy, game)
    if isinstance(policy, np.ndarray) or _torch_instance(policy, "Tensor"):
        array = _numpy(policy)
        if array.shape != (game.n_states, *game.n_actions):
            raise ValueError(f"policy (an array, read as a joint table pi(a|s)) must have shape [S, A1, ..., An] = "
                             f"{(game.n_states, *game.n_actions)}, got {array.shape}")
        try:
            return Joint(array)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"policy: {exc}") from None
    if isinstance(policy, (list, tuple)):
        if len(policy) != game.n_agents:
            raise ValueError(f"policy (a sequence) must hold one entry per agent ({game.n_agents}), got {len(policy)}")
        if all(_is_array(t) for t in policy):
            return _from_tables(policy, game)
        if all(callable(f) for f in policy):
            return _read_callables(policy, game, env, obs)
        raise TypeError("policy (a sequence) must hold n per-agent tables [S, A_i] or n per-agent callables obs_i -> dist")
    executing = getattr(policy, "execution_actors", getattr(policy, "actors", None))
    if getattr(executing, "autoregressive", False) or getattr(policy, "autoregressive", False):
        return _read_joint(policy, game, env, obs)
    actors = getattr(policy, "actors", None)
    if actors is not None and hasattr(actors, "distribution_agent"):
        return _read_actors(actors, game, env, obs)
    if hasattr(policy, "distribution_agent"):
        return _read_actors(policy, game, env, obs)
    if _torch_instance(policy, "ModuleList"):
        if len(policy) != game.n_agents:  # type: ignore[arg-type]
            raise ValueError(f"policy (a ModuleList) must hold one module per agent ({game.n_agents}), got {len(policy)}")  # type: ignore[arg-type]
        return _read_callables(policy, game, env, obs)
    if callable(policy):
        return _read_callables(policy, game, env, obs)
    raise TypeError(f"policy must be a seqmarl.theory.Policy, a joint array, per-agent tables, a seqmarl.algos agent or "
                    f"a torch policy (see tabular_policy), got {type(policy).__name__}")
