"""Raw package speed vs the trainer's collection speed on the real-package adapters (issue 8).

    python benchmarks/collector_bench.py [--out PATH] [--repeats N] [--runs R] [--only SUBSTRING] [--quick]
                                         [--actions policy,random]

For every case whose package is installed, two rates in environment transitions per second (summed over the batch),
measured in this script, with the same batch size ``B`` and worker count ``W``:

* ``raw``: the package stepped directly with uniformly random (available) actions — no seqmarl code at all.
  MaMuJoCo: ``B`` ``mamujoco_v1.parallel_env`` objects stepped in a loop (``W = 0``), or ``W`` processes each
  stepping its ``B / W`` instances independently (no communication: the package's throughput on ``W`` cores, an
  upper bound); the random actions of all instances are one numpy draw per step. It does not call ``state()``
  (the adapter takes the state from the single-agent step's own observation, at no cost). SMAX:
  ``jax.jit(jax.vmap(env.step))`` with masked random actions drawn in jax, its outputs (observations, world
  state, reward, done) waited for every step as a learner must (it computes neither the final observation, state
  and action masks of the ended battles nor the next step's masks, which the adapter returns); MPE: ``B``
  ``mpe2`` parallel envs in a loop; VMAS: ``vmas.make_env(num_envs=B)`` stepped with random torch actions
  (``env.reset_at`` for every ended world, as the adapter).
* ``collector``: ``seqmarl.envs.make(name, num_envs=B, workers=W)`` driven by ``seqmarl.algos.Trainer.collect``
  with a MAPPO agent (default networks): policy sampling, centralised values of the state and of the final state,
  the rollout buffer — everything of a training iteration except the update. With ``--actions random`` the
  actor is replaced by uniform draws among the available actions (the issue's "random or policy actions"): the
  centralised values and the buffer still run, so the figure isolates the collector's own machinery from the
  cost of the policy forward pass; ``--actions policy,random`` measures both (one row each).

``ratio`` (target >= 0.8) is the median over the ``--repeats`` pairs of ``collector / raw``, each pair a raw run
and a collector run taken back to back after a warm-up (JIT compilation excluded), so that a load change on a
shared machine hits both members of a pair; the rates printed are the medians of the runs (their quotient is
``ratio_of_medians`` in the JSON). ``--runs R`` measures every case ``R`` times over (fresh objects, the cases
interleaved) and reports the medians over the runs, each run's figures kept in the JSON. ``--only SUBSTRING``
keeps the cases whose ``env B W`` label contains it. Cases: MaMuJoCo ``(B, W)`` = (8, 0), (8, 2), (32, 0), (32, 1), (32, 2); SMAX
``B = 64, 256``; MPE ``B = 32, 128``; VMAS ``B = 64, 256``; GRF ``B = 4`` (where the packages are installed).
Writes JSON (default ``benchmarks/results/collector_bench.json``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "collector_bench.json"


def _available(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


# ---------------------------------------------------------------------------------------------------
# raw package loops
# ---------------------------------------------------------------------------------------------------
def _mamujoco_loop(scenario: str, conf: str, k: int, steps: int, seed: int, start: Any = None,
                   single_agent: bool = False) -> float:
    """Step ``k`` package instances ``steps`` times with random actions; returns the seconds taken. The actions of
    all instances are one numpy draw per step, cut into per-agent views (drawing per agent with ``rng.uniform(low,
    high)`` cost a third of the loop's time for HalfCheetah-6x1, which would flatter the collector).
    ``single_agent``: step only the package's underlying single-agent MuJoCo env with the whole action vector (its
    returned observation is the package's ``state()``) — the least work any adapter of the ``state+id``
    observation must do, without the agents' observations that ``mamujoco_v1``'s own ``step`` builds."""
    from gymnasium_robotics import mamujoco_v1

    from seqmarl.envs.mamujoco import _route_mujoco_warnings

    _route_mujoco_warnings()  # MuJoCo's compiler warnings once per process, not once per instance
    envs_ = [mamujoco_v1.parallel_env(scenario, conf) for _ in range(k)]
    rng = np.random.default_rng(seed)
    for i, e in enumerate(envs_):
        e.reset(seed=seed + i)
    agents = envs_[0].possible_agents
    boxes = [envs_[0].action_space(a) for a in agents]
    bounds = np.cumsum([0] + [box.shape[0] for box in boxes]).tolist()
    cuts = list(zip(agents, bounds[:-1], bounds[1:]))
    low = np.concatenate([box.low for box in boxes]).astype(np.float32)
    high = np.concatenate([box.high for box in boxes]).astype(np.float32)
    if start is not None:
        start.wait()
    t0 = time.perf_counter()
    for _ in range(steps):
        acts = rng.uniform(low, high, size=(k, low.size)).astype(np.float32)
        if single_agent:
            for e, row in zip(envs_, acts.astype(np.float64)):
                _, _, term, trunc, _ = e.single_agent_env.step(row)
                if term or trunc:
                    e.reset()
            continue
        for e, row in zip(envs_, acts):
            _, _, term, trunc, _ = e.step({a: row[i:j] for a, i, j in cuts})
            if any(term.values()) or any(trunc.values()):
                e.reset()
    return time.perf_counter() - t0


def _mamujoco_worker(args: tuple) -> float:
    scenario, conf, k, steps, seed, start, single_agent = args
    return _mamujoco_loop(scenario, conf, k, steps, seed, start, single_agent)


class RawMaMuJoCo:
    def __init__(self, scenario: str, conf: str, num_envs: int, workers: int, single_agent: bool = False) -> None:
        self.scenario, self.conf, self.b, self.w = scenario, conf, num_envs, workers
        self.single_agent = single_agent
        if workers:
            ctx = mp.get_context("spawn")
            self.pool = ctx.Pool(workers)
            self.manager = ctx.Manager()

    def run(self, steps: int) -> float:
        if not self.w:
            return self.b * steps / _mamujoco_loop(self.scenario, self.conf, self.b, steps, 0,
                                                   single_agent=self.single_agent)
        sizes = [len(s) for s in np.array_split(np.arange(self.b), self.w)]
        start = self.manager.Barrier(self.w)
        times = self.pool.map(_mamujoco_worker, [(self.scenario, self.conf, k, steps, 100 * i, start,
                                                  self.single_agent) for i, k in enumerate(sizes)])
        return self.b * steps / max(times)

    def close(self) -> None:
        if self.w:
            self.pool.close()
            self.pool.join()
            self.manager.shutdown()


class _RawJax:
    """A jaxmarl package's own auto-resetting step of ``B`` copies, jitted and vmapped, every step waited for."""

    def _batch(self, jax: Any, penv: Any, one: Any, num_envs: int) -> None:
        """``one(key, state) -> (state, outputs)`` jitted over ``num_envs`` copies reset from ``PRNGKey(0)``."""
        dev = jax.devices("cpu")[0]
        self.jax = jax
        self.step = jax.jit(jax.vmap(one))
        self.split = jax.jit(lambda k: jax.random.split(k, num_envs + 1))
        keys = jax.device_put(jax.random.split(jax.random.PRNGKey(0), num_envs + 1), dev)
        _, state = jax.jit(jax.vmap(penv.reset))(keys[1:])
        self.state = jax.tree.map(lambda x: jax.numpy.asarray(x, dtype=x.dtype), state)
        self.root = keys[0]
        self.run(2)  # compile

    def run(self, steps: int) -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            keys = self.split(self.root)
            self.root = keys[0]
            self.state, outputs = self.step(keys[1:], self.state)
            self.jax.block_until_ready(outputs)  # a learner reads every step's outputs before acting again
        return self.b * steps / (time.perf_counter() - t0)

    def close(self) -> None:
        pass


class RawSMAX(_RawJax):
    def __init__(self, map_name: str, num_envs: int, workers: int) -> None:
        import jax
        import jax.numpy as jnp
        import jaxmarl
        from jaxmarl.environments.smax import map_name_to_scenario

        penv = jaxmarl.make("HeuristicEnemySMAX", scenario=map_name_to_scenario(map_name))
        agents = penv.agents
        self.b = num_envs

        def one(key, state):
            k_act, k_step = jax.random.split(key)
            avail = penv.get_avail_actions(state)
            keys = jax.random.split(k_act, len(agents))
            acts = {a: jax.random.categorical(keys[i], jnp.where(avail[a] > 0, 0.0, -1e9)) for i, a in enumerate(agents)}
            obs, state, reward, dones, _ = penv.step(k_step, state, acts)
            # the package's outputs are returned (and waited for), else XLA would skip computing the observations
            return state, (jnp.stack([obs[a] for a in agents]), obs["world_state"], reward[agents[0]], dones["__all__"])

        self._batch(jax, penv, one, num_envs)

class RawJaxMPE(_RawJax):
    """jaxmarl's MPE scenario (``MPE_simple_spread_v3``), ``B`` copies in one jitted, vmapped package ``step`` (its
    own auto-reset) with uniform random actions of the run's action type; ``workers`` is ignored (one process)."""

    def __init__(self, scenario: str, num_envs: int, workers: int, continuous: bool = False, max_cycles: int = 25,
                 N: int = 3, local_ratio: float = 0.5) -> None:
        import jax
        import jax.numpy as jnp
        import jaxmarl
        from jaxmarl.environments.mpe.default_params import CONTINUOUS_ACT, DISCRETE_ACT

        from seqmarl.envs.jaxmarl_mpe import SCENARIOS

        penv = jaxmarl.make(SCENARIOS[scenario], num_agents=N, num_landmarks=N, local_ratio=local_ratio,
                            action_type=CONTINUOUS_ACT if continuous else DISCRETE_ACT, max_steps=max_cycles - 1)
        agents = penv.agents
        self.penv, self.b = penv, num_envs

        def one(key, state):
            k_act, k_step = jax.random.split(key)
            keys = jax.random.split(k_act, len(agents))
            acts = {a: (jax.random.uniform(keys[i], (5,)) if continuous else jax.random.randint(keys[i], (), 0, 5))
                    for i, a in enumerate(agents)}
            obs, state, reward, dones, _ = penv.step(k_step, state, acts)
            # the outputs are returned (and waited for), else XLA would skip computing the observations
            return state, (jnp.stack([obs[a] for a in agents]), jnp.stack([reward[a] for a in agents]), dones["__all__"])

        self._batch(jax, penv, one, num_envs)


class RawMPE:
    """``B`` mpe2 ``parallel_env`` instances stepped in a loop with uniform random actions (discrete indices, or
    points of the ``Box`` with ``continuous``). ``unrolled``: each step is ``seqmarl.envs.mpe.mpe2_cycle_step`` —
    the package's world step, rewards, flags and observations without PettingZoo's AEC-to-parallel wrapper, which
    computes and discards one observation per agent (the same results; what the adapter runs), the stricter
    floor."""

    def __init__(self, scenario: str, num_envs: int, workers: int, continuous: bool = False,
                 max_cycles: int = 25, unrolled: bool = False) -> None:
        import importlib

        module = importlib.import_module("mpe2.simple_spread_v3") if scenario == "simple_spread" else None
        if module is None:
            raise ValueError(scenario)
        self.envs = [module.parallel_env(N=3, local_ratio=0.5, max_cycles=max_cycles, continuous_actions=continuous)
                     for _ in range(num_envs)]
        for i, e in enumerate(self.envs):
            e.reset(seed=i)
        self.rng = np.random.default_rng(0)
        self.b = num_envs
        self.continuous = continuous
        self.unrolled = unrolled

    def _action(self, space: Any) -> Any:
        if self.continuous:
            return self.rng.uniform(space.low, space.high).astype(space.dtype)
        return int(self.rng.integers(space.n))

    def run(self, steps: int) -> float:
        from seqmarl.envs.mpe import mpe2_cycle_step

        t0 = time.perf_counter()
        for _ in range(steps):
            for e in self.envs:
                if self.unrolled:
                    _, _, terminated, truncated, _ = mpe2_cycle_step(
                        e, {a: self._action(e.action_space(a)) for a in e.possible_agents})
                    if any(terminated.values()) or any(truncated.values()):
                        e.reset()
                    continue
                if not e.agents:
                    e.reset()
                e.step({a: self._action(e.action_space(a)) for a in e.agents})
        return self.b * steps / (time.perf_counter() - t0)

    def close(self) -> None:
        pass


class RawGFootball:
    """``B`` package environments stepped in a loop in this process (workers are not paired here: W = 0 only)."""

    def __init__(self, scenario: str, num_envs: int, workers: int) -> None:
        from seqmarl.envs.gfootball import GFOOTBALL_SCENARIOS, create_gfootball

        self.n = GFOOTBALL_SCENARIOS[scenario][0]
        self.envs = [create_gfootball(scenario, self.n, "scoring", i) for i in range(num_envs)]
        for e in self.envs:
            e.reset()
        self.rng = np.random.default_rng(0)
        self.b = num_envs

    def run(self, steps: int) -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            for e in self.envs:
                _, _, done, _ = e.step([int(a) for a in self.rng.integers(0, 19, self.n)])
                if done:
                    e.reset()
        return self.b * steps / (time.perf_counter() - t0)

    def close(self) -> None:
        for e in self.envs:
            e.close()


class RawVMAS:
    """One batched VMAS env of ``B`` instances with uniform random actions (discrete by default: the collector
    path's uniform sampler below draws discrete actions; ``continuous`` draws points of each agent's box)."""

    def __init__(self, scenario: str, num_envs: int, workers: int, continuous: bool = False, max_steps: int = 100,
                 **scenario_kwargs: Any) -> None:
        import vmas

        self.env = vmas.make_env(scenario, num_envs=num_envs, device="cpu", continuous_actions=continuous,
                                 max_steps=max_steps, seed=0, **scenario_kwargs)
        self.env.reset()
        self.gen = torch.Generator().manual_seed(0)
        self.b = num_envs
        self.continuous = continuous

    def _action(self, space: Any) -> torch.Tensor:
        if self.continuous:
            low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)
            return low + (high - low) * torch.rand((self.b, *low.shape), generator=self.gen, dtype=low.dtype)
        return torch.randint(0, space.n, (self.b,), generator=self.gen)

    def run(self, steps: int) -> float:
        env = self.env
        t0 = time.perf_counter()
        for _ in range(steps):
            actions = [self._action(space) for space in env.action_space.spaces]
            _, _, dones, _ = env.step(actions)
            for i in torch.nonzero(dones).flatten().tolist():
                env.reset_at(i)
        return self.b * steps / (time.perf_counter() - t0)

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------------
# the collector path
# ---------------------------------------------------------------------------------------------------
def uniform_actions(spec: Any, generator: torch.Generator) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """An ``act(step)`` that draws every agent's action uniformly: among its available actions (discrete; log-prob
    ``-log(#available)``) or in its box (continuous; ``-sum log(high - low)``). The collector's ``--actions random``."""
    if spec.is_discrete:
        def act(step: Any, **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
            avail = step.avail_actions.float()
            b, n, a = avail.shape
            actions = torch.multinomial(avail.view(b * n, a), 1, generator=generator).view(b, n)
            return actions, -torch.log(avail.sum(-1))
        return act
    low = torch.tensor([list(s.low) for s in spec.agent_spaces])
    high = torch.tensor([list(s.high) for s in spec.agent_spaces])
    if not bool(torch.isfinite(high - low).all()):
        raise ValueError("--actions random needs bounded continuous action boxes (every low/high finite)")
    log_volume = torch.log(high - low).sum(-1)

    def act_box(step: Any, **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
        b = step.obs.shape[0]
        u = torch.rand((b,) + tuple(low.shape), generator=generator)
        return low + u * (high - low), (-log_volume).expand(b, -1)
    return act_box


class Collector:
    def __init__(self, name: str, num_envs: int, workers: int, rollout: int, kwargs: dict,
                 actions: str = "policy") -> None:
        from seqmarl import envs
        from seqmarl.algos import Trainer, TrainerConfig, make_agent

        extra = dict(kwargs)
        if workers:
            extra["workers"] = workers
        self.env = envs.make(name, num_envs=num_envs, seed=0, **extra)
        agent = make_agent("mappo", self.env.spec, seed=0)
        if actions == "random":  # no actor forward: the collector machinery, values and buffer only
            agent.act = uniform_actions(self.env.spec, torch.Generator().manual_seed(0))
        self.trainer = Trainer(self.env, agent, TrainerConfig(total_steps=10**9, rollout_length=rollout, progress=False,
                                                              tensorboard=False), seed=0)
        self.b, self.rollout = num_envs, rollout
        self.trainer.collect()  # warm-up: reset, JIT compilation, buffer allocation

    def run(self, steps: int) -> float:
        rounds = max(1, steps // self.rollout)
        t0 = time.perf_counter()
        for _ in range(rounds):
            self.trainer.collect()
        return self.b * self.rollout * rounds / (time.perf_counter() - t0)

    def close(self) -> None:
        close = getattr(self.env, "close", None)
        if close is not None:
            close()


# name, registry kwargs, raw builder, B, W, steps per timed run
def cases(quick: bool) -> list[tuple[str, dict, Callable[[int, int], Any], int, int, int, str]]:
    out = []
    if _available("gymnasium_robotics"):
        for scenario, conf in (("HalfCheetah", "6x1"), ("Ant", "2x4")):
            for b, w in ((8, 0), (8, 2), (32, 0), (32, 1), (32, 2)):
                out.append((f"mamujoco/{scenario}-{conf}", {},
                            (lambda s, c: (lambda b_, w_: RawMaMuJoCo(s, c, b_, w_)))(scenario, conf), b, w,
                            64 if quick else 128, "gymnasium_robotics"))
    if _available("jaxmarl"):
        for b in ((64,) if quick else (64, 256)):
            out.append(("smax/3m", {}, lambda b_, w_: RawSMAX("3m", b_, w_), b, 0, 32 if quick else 64, "jaxmarl"))
    from seqmarl import envs

    names = set(envs.known_envs())
    if "mpe/simple_spread" in names and _available("mpe2"):
        for b in ((32,) if quick else (32, 128)):
            out.append(("mpe/simple_spread", {}, lambda b_, w_: RawMPE("simple_spread", b_, w_), b, 0, 50, "mpe2"))
    if "vmas/balance" in names and _available("vmas"):
        for b in ((256,) if quick else (64, 256)):
            out.append(("vmas/balance", {"continuous_actions": False}, lambda b_, w_: RawVMAS("balance", b_, w_), b, 0,
                        50, "vmas"))
    if "gfootball/academy_3_vs_1_with_keeper" in names and _available("gfootball"):
        out.append(("gfootball/academy_3_vs_1_with_keeper", {},
                    lambda b_, w_: RawGFootball("academy_3_vs_1_with_keeper", b_, w_), 4, 0, 50, "gfootball"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer steps and cases (a smoke run)")
    parser.add_argument("--only", action="append", default=[],
                        help="keep the cases whose label 'env B=b W=w' contains this substring (repeatable)")
    parser.add_argument("--actions", default="policy",
                        help="comma list of collector action sources: policy (MAPPO's actor, default) and/or random "
                             "(uniform over the available actions; the critic and the buffer still run)")
    parser.add_argument("--runs", type=int, default=1,
                        help="measure every case this many times (fresh objects each time); rows give the medians")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    sources = [a.strip() for a in args.actions.split(",") if a.strip()]
    if not sources or any(a not in ("policy", "random") for a in sources):
        parser.error(f"--actions must be a comma list of 'policy' and 'random', got {args.actions!r}")
    selected = [c + (a,) for c in cases(args.quick) for a in sources
                if not args.only or any(o in f"{c[0]} B={c[3]} W={c[4]}" for o in args.only)]
    measured: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(selected))}
    for run in range(args.runs):
        for i, (name, kwargs, raw_builder, b, w, steps, package, source) in enumerate(selected):
            print(f"run {run + 1}/{args.runs}: {name} B={b} W={w} actions={source} ...", file=sys.stderr, flush=True)
            raw = raw_builder(b, w)
            coll = Collector(name, b, w, rollout=min(steps, 64), kwargs=kwargs, actions=source)
            raw.run(max(steps // 4, 2))  # warm-up
            raw_rates, coll_rates = [], []
            for _ in range(args.repeats):
                raw_rates.append(raw.run(steps))
                coll_rates.append(coll.run(steps))
            raw.close()
            coll.close()
            measured[i].append({
                "raw_steps_per_s": statistics.median(raw_rates), "collector_steps_per_s": statistics.median(coll_rates),
                "ratio": statistics.median(cr / rr for cr, rr in zip(coll_rates, raw_rates)),
                "load_average_1m": os.getloadavg()[0],
                "raw_runs": [round(x, 1) for x in raw_rates], "collector_runs": [round(x, 1) for x in coll_rates]})
    rows = []
    for i, (name, kwargs, raw_builder, b, w, steps, package, source) in enumerate(selected):
        runs = measured[i]
        r = statistics.median(x["raw_steps_per_s"] for x in runs)
        c = statistics.median(x["collector_steps_per_s"] for x in runs)
        rows.append({"env": name, "package": package, "num_envs": b, "workers": w, "actions": source,
                     "raw_steps_per_s": round(r, 1),
                     "collector_steps_per_s": round(c, 1),
                     "ratio": round(statistics.median(x["ratio"] for x in runs), 3),
                     "ratio_of_medians": round(c / r, 3),
                     "runs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in x.items()} for x in runs]})
    result = {
        "benchmark": "collector_bench",
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
                    "cpus": os.cpu_count(), "load_average_1m": os.getloadavg()[0]},
        "repeats": args.repeats,
        "runs": args.runs,
        "load_average_1m_before": load_before,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| env | B | W | actions | raw steps/s | collector steps/s | ratio |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['env']} | {row['num_envs']} | {row['workers']} | {row['actions']} | {row['raw_steps_per_s']:.0f} | "
              f"{row['collector_steps_per_s']:.0f} | {row['ratio']:.2f} |")
    print(f"(load average {load_before:.1f} before, {result['machine']['load_average_1m']:.1f} after, on "
          f"{os.cpu_count()} CPUs; ratio = median over {args.runs} run(s) of the median of {args.repeats} paired "
          f"collector/raw measurements; written to {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
