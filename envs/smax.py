"""SMAX (JAX re-implementation of the StarCraft Multi-Agent Challenge) on the real ``jaxmarl`` package, batched.

Registry names ``smax/<map>`` for every map of jaxmarl's SMAX registry (:data:`SMAX_MAPS`, the keys of
``jaxmarl.environments.smax.smax_env.MAP_NAME_TO_SCENARIO`` in jaxmarl 0.2.0), e.g. ``smax/3m``,
``smax/2s3z``, ``smax/smacv2_5_units``::

    env = seqmarl.envs.make("smax/3m", num_envs=256, seed=0)

Needs the ``smax`` extra: ``pip install "seqmarl[smax]"`` (``jaxmarl`` with a CPU ``jax``).

Conventions (source: jaxmarl 0.2.0, ``jaxmarl/environments/smax/smax_env.py`` and
``heuristic_enemy_smax_env.py``, ``jaxmarl/environments/multi_agent_env.py``):

* **Package environment**: ``jaxmarl.make("HeuristicEnemySMAX", scenario=map_name_to_scenario(map_name),
  max_steps=episode_limit - 1, ...)``: our agents are the allies (``ally_0``, ...), the enemies follow jaxmarl's
  heuristic policy (``attack_mode="closest"``).
* **Batching**: ``reset`` and ``step`` of all ``B`` environments are one ``jax.jit`` of a ``jax.vmap``; the
  outputs reach torch without copies (``torch.from_numpy(np.asarray(x))`` shares the jax CPU buffer; on a CUDA
  torch device they are then moved there).
* **Keys**: :meth:`reset` draws an integer ``s`` from the env's torch generator; ``root = PRNGKey(s)``.
  Every reset and every step splits ``root, *keys = split(root, B + 1)`` and environment ``b`` uses
  ``keys[b]`` exactly as the package's own auto-resetting ``env.step(keys[b], state, actions)`` does:
  ``k_step, k_reset = split(keys[b])``, ``step_env(k_step, ...)``, ``reset(k_reset)`` — so a trajectory equals
  the package's (tested in ``tests/envs/test_smax_differential.py``).
* **Compilation**: one ``jit`` per (map, ``B``, options), shared by all :class:`SMAXEnv` s of the process; jax's
  persistent compilation cache is switched on (:func:`enable_compilation_cache`: ``~/.cache/seqmarl/jax`` unless a
  cache directory is configured already; ``SEQMARL_JAX_CACHE=0`` opts out), so later processes skip the 10-30 s
  compile of a step.
* **Observations** ``[B, n, obs_dim]``: the allies' observations (``observation_type="unit_list"`` by
  default); **state** ``[B, state_dim]``: the package's ``world_state`` (``get_world_state``), for the critic.
* **Actions**: discrete, ``n_actions = 5 + n_enemies`` (0-3 move, 4 stop, then attack enemy ``j``);
  ``avail_actions`` is the package's ``get_avail_actions`` (a dead unit may only ``stop``).
* **Dead agents** stay in the batch: ``step.info["active"]`` ``[B, n]`` (bool) is True for the allies alive in
  the returned (post-reset) observation, ``info["final_active"]`` for the state the step reached;
  :attr:`SMAXEnv.active` gives the current mask after :meth:`reset` too.
* **Reward**: the allies' team reward (the package gives every ally the same: normalised enemy health lost,
  plus ``won_battle_bonus`` = 1 for a win).
* **Episode ends**: ``terminated`` when either team is wiped out (``info["battle_won"]`` says whether the
  allies won); ``truncated`` at ``episode_limit`` steps. jaxmarl tests ``step >= max_steps`` *before* counting
  the step being taken, so its episodes time out after ``max_steps + 1`` steps: the package is built with
  ``max_steps = episode_limit - 1``, and the default ``episode_limit = 101`` is the package's default
  ``max_steps = 100``.
* **Checkpoints**: :meth:`state_dict` holds the jax states as numpy arrays, so a resume is exact.
* **Unit padding** (``pad_units=(max_allies, max_enemies)``, CLI ``env.pad_units=8,8``; ``unit_list``
  observations only): observations, state and actions are laid out for ``max_allies`` allies and ``max_enemies``
  enemies, so that maps with different unit counts share one network (zero-shot transfer, MAT §5). With ``F``
  the package's per-unit block (``len(unit_features)``) and ``G`` its own-unit block (``len(own_features)``),
  agent ``i``'s observation is ``[other allies' blocks (n_allies - 1) ; zeros ((max_allies - n_allies) F) ;
  enemies' blocks (n_enemies) ; zeros ((max_enemies - n_enemies) F) ; own features (G)]``; the state is
  ``[allies' G-blocks ; zeros ; enemies' G-blocks ; zeros ; allies' teams ; zeros ; enemies' teams ; zeros ;
  allies' unit types ; zeros ; enemies' unit types ; zeros]`` (the package's ``get_world_state`` order: unit
  blocks, then ``unit_teams``, then ``unit_types``, each allies first). Actions: ``5 + max_enemies``, attack
  enemy ``j`` keeps the package's index ``5 + j``; the attacks on absent enemies (``j >= n_enemies``) are never
  available (and, if sent anyway with ``check_actions=False``, become ``stop``). The number of agents is still
  ``n_allies``; episodes, rewards, masks and ``battle_won`` are the package's. The padding runs inside the jitted
  step. One feature keeps a map-dependent scale: a unit block's "last attack" entry is the package's
  ``prev_attack_action / (num_actions - 1)``, whose divisor depends on the map's unit counts.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from .base import AgentSpace, EnvSpec, Step, _check_int
from .jaxbatch import _LINE, JaxBatchedEnv, _pad_to_line, _to_torch, enable_compilation_cache, require_jaxmarl

__all__ = ["SMAXEnv", "SMAX_MAPS", "INSTALL_HINT", "require_jaxmarl"]

INSTALL_HINT = 'pip install "seqmarl[smax]"  (or: pip install "jaxmarl==0.2.0" "jax[cpu]")'

# jaxmarl 0.2.0 MAP_NAME_TO_SCENARIO keys (a test checks this list against the package).
SMAX_MAPS: tuple[str, ...] = ("3m", "2s3z", "25m", "3s5z", "8m", "5m_vs_6m", "10m_vs_11m", "27m_vs_30m",
                              "3s5z_vs_3s6z", "3s_vs_5z", "6h_vs_8z", "smacv2_5_units", "smacv2_10_units",
                              "smacv2_20_units")


class _Compiled:
    """The package environment and the jitted, vmapped reset/step/observe of ``B`` copies. Shared by every
    :class:`SMAXEnv` with the same arguments (:func:`_compiled`), so evaluation envs and tests compile once."""

    def __init__(self, map_name: str, num_envs: int, limit: int, observation_type: str, attack_mode: str,
                 enemy_shoots: bool, package_kwargs: dict[str, Any] | None = None,
                 pad_units: tuple[int, int] | None = None) -> None:
        jax, jnp, jaxmarl = require_jaxmarl()
        from jaxmarl.environments.smax import map_name_to_scenario

        enable_compilation_cache(jax)

        penv = jaxmarl.make("HeuristicEnemySMAX", scenario=map_name_to_scenario(map_name), max_steps=limit - 1,
                            observation_type=observation_type, attack_mode=attack_mode, enemy_shoots=enemy_shoots,
                            **(package_kwargs or {}))
        self.penv = penv
        self.device = jax.devices("cpu")[0]
        agents, B = tuple(penv.agents), int(num_envs)
        n_allies = len(agents)
        n_moves, n_package_actions = int(penv.num_movement_actions), int(penv.action_spaces[agents[0]].n)
        self.obs_size, self.state_size, self.n_actions = int(penv.obs_size), int(penv.state_size), n_package_actions
        obs_gaps = state_gaps = act_gaps = None
        if pad_units is not None:
            max_allies, max_enemies = pad_units
            da, de = max_allies - n_allies, max_enemies - int(penv.num_enemies)
            F, G, n_e = len(penv.unit_features), len(penv.own_features), int(penv.num_enemies)
            # (width of a real segment, zeros after it) along the package's layout (module docstring)
            obs_gaps = [((n_allies - 1) * F, da * F), (n_e * F, de * F), (G, 0)]
            state_gaps = [(n_allies * G, da * G), (n_e * G, de * G), (n_allies, da), (n_e, de), (n_allies, da),
                          (n_e, de)]
            act_gaps = [(n_package_actions, de)]
            self.obs_size += (da * F + de * F)
            self.state_size += da * G + de * G + 2 * (da + de)
            self.n_actions += de

        def spread(x: Any, gaps: list[tuple[int, int]] | None) -> Any:
            """``x [..., sum(real widths)]`` with zeros (False) inserted after each real segment."""
            if gaps is None:
                return x
            parts, at = [], 0
            for width, pad in gaps:
                parts.append(x[..., at: at + width])
                if pad:
                    parts.append(jnp.zeros(x.shape[:-1] + (pad,), dtype=x.dtype))
                at += width
            return jnp.concatenate(parts, axis=-1)

        def pack(obs: dict, state: Any) -> dict:
            avail = penv.get_avail_actions(state)
            return {"obs": spread(jnp.stack([obs[a] for a in agents]).astype(jnp.float32), obs_gaps),
                    "state": spread(obs["world_state"].astype(jnp.float32), state_gaps),
                    "avail": spread(jnp.stack([avail[a] for a in agents]).astype(jnp.bool_), act_gaps),
                    "active": state.state.unit_alive[:n_allies]}

        def pack_state(state: Any) -> dict:
            obs = dict(penv.get_obs(state))
            obs["world_state"] = penv.get_world_state(state)
            return pack(obs, state)

        def reset_one(key: Any) -> tuple[Any, dict]:
            obs, state = penv.reset(key)
            return state, pack(obs, state)

        def step_one(key: Any, state: Any, action: Any) -> tuple[Any, dict, dict, Any, Any, Any, Any]:
            k_step, k_reset = jax.random.split(key)  # as jaxmarl MultiAgentEnv.step
            if act_gaps is not None:  # padded attacks on absent enemies (never available): stop
                action = jnp.where(action < n_package_actions, action, n_moves - 1)
            obs_st, state_st, rewards, dones, _ = penv.step_env(k_step, state, {a: action[i] for i, a in enumerate(agents)})
            obs_re, state_re = penv.reset(k_reset)
            done = dones["__all__"]
            final = pack(obs_st, state_st)
            fresh = pack(obs_re, state_re)
            nxt_state = jax.tree.map(lambda r, s: jax.lax.select(done, r, s), state_re, state_st)
            nxt = jax.tree.map(lambda r, s: jax.lax.select(done, r, s), fresh, final)
            alive = state_st.state.unit_alive
            allies_dead = ~jnp.any(alive[:n_allies])
            enemies_dead = ~jnp.any(alive[n_allies:])
            terminated = done & (allies_dead | enemies_dead)
            won = enemies_dead & ~allies_dead
            return nxt_state, final, nxt, rewards[agents[0]].astype(jnp.float32), done, terminated, won

        def batched_reset(root: Any) -> tuple[Any, Any, dict]:
            keys = jax.random.split(root, B + 1)
            state, out = jax.vmap(reset_one)(keys[1:])
            # strong dtypes: a weakly typed leaf (the heuristic enemy's state) would make step() recompile once
            # the step's own, strongly typed, output comes back in
            state = jax.tree.map(lambda x: jnp.asarray(x, dtype=x.dtype), state)
            return keys[0], state, out

        def batched_step(root: Any, state: Any, actions: Any) -> tuple:
            """One float32 and one bool array for all outputs (two hand-overs to torch per step instead of twelve;
            :meth:`unpack` cuts them into views)."""
            keys = jax.random.split(root, B + 1)
            state, final, nxt, reward, done, terminated, won = jax.vmap(step_one)(keys[1:], state, actions)
            floats = jnp.concatenate([_pad_to_line(x) for x in (final["obs"].reshape(B, -1), final["state"],
                                                                 nxt["obs"].reshape(B, -1), nxt["state"],
                                                                 reward[:, None])], axis=1)
            bools = jnp.concatenate([final["avail"].reshape(B, -1), final["active"], nxt["avail"].reshape(B, -1),
                                     nxt["active"], done[:, None], terminated[:, None], won[:, None]], axis=1)
            return keys[0], state, floats, bools

        n_actions = self.n_actions
        # each float field starts on a 64-byte line of its row (see _pad_to_line): (start, width) per field
        widths = [n_allies * self.obs_size, self.state_size] * 2 + [1]
        starts = np.cumsum([0] + [w + (-w) % _LINE for w in widths[:-1]]).tolist()
        self.float_fields = list(zip(starts, widths))
        self.bool_split = [n_allies * n_actions, n_allies] * 2 + [1, 1, 1]
        self.shapes = (B, n_allies, self.obs_size, n_actions)

        self.reset = jax.jit(batched_reset)
        self.step = jax.jit(batched_step)
        self.pack = jax.jit(jax.vmap(pack_state))


@functools.lru_cache(maxsize=16)
def _compiled(map_name: str, num_envs: int, limit: int, observation_type: str, attack_mode: str,
              enemy_shoots: bool, pad_units: tuple[int, int] | None = None) -> _Compiled:
    return _Compiled(map_name, num_envs, limit, observation_type, attack_mode, enemy_shoots, pad_units=pad_units)


def check_pad_units(pad_units: Any, map_name: str, n_allies: int, n_enemies: int) -> tuple[int, int] | None:
    """``pad_units`` as ``(max_allies, max_enemies)`` (or None); a ValueError names it and the map's counts
    unless it is two integers >= the map's allies and enemies. The CLI's string ``"8,8"`` is accepted."""
    if pad_units is None:
        return None
    if isinstance(pad_units, str):
        try:
            pad_units = tuple(int(x) for x in pad_units.strip("()[] ").split(","))
        except ValueError:
            pass
    ok = (isinstance(pad_units, (tuple, list)) and len(pad_units) == 2
          and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in pad_units))
    if not ok or int(pad_units[0]) < n_allies or int(pad_units[1]) < n_enemies:
        raise ValueError(f"pad_units must be two integers (max_allies, max_enemies) >= the unit counts of map "
                         f"{map_name!r} ({n_allies} allies, {n_enemies} enemies), got {pad_units!r}")
    return int(pad_units[0]), int(pad_units[1])


class SMAXEnv(JaxBatchedEnv):
    """``B`` SMAX battles against jaxmarl's heuristic enemy (module docstring).

    Args:
        map_name: a key of jaxmarl's ``MAP_NAME_TO_SCENARIO`` (:data:`SMAX_MAPS`).
        num_envs, device, seed, check_actions: as every :class:`MultiAgentEnv`.
        episode_limit: steps before truncation (default 101 = the package's ``max_steps=100`` plus one, see the
            module docstring; must be >= 2).
        observation_type: ``"unit_list"`` (default) or ``"conic"`` (the package's two kinds).
        attack_mode: the heuristic enemy's targeting, ``"closest"`` or ``"random"``.
        enemy_shoots: whether the heuristic enemy attacks.
        package_kwargs: further keyword arguments of jaxmarl's ``SMAX`` (e.g. ``walls_cause_death``).
        pad_units: ``(max_allies, max_enemies)``: lay observations, state and actions out for that many units
            (module docstring, "Unit padding"); None (default) keeps the package's sizes.
    """

    def __init__(self, map_name: str, num_envs: int = 1, device: str | torch.device | None = "cpu",
                 seed: int | None = None, episode_limit: int = 101, observation_type: str = "unit_list",
                 attack_mode: str = "closest", enemy_shoots: bool = True, check_actions: bool = True,
                 package_kwargs: dict[str, Any] | None = None, pad_units: tuple[int, int] | None = None) -> None:
        jax, jnp, _ = require_jaxmarl(f"smax/{map_name}")
        from jaxmarl.environments.smax.smax_env import MAP_NAME_TO_SCENARIO

        if not isinstance(map_name, str) or map_name not in MAP_NAME_TO_SCENARIO:
            raise ValueError(f"unknown SMAX map_name {map_name!r}; known maps: {sorted(MAP_NAME_TO_SCENARIO)}")
        if observation_type not in ("unit_list", "conic"):
            raise ValueError(f"observation_type must be 'unit_list' or 'conic', got {observation_type!r}")
        if attack_mode not in ("closest", "random"):
            raise ValueError(f"attack_mode must be 'closest' or 'random', got {attack_mode!r}")
        limit = _check_int(episode_limit, "episode_limit", 2)
        scenario = MAP_NAME_TO_SCENARIO[map_name]
        pad_units = check_pad_units(pad_units, map_name, int(scenario.num_allies), int(scenario.num_enemies))
        if pad_units is not None and observation_type != "unit_list":
            raise ValueError(f"pad_units needs observation_type='unit_list' (the conic observation has no per-unit "
                             f"slots), got observation_type={observation_type!r}")
        self.map_name = map_name
        #: ``(max_allies, max_enemies)`` of the padded layout, or None
        self.pad_units = pad_units
        b = _check_int(num_envs, "num_envs", 1)
        key = (map_name, b, limit, observation_type, attack_mode, bool(enemy_shoots))
        if package_kwargs:  # possibly unhashable values: no sharing of compiled functions
            compiled = _Compiled(*key, package_kwargs=package_kwargs, pad_units=pad_units)
        else:
            compiled = _compiled(*key, pad_units)
        self.package_env = compiled.penv
        penv = self.package_env
        self.agent_names: tuple[str, ...] = tuple(penv.agents)
        n = len(self.agent_names)
        self.num_enemies = int(penv.num_enemies)
        n_actions = compiled.n_actions
        spec = EnvSpec(n_agents=n, obs_dim=compiled.obs_size, state_dim=compiled.state_size,
                       agent_spaces=(AgentSpace.discrete(n_actions),) * n, episode_limit=limit)
        super().__init__(spec, num_envs, device, seed, check_actions, compiled, jax, jnp)
        self._won: torch.Tensor | None = None
        self._final_active: torch.Tensor | None = None

    def _unpack(self, floats: Any, bools: Any) -> tuple[dict, dict, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Views of the step's two arrays (layout of ``_Compiled.batched_step``); keeps the won flags and the
        final alive masks for :meth:`_step_finish`."""
        b, n, o, a = self._fns.shapes
        f = _to_torch(floats, self.device)
        fo, fs, no, ns, rew = (f[:, a: a + w] for a, w in self._fns.float_fields)
        fa, fact, na, nact, done, term, won = torch.split(_to_torch(bools, self.device), self._fns.bool_split, dim=1)
        final = {"obs": fo.view(b, n, o), "state": fs, "avail": fa.view(b, n, a), "active": fact}
        nxt = {"obs": no.view(b, n, o), "state": ns, "avail": na.view(b, n, a), "active": nact}
        self._final_active, self._won = fact, won[:, 0]
        return final, nxt, rew[:, 0], done[:, 0], term[:, 0]

    def _current_avail(self) -> torch.Tensor:
        assert self._cur is not None
        return self._cur["avail"]

    def _step_finish(self) -> Step:
        """:meth:`MultiAgentEnv.step` adds ``info["active"]``, ``info["final_active"]`` ``[B, n]`` and
        ``info["battle_won"]`` ``[B]`` (module docstring)."""
        out = super()._step_finish()
        assert self._cur is not None
        out.info["active"] = self._cur["active"]
        out.info["final_active"] = self._final_active
        out.info["battle_won"] = self._won & out.terminated
        return out

    @property
    def active(self) -> torch.Tensor:
        """``[B, n]`` bool: the allies alive in the current observation."""
        if self._cur is None:
            raise RuntimeError("call reset() first")
        return self._cur["active"]

    def __repr__(self) -> str:
        return (f"SMAXEnv({self.map_name!r}, num_envs={self.num_envs}, n_agents={self._spec.n_agents}, "
                f"n_enemies={self.num_enemies}, obs_dim={self._spec.obs_dim}, state_dim={self._spec.state_dim}"
                + (f", pad_units={self.pad_units}" if self.pad_units else "") + ")")


def registry_entries() -> dict[str, Any]:
    """``{"smax/<map>": factory}`` for :data:`SMAX_MAPS` (jaxmarl is imported only when a factory is called)."""
    return {f"smax/{m}": _factory(m) for m in SMAX_MAPS}


def _factory(map_name: str) -> Any:
    def factory(num_envs: int = 1, device: str | torch.device | None = "cpu", seed: int | None = None,
                episode_limit: int = 101, observation_type: str = "unit_list", attack_mode: str = "closest",
                enemy_shoots: bool = True, package_kwargs: dict[str, Any] | None = None,
                pad_units: tuple[int, int] | None = None) -> SMAXEnv:
        return SMAXEnv(map_name, num_envs=num_envs, device=device, seed=seed, episode_limit=episode_limit,
                       observation_type=observation_type, attack_mode=attack_mode, enemy_shoots=enemy_shoots,
                       package_kwargs=package_kwargs, pad_units=pad_units)

    factory.__name__ = f"smax_{map_name}"
    factory.__doc__ = f"``SMAXEnv({map_name!r}, ...)`` (seqmarl.envs.smax)."
    return factory
