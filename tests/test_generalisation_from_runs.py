"""``benchmarks/generalisation.py --from-runs``: a finished ``seqmarl train`` run is rebuilt from its config.yaml and
last checkpoint (the very weights the run ended with) and evaluated intact and with each MaMuJoCo agent broken."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

pytest.importorskip("gymnasium_robotics")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "generalisation.py"


def _module():
    spec = importlib.util.spec_from_file_location("generalisation_script_runs", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_run_is_rebuilt_with_its_final_weights_and_evaluated_broken(tmp_path: Path) -> None:
    from seqmarl.algos.trainer import read_checkpoint
    from seqmarl.cli import main

    run = tmp_path / "run"
    assert main(["train", "algo=happo", "env=mamujoco/HalfCheetah-2x3", "num_envs=2", "rollout_length=20",
                 "total_steps=40", "eval_interval=0", "progress=false", "tensorboard=false", "algo.hidden=(8,8)",
                 "env.episode_limit=20", f"run_dir={run}"]) == 0
    gen = _module()
    cfg, agent = gen.load_run(run)
    saved = read_checkpoint(run / "checkpoints" / "last.pt")["agent"]
    fresh = gen.make_agent(cfg.algo, agent.spec, seed=cfg.seed + 1, **cfg.algo_kwargs)
    mine = agent.state_dict()
    flat = lambda sd: torch.cat([v.flatten().double() for _, v in sorted(_tensors(sd))])  # noqa: E731
    assert torch.equal(flat(mine), flat(saved)) and not torch.equal(flat(mine), flat(fresh.state_dict()))
    res = gen.evaluate_runs([run], episodes=1)
    per = res["happo on mamujoco/HalfCheetah-2x3"]
    assert set(per) == set(gen.MUJOCO_EVALS)
    # intact = the loaded agent's greedy return on the run's own env (the evaluation is deterministic)
    again = gen.evaluate(agent, cfg.env, {**cfg.env_kwargs, "broken_agents": ()}, 1, seed=10_000 + cfg.seed)
    assert per["intact"]["return"] == again["return"]
    assert all(len(rec["seeds"]) == 1 for rec in per.values())


def test_an_env_without_an_evaluation_is_refused(tmp_path: Path) -> None:
    from seqmarl.cli import main

    run = tmp_path / "run"
    assert main(["train", "algo=mappo", "env=matrix/xor", "num_envs=4", "total_steps=8", "progress=false",
                 "tensorboard=false", f"run_dir={run}"]) == 0
    with pytest.raises(ValueError, match="no generalisation evaluation"):
        _module().evaluate_runs([run], episodes=1)


def _tensors(sd, prefix=""):
    for k, v in sd.items():
        if isinstance(v, dict):
            yield from _tensors(v, f"{prefix}{k}.")
        elif isinstance(v, torch.Tensor):
            yield f"{prefix}{k}", v
