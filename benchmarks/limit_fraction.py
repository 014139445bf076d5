"""How close training runs to the machine's limit: steps/s as a fraction of the larger of two floors (issue 11 §2).

    python benchmarks/limit_fraction.py [--cases mappo:halfcheetah6x1,happo:smax3m,...] [--threads 1]
        [--iterations 3] [--raw-steps 200] [--workers 0] [--gemm executed|shapes|square] [--out PATH]

Units: one **env step** is one transition of one environment instance, so a batch of ``B`` instances stepped once
is ``B`` env steps, and one update of ``T`` rollout steps consumes ``S = B * T`` env steps.

For each (algorithm, env) case, measured in the same process with the same batch ``B``, workers ``W`` and torch
threads:

* **env floor** ``t_env`` (seconds per env step): the package stepped directly with random actions, no seqmarl code
  (``benchmarks/collector_bench.py``'s ``RawMaMuJoCo`` / ``RawSMAX`` / ``RawMPE`` / ``RawVMAS``, imported; MPE and
  VMAS with the run's env arguments: its action type, episode length, scenario values), ``t_env = 1 / raw_sps``. For
  MaMuJoCo with ``env.obs=state+id`` the floor is the package's underlying single-agent MuJoCo env stepped alone
  (the state is its observation; the adapter does not build the agents' observations that ``mamujoco_v1``'s own
  ``step`` computes and that mode never reads), the stricter floor; for MPE it is mpe2's world step without
  PettingZoo's parallel wrapper (``seqmarl.envs.mpe.mpe2_cycle_step``, what the adapter runs: the wrapper computes
  and discards one observation per agent); the package-step rate is recorded too (``raw_env_sps_package_step``).
* **update floor** ``t_upd = F / (G * S)`` (seconds per env step): ``F`` = the floating-point operations of one
  real update of the agent (every forward and backward of every epoch and minibatch, actors and critic), counted
  by ``torch.utils.flop_counter.FlopCounterMode`` over ``agent.update(rollout)`` on a rollout the trainer
  collected (matrix products only: ``mm``/``addmm``/``bmm``/convolutions, ``2 * M * K * N`` each; element-wise
  work, Adam, the GAE are not counted, so this is a lower bound on the update's work); ``G`` = the measured
  ``torch.mm`` throughput in FLOP/s on the same threads. ``--gemm executed`` (default): ``G`` is measured on the
  products the update really runs — every ``mm``/``addmm``/``bmm`` of one update is recorded with its shape (a
  ``TorchDispatchMode``; a shared actor's ``n * S`` rows, a minibatch's ``S / m``, a recurrent step's ``B``), each
  distinct shape is timed alone, and ``G`` = their FLOPs over the time they take at those speeds (so
  ``F / G`` is the update's products run back to back at the machine's speed); ``--gemm shapes`` times
  ``[S, in] @ [in, out]`` for every ``nn.Linear(in, out)`` of the agent (the earlier default: too slow a rate where
  the update runs larger products, e.g. a shared actor on ``n * S`` rows); ``--gemm square`` uses a square
  ``1024^3`` product (the best case). All three are recorded.
* **limit** ``L = 1 / max(t_env, t_upd)`` env steps per second: the rate that the slower of the two would allow
  if the other cost nothing (the issue's definition; ``serial_limit = 1 / (t_env + t_upd)``, the rate with the two
  done one after the other, is recorded too).
* **measured** ``R``: a real short training with the case's configuration (``seqmarl.train.build``: one warm-up
  update, then ``--iterations`` timed collect + update iterations): ``R = iterations * S / seconds``; its split
  into collection and update seconds per env step is recorded.
* **fraction** ``R / L`` (target >= 0.5 for MAPPO/HAPPO on HalfCheetah 6x1 and SMAX 3m); ``serial_fraction``
  ``R * (t_env + t_upd)`` against the serial limit.

Cases (``--cases``, ``algo:env`` pairs): MAPPO and HAPPO on ``mamujoco/HalfCheetah-6x1`` (``preset=harl``, HARL's
full-state + agent-id observation ``env.obs=state+id``: ``B = 20``, ``T = 200``) and on ``smax/3m``
(``preset=harl``, ``B = 20``, ``T = 200``); ``mappo:smax3m-tuned`` is the tuned config ``mappo-smax-3m``
(JaxMARL's recurrent MAPPO values, ``B = 128``, ``T = 128``); HAPPO and MAPPO on ``mpe/simple_spread`` (HARL's tuned
config ``happo-mpe-simple-spread``, continuous actions, ``B = 20``, ``T = 200``; MAPPO with HARL's shared actor) and
on ``vmas/balance`` (BenchMARL's values ``mappo-vmas-balance``, ``B = 600``, ``T = 100``; HAPPO with separate
actors). SMAX is stepped by jax on its own CPU threads.
Writes JSON (default ``benchmarks/results/limit_fraction.json``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "limit_fraction.json"


# ----------------------------------------------------------------------------------------------- arithmetic
def _positive(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def update_seconds_per_step(flops_per_update: float, steps_per_update: int, flops_per_second: float) -> float:
    """``t_upd = F / (G * S)``: seconds per env step that ``F`` FLOPs per update of ``S`` env steps take at ``G``
    FLOP/s."""
    f = _positive(flops_per_update, "flops_per_update")
    s = _positive(steps_per_update, "steps_per_update")
    g = _positive(flops_per_second, "flops_per_second")
    return f / (g * s)


def limit_steps_per_second(env_seconds_per_step: float, update_seconds_per_step_: float) -> float:
    """``L = 1 / max(t_env, t_upd)`` env steps per second."""
    return 1.0 / max(_positive(env_seconds_per_step, "env_seconds_per_step"),
                     _positive(update_seconds_per_step_, "update_seconds_per_step"))


def serial_limit_steps_per_second(env_seconds_per_step: float, update_seconds_per_step_: float) -> float:
    """``1 / (t_env + t_upd)``: the floors done one after the other."""
    return 1.0 / (_positive(env_seconds_per_step, "env_seconds_per_step")
                  + _positive(update_seconds_per_step_, "update_seconds_per_step"))


def fraction_of_limit(measured_steps_per_second: float, limit: float) -> float:
    """``R / L``."""
    return _positive(measured_steps_per_second, "measured_steps_per_second") / _positive(limit, "limit")


def mlp_forward_flops(batch: int, sizes: Sequence[int]) -> int:
    """Matrix-product FLOPs of an MLP forward ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` on ``batch`` rows:
    ``2 * B * sum_l in_l * out_l`` (a multiply and an add per weight per row; biases and activations excluded)."""
    if batch < 1 or len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"batch must be >= 1 and sizes at least two positive widths, got {batch}, {list(sizes)}")
    return 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


# ----------------------------------------------------------------------------------------------- measurements
def count_flops(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Total FLOPs ``FlopCounterMode`` attributes to ``fn()`` (forward and backward), and ``fn``'s result."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        result = fn()
    return int(counter.get_total_flops()), result


class _GemmShapes(TorchDispatchMode):
    """Counts the shape of every matrix product run under it: ``{(B, M, K, N): count}`` for ``aten.mm`` /
    ``aten.addmm`` (``B = 1``) and ``aten.bmm`` — the products ``FlopCounterMode`` counts, with their real row counts
    (a shared actor multiplies ``n * S`` rows, a minibatch ``S / m``, a recurrent step ``B``)."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        packet = getattr(func, "_overloadpacket", None)
        if packet in (torch.ops.aten.mm, torch.ops.aten.addmm):
            a, b = args[-2:] if packet is torch.ops.aten.addmm else args[:2]
            self.shapes[(1, a.shape[0], a.shape[1], b.shape[1])] += 1
        elif packet is torch.ops.aten.bmm:
            a, b = args[0], args[1]
            self.shapes[(a.shape[0], a.shape[1], a.shape[2], b.shape[2])] += 1
        return func(*args, **(kwargs or {}))


def record_gemm_shapes(fn: Callable[[], Any]) -> tuple[dict[tuple[int, int, int, int], int], Any]:
    """``({(B, M, K, N): count}, fn())``: every matrix product ``fn`` runs (forward and backward), by shape."""
    if not callable(fn):
        raise TypeError(f"fn must be a callable of no arguments, got {type(fn).__name__}")
    with _GemmShapes() as rec:
        result = fn()
    return dict(rec.shapes), result


def executed_gemm_seconds(shapes: dict[tuple[int, int, int, int], int], min_seconds: float = 0.5,
                          seed: int = 0) -> tuple[float, float]:
    """``(seconds, flops)`` of the recorded products at this machine's measured speed: each distinct shape is timed
    alone (``torch.mm``, or ``torch.bmm`` for ``B > 1``; one warm-up product, then repeated for its share of
    ``min_seconds``, at least once) and ``seconds = sum count * time per product``; ``flops = sum count * 2BMKN``."""
    _positive(min_seconds, "min_seconds")
    for shape, count in shapes.items():
        if (len(shape) != 4 or any(not isinstance(d, int) or d < 1 for d in shape)
                or not isinstance(count, int) or count < 1):
            raise ValueError(f"shapes must map (B, M, K, N) tuples of positive ints to positive int counts, got "
                             f"{shape!r}: {count!r}")
    gen = torch.Generator().manual_seed(seed)
    seconds = flops = 0.0
    share = min_seconds / max(len(shapes), 1)
    for (bb, m, k, n), count in shapes.items():
        a = torch.randn(bb, m, k, generator=gen) if bb > 1 else torch.randn(m, k, generator=gen)
        b = torch.randn(bb, k, n, generator=gen) if bb > 1 else torch.randn(k, n, generator=gen)
        op = torch.bmm if bb > 1 else torch.mm
        op(a, b)
        reps, t0 = 0, time.perf_counter()
        while True:
            op(a, b)
            reps += 1
            dt = time.perf_counter() - t0
            if dt >= share:
                break
        seconds += count * dt / reps
        flops += count * 2.0 * bb * m * k * n
    return seconds, flops


def linear_shapes(modules: Sequence[torch.nn.Module], rows: int) -> list[tuple[int, int, int]]:
    """``(M, K, N) = (rows, in, out)`` for every distinct ``nn.Linear`` and GRU gate product in ``modules``."""
    shapes: set[tuple[int, int, int]] = set()
    for module in modules:
        for m in module.modules():
            if isinstance(m, torch.nn.Linear):
                shapes.add((rows, m.in_features, m.out_features))
            elif isinstance(m, (torch.nn.GRU, torch.nn.GRUCell)):
                shapes.add((rows, m.input_size, 3 * m.hidden_size))
                shapes.add((rows, m.hidden_size, 3 * m.hidden_size))
    return sorted(shapes)


def gemm_flops_per_second(shapes: Sequence[tuple[int, int, int]], min_seconds: float = 0.3, seed: int = 0) -> float:
    """Measured ``torch.mm`` throughput (FLOP/s) over the shapes: ``sum 2*M*K*N*reps / sum seconds``, each shape
    repeated until it has run ``min_seconds / len(shapes)`` (after one warm-up product)."""
    gen = torch.Generator().manual_seed(seed)
    flops = 0.0
    seconds = 0.0
    for m, k, n in shapes:
        a = torch.randn(m, k, generator=gen)
        b = torch.randn(k, n, generator=gen)
        torch.mm(a, b)
        reps = 0
        t0 = time.perf_counter()
        while True:
            torch.mm(a, b)
            reps += 1
            dt = time.perf_counter() - t0
            if dt >= min_seconds / len(shapes):
                break
        flops += 2.0 * m * k * n * reps
        seconds += dt
    return flops / seconds


@dataclass(frozen=True)
class Case:
    key: str
    algo: str
    env: str
    overrides: tuple[str, ...]
    raw: str  # "mamujoco" | "smax" | "mpe" | "jaxmarl_mpe" | "vmas"


CASES: dict[str, Case] = {
    "mappo:halfcheetah6x1": Case("mappo:halfcheetah6x1", "mappo", "mamujoco/HalfCheetah-6x1",
                                 ("algo=mappo", "env=mamujoco/HalfCheetah-6x1", "env.obs=state+id", "preset=harl"),
                                 "mamujoco"),
    "happo:halfcheetah6x1": Case("happo:halfcheetah6x1", "happo", "mamujoco/HalfCheetah-6x1",
                                 ("algo=happo", "env=mamujoco/HalfCheetah-6x1", "env.obs=state+id", "preset=harl"),
                                 "mamujoco"),
    "mappo:smax3m": Case("mappo:smax3m", "mappo", "smax/3m", ("algo=mappo", "env=smax/3m", "preset=harl"), "smax"),
    "happo:smax3m": Case("happo:smax3m", "happo", "smax/3m", ("algo=happo", "env=smax/3m", "preset=harl"), "smax"),
    "mappo:smax3m-tuned": Case("mappo:smax3m-tuned", "mappo", "smax/3m", ("config=mappo-smax-3m",), "smax"),
    # HARL's tuned MPE values (continuous actions; MAPPO: HARL's shared actor) and BenchMARL's VMAS values
    "happo:mpe_spread": Case("happo:mpe_spread", "happo", "mpe/simple_spread", ("config=happo-mpe-simple-spread",),
                             "mpe"),
    "mappo:mpe_spread": Case("mappo:mpe_spread", "mappo", "mpe/simple_spread",
                             ("config=happo-mpe-simple-spread", "algo=mappo", "algo.share_param=true"), "mpe"),
    # the same task on jaxmarl's JAX MPE (envs/jaxmarl_mpe.py: equal to mpe2's simple_spread, tested)
    "happo:jaxmpe_spread": Case("happo:jaxmpe_spread", "happo", "jaxmarl_mpe/simple_spread",
                                ("config=happo-mpe-simple-spread", "env=jaxmarl_mpe/simple_spread"), "jaxmarl_mpe"),
    "mappo:jaxmpe_spread": Case("mappo:jaxmpe_spread", "mappo", "jaxmarl_mpe/simple_spread",
                                ("config=happo-mpe-simple-spread", "env=jaxmarl_mpe/simple_spread", "algo=mappo",
                                 "algo.share_param=true"), "jaxmarl_mpe"),
    "mappo:vmas_balance": Case("mappo:vmas_balance", "mappo", "vmas/balance", ("config=mappo-vmas-balance",), "vmas"),
    "happo:vmas_balance": Case("happo:vmas_balance", "happo", "vmas/balance",
                               ("config=mappo-vmas-balance", "algo=happo", "algo.share_param=false"), "vmas"),
}
DEFAULT_CASES = ("mappo:halfcheetah6x1", "happo:halfcheetah6x1", "mappo:smax3m", "happo:smax3m", "happo:mpe_spread",
                 "mappo:mpe_spread", "happo:jaxmpe_spread", "mappo:jaxmpe_spread", "mappo:vmas_balance",
                 "happo:vmas_balance")


def raw_env_sps(case: Case, num_envs: int, workers: int, steps: int, single_agent: bool = False,
                env_kwargs: dict[str, Any] | None = None) -> float:
    """The package alone, ``B`` instances, ``W`` workers (collector_bench's raw loops): env steps per second.
    ``single_agent`` (MaMuJoCo): the underlying single-agent env stepped alone (see ``collector_bench``).
    ``env_kwargs`` (MPE, VMAS): the run's env arguments, so that the package runs the same task (action type,
    episode length, VMAS scenario arguments)."""
    import collector_bench as cb  # benchmarks/ is a folder of scripts: imported from the path set above

    kw = dict(env_kwargs or {})

    name = case.env.split("/")[1]
    if case.raw == "mamujoco":
        scenario, conf = name.split("-")
        raw = cb.RawMaMuJoCo(scenario, conf, num_envs, workers, single_agent=single_agent)
    elif case.raw == "smax":
        raw = cb.RawSMAX(name, num_envs, workers)
    elif case.raw == "mpe":  # single_agent: the unrolled cycle step (the world step alone, see RawMPE)
        raw = cb.RawMPE(name, num_envs, workers, continuous=bool(kw.get("continuous_actions", False)),
                        max_cycles=int(kw.get("max_cycles", 25)), unrolled=single_agent)
    elif case.raw == "jaxmarl_mpe":
        raw = cb.RawJaxMPE(name, num_envs, workers, continuous=bool(kw.get("continuous_actions", False)),
                           max_cycles=int(kw.get("max_cycles", 25)), N=int(kw.get("N", 3)),
                           local_ratio=float(kw.get("local_ratio", 0.5)))
    elif case.raw == "vmas":
        continuous = bool(kw.pop("continuous_actions", True))
        raw = cb.RawVMAS(name, num_envs, workers, continuous=continuous, max_steps=int(kw.pop("max_steps", 100)), **kw)
    else:
        raise ValueError(f"unknown raw env kind {case.raw!r}")
    try:
        raw.run(max(2, steps // 10))  # warm-up
        return float(raw.run(steps))
    finally:
        raw.close()


def _actor_critic_modules(agent: Any) -> list[torch.nn.Module]:
    return [m for m in vars(agent).values() if isinstance(m, torch.nn.Module)] + \
        [m for v in vars(agent).values() if isinstance(v, (list, tuple, torch.nn.ModuleList))
         for m in v if isinstance(m, torch.nn.Module)]


def measure_case(case: Case, iterations: int, raw_steps: int, workers: int, gemm_mode: str) -> dict[str, Any]:
    from seqmarl.config import resolve
    from seqmarl.train import build
    from seqmarl.tuned import parse_train_args

    with tempfile.TemporaryDirectory(prefix="limit_fraction_") as tmp:
        extra = [f"env.workers={workers}"] if workers and case.raw == "mamujoco" else []
        cfg = resolve(parse_train_args([*case.overrides, *extra, "seed=0", "progress=false", "tensorboard=false",
                                        f"run_dir={tmp}/run", "eval_interval=0"]))
        env, agent, trainer = build(cfg)
        try:
            b, t = env.num_envs, trainer.config.rollout_length
            steps_per_update = b * t
            trainer.train_iteration()  # warm-up: reset, JIT, buffers, first optimiser state
            rollout = trainer.collect()
            flops, _ = count_flops(lambda: agent.update(rollout))
            rollout = trainer.collect()
            executed, _ = record_gemm_shapes(lambda: agent.update(rollout))
            t0 = time.perf_counter()
            collect_s = 0.0
            for _ in range(iterations):
                row = trainer.train_iteration()
                collect_s += row["collect_fraction"] * steps_per_update / row["sps"]
            seconds = time.perf_counter() - t0
            # the update's own wall time (no FLOP counter), for the breakdown
            rollout = trainer.collect()
            u0 = time.perf_counter()
            agent.update(rollout)
            update_wall = time.perf_counter() - u0
            modules = _actor_critic_modules(agent)
        finally:
            close = getattr(env, "close", None)
            if close is not None:
                close()
    shapes = linear_shapes(modules, steps_per_update)
    g_shapes = gemm_flops_per_second(shapes)
    g_square = gemm_flops_per_second([(1024, 1024, 1024)])
    ex_seconds, ex_flops = executed_gemm_seconds(executed)
    g_executed = ex_flops / ex_seconds
    g = {"executed": g_executed, "shapes": g_shapes, "square": g_square}[gemm_mode]
    w_raw = workers if case.raw == "mamujoco" else 0
    env_kwargs = cfg.env_kwargs if case.raw in ("mpe", "jaxmarl_mpe", "vmas") else None
    raw_package_sps = raw_env_sps(case, b, w_raw, raw_steps, env_kwargs=env_kwargs)
    # state+id reads only the state, so its floor is the single-agent MuJoCo step (the adapter skips the agents'
    # observations that mamujoco_v1's own step builds); the package-step floor is recorded beside it
    state_only = "env.obs=state+id" in case.overrides
    strict = state_only or case.raw == "mpe"  # MPE: the adapter steps mpe2 without PettingZoo's parallel wrapper
    raw_sps = (raw_env_sps(case, b, w_raw, raw_steps, single_agent=True, env_kwargs=env_kwargs) if strict
               else raw_package_sps)
    t_env = 1.0 / raw_sps
    t_upd = update_seconds_per_step(flops, steps_per_update, g)
    limit = limit_steps_per_second(t_env, t_upd)
    measured = iterations * steps_per_update / seconds
    return {
        "case": case.key, "algo": case.algo, "env": case.env, "overrides": list(case.overrides) + extra,
        "num_envs": b, "rollout_length": t, "workers": workers if case.raw == "mamujoco" else 0,
        "steps_per_update": steps_per_update, "update_flops": flops, "gemm_mode": gemm_mode,
        "gemm_gflops_shapes": g_shapes / 1e9, "gemm_gflops_square_1024": g_square / 1e9, "gemm_shapes": shapes,
        "gemm_gflops_executed": g_executed / 1e9, "executed_gemm_flops": ex_flops,
        "executed_gemm_shapes": [[*k, v] for k, v in sorted(executed.items())],
        "raw_env_sps": raw_sps,
        "raw_env_floor": "single-agent step" if state_only else "unrolled cycle step" if strict else "package step",
        "raw_env_sps_package_step": raw_package_sps, "env_seconds_per_step": t_env, "update_seconds_per_step_at_gemm": t_upd,
        "limit_sps": limit, "serial_limit_sps": serial_limit_steps_per_second(t_env, t_upd), "measured_sps": measured,
        "fraction": fraction_of_limit(measured, limit),
        "serial_fraction": fraction_of_limit(measured, serial_limit_steps_per_second(t_env, t_upd)),
        "measured_collect_seconds_per_step": collect_s / (iterations * steps_per_update),
        "measured_update_seconds_per_step": (seconds - collect_s) / (iterations * steps_per_update),
        "update_wall_seconds": update_wall, "update_gflops_achieved": flops / update_wall / 1e9,
        "binding_floor": "env" if t_env >= t_upd else "update",
    }


def _package_step_note(row: dict[str, Any]) -> str:
    """`` (single-agent step; package step N)`` where the floor is stricter than the package's own step (the
    single-agent MuJoCo step, or MPE's unrolled cycle step)."""
    floor = row.get("raw_env_floor")
    if floor not in ("single-agent step", "unrolled cycle step"):
        return ""
    return f" ({floor}; package step {row['raw_env_sps_package_step']:,.0f})"


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| algo | env | B×T | W | measured steps/s | env floor steps/s "
             "| update floor steps/s (GFLOP/update @ GFLOP/s) | limit | fraction | fraction of serial limit "
             "| collect / update ms per 1k steps |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gemm = r[{"executed": "gemm_gflops_executed", "shapes": "gemm_gflops_shapes",
                  "square": "gemm_gflops_square_1024"}[r["gemm_mode"]]]
        lines.append(
            f"| {r['algo']} | {r['case'].split(':')[1]} | {r['num_envs']}×{r['rollout_length']} | {r['workers']} "
            f"| {r['measured_sps']:,.0f} | {r['raw_env_sps']:,.0f}{_package_step_note(r)} "
            f"| {1 / r['update_seconds_per_step_at_gemm']:,.0f} "
            f"({r['update_flops'] / 1e9:.2f} @ {gemm:.1f}) "
            f"| {r['limit_sps']:,.0f} | {r['fraction']:.0%} | {r['serial_fraction']:.0%} "
            f"| {1e6 * r['measured_collect_seconds_per_step']:.0f} "
            f"/ {1e6 * r['measured_update_seconds_per_step']:.0f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", default=",".join(DEFAULT_CASES), help=f"comma-separated, from {', '.join(CASES)}")
    p.add_argument("--threads", type=int, default=1, help="torch threads for training and the GEMM measurement")
    p.add_argument("--iterations", type=int, default=3, help="timed collect + update iterations per case")
    p.add_argument("--raw-steps", type=int, default=200, help="batched raw env steps per raw measurement")
    p.add_argument("--workers", type=int, default=0, help="env worker processes (MaMuJoCo; SMAX has none)")
    p.add_argument("--gemm", choices=("executed", "shapes", "square"), default="executed")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    args.case_list = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in args.case_list if c not in CASES]
    if not args.case_list or bad:
        p.error(f"--cases must be a comma-separated subset of {','.join(CASES)}, got {args.cases!r}")
    for name in ("threads", "iterations", "raw_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.workers < 0:
        p.error(f"--workers must be >= 0, got {args.workers}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for key in args.case_list:
        row = measure_case(CASES[key], args.iterations, args.raw_steps, args.workers, args.gemm)
        print(f"{key}: {row['measured_sps']:.0f} steps/s of limit {row['limit_sps']:.0f} ({row['fraction']:.0%}, "
              f"{row['binding_floor']} floor)", flush=True)
        rows.append(row)
    out = {"script": "benchmarks/limit_fraction.py", "argv": sys.argv[1:], "threads": args.threads,
           "torch": torch.__version__, "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                                   "loadavg_at_end": os.getloadavg()},
           "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(table(rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
