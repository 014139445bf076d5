"""Divergence guard, float32 reward overflow, weights_only checkpoints and safe YAML (issue 13)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from seqmarl.algos.trainer import CheckpointError, DivergenceError, read_checkpoint
from seqmarl.config import ConfigError, load_run_config, parse_overrides
from seqmarl.train import run

SMALL = ["algo.hidden=8", "num_envs=8", "progress=false", "tensorboard=false", "rollout_length=1"]


def _poison_at(iteration: int):
    """A wrapper of ``agent.update`` that writes NaN into an actor weight at update ``iteration``."""
    def wrap(agent):  # noqa: ANN001, ANN202
        original = agent.update

        def update(buffer):  # noqa: ANN001, ANN202
            out = original(buffer)
            if agent.n_updates == iteration:
                with torch.no_grad():
                    next(agent.actors.parameters()).fill_(float("nan"))
            return out
        agent.update = update
    return wrap


def test_divergence_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cfg = parse_overrides([f"run_dir={run_dir}", "algo=happo", "total_steps=48", "checkpoint_interval=2", *SMALL])
    from seqmarl.algos.onpolicy import OnPolicyAgent

    original_init = OnPolicyAgent.__init__

    def init(self, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        original_init(self, *a, **k)
        _poison_at(3)(self)

    OnPolicyAgent.__init__ = init  # type: ignore[method-assign]
    try:
        with pytest.raises(DivergenceError, match=r"diverged at update 3 .*non-finite actor parameters.*algo.lr="
                                                  r".*last good checkpoint .*update 2\) is kept"):
            run(cfg)
    finally:
        OnPolicyAgent.__init__ = original_init  # type: ignore[method-assign]
    state = read_checkpoint(run_dir)
    assert state["iteration"] == 2
    assert all(torch.isfinite(t).all() for t in state["agent"]["actors"].values())
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2]
    assert all(math.isfinite(v) for r in rows for k, v in r.items() if k != "episode_return" and isinstance(v, float))


def test_a_non_finite_loss_is_caught(tmp_path: Path) -> None:
    from seqmarl.algos import Trainer, TrainerConfig, make_agent
    from seqmarl.envs import make

    env = make("matrix/xor", num_envs=4)
    agent = make_agent("happo", env.spec, hidden=(8,))
    original = agent.update
    agent.update = lambda b: {**original(b), "actor_loss": float("inf")}  # type: ignore[method-assign]
    trainer = Trainer(env, agent, TrainerConfig(total_steps=8, rollout_length=1, progress=False), run_dir=None)
    with pytest.raises(DivergenceError, match="update 1 .*actor_loss=inf.*no checkpoint was written"):
        trainer.train()


def test_float32_overflow_of_a_finite_reward_names_the_reward_scale() -> None:
    from seqmarl.config import resolve
    from seqmarl.envs import MatrixGameEnv
    from seqmarl.theory import games

    with pytest.raises(ValueError, match=r"game.reward reaches \|r\| = 1e\+39.*float32.*reward scale"):
        MatrixGameEnv(games.penalty(-1e39))
    from seqmarl.train import build

    with pytest.raises(ConfigError, match="reward scale"):
        build(resolve(parse_overrides(["env=matrix/penalty", "env.k=-1e39"])))


class _Evil:
    def __reduce__(self):  # noqa: ANN204
        return (Path.write_text, (Path(_Evil.marker), "pwned"))

    marker = ""


def test_a_crafted_pickle_checkpoint_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    _Evil.marker = str(marker)
    ckpt = tmp_path / "evil.pt"
    torch.save({"agent": _Evil(), "iteration": 0}, ckpt)
    with pytest.raises(CheckpointError, match="weights_only=True, nothing was executed"):
        read_checkpoint(ckpt)
    assert not marker.exists()
    run_dir = tmp_path / "run"
    run(parse_overrides([f"run_dir={run_dir}", "algo=happo", "total_steps=16", *SMALL]))
    (run_dir / "checkpoints" / "last.pt").write_bytes(ckpt.read_bytes())
    with pytest.raises(CheckpointError, match="nothing was executed"):
        run(parse_overrides([f"run_dir={run_dir}", f"resume={run_dir}", "total_steps=32", *SMALL]))
    assert not marker.exists()


@pytest.mark.parametrize("extra", [[], ["algo.use_rnn=true", "algo.rnn_hidden=4"], ["env=gaussian/a1a2"]])
def test_checkpoints_load_with_weights_only(tmp_path: Path, extra: list[str]) -> None:
    """RNG states, env state, the last step and the metadata are all tensors and plain types."""
    run_dir = tmp_path / "run"
    run(parse_overrides([f"run_dir={run_dir}", "algo=happo", "total_steps=16", *SMALL, *extra]))
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert isinstance(state["torch_rng"], torch.Tensor) and isinstance(state["agent"]["generator"], torch.Tensor)
    assert isinstance(state["step"], dict) and state["format"] == 2


def test_config_yaml_is_read_with_the_safe_loader(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    bad = tmp_path / "config.yaml"
    bad.write_text(f"algo: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_run_config(bad)
    assert not marker.exists()
    sources = "".join(p.read_text() for p in Path(__file__).parents[2].glob("seqmarl/*.py"))
    sources += (Path(__file__).parents[2] / "algos" / "trainer.py").read_text()
    for unsafe in ("yaml.load(", "yaml.unsafe_load", "yaml.full_load", "weights_only=False"):
        assert unsafe not in sources, unsafe
