"""The trainer loop, run directories, checkpoint/resume, configs and the train/validate CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seqmarl.algos import known_algorithms, make_agent
from seqmarl.algos.configs import HAPPOConfig, MAPPOConfig, OnPolicyConfig
from seqmarl.cli import main
from seqmarl.config import ConfigError, RunConfig, coerce, parse_overrides, resolve
from seqmarl.envs import make
from seqmarl.train import run
from seqmarl.validate import oracle_run, policy_tables

SMALL = ["algo.hidden=16,16", "algo.lr=0.005", "num_envs=32", "progress=false", "tensorboard=false"]


def _cfg(tmp_path: Path, *extra: str) -> RunConfig:
    return parse_overrides([f"run_dir={tmp_path / 'run'}", *SMALL, *extra])


def test_train_writes_run_directory(tmp_path: Path) -> None:
    trainer, history = run(_cfg(tmp_path, "algo=happo", "env=matrix/xor", "env.n_agents=2", "total_steps=320",
                                "tensorboard=true"))
    run_dir = tmp_path / "run"
    for name in ("config.yaml", "metrics.csv", "metrics.jsonl", "checkpoints/last.pt", "return.png"):
        assert (run_dir / name).exists(), name
    assert list((run_dir / "tb").glob("events.*")), "tensorboard events missing"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == len(history) == 10
    assert rows[-1]["env_steps"] == 320
    assert "env_kwargs:\n  n_agents: 2" in (run_dir / "config.yaml").read_text()


@pytest.mark.parametrize("algo", ["happo", "mappo", "hatrpo"])
def test_resume_reproduces_the_uninterrupted_curve(tmp_path: Path, algo: str) -> None:
    """Train 8 updates straight; separately train 8 with a checkpoint every 3 updates, 'crash' after 6
    (keep only the checkpoint at 6), resume: the metric rows and final weights must be identical."""
    env_args = ["env=matrix/random", "env.n_states=2", "env.gamma=0.9", "rollout_length=4"]
    straight, _ = run(_cfg(tmp_path / "a", f"algo={algo}", *env_args, "total_steps=1024"))
    crashed_cfg = _cfg(tmp_path / "b", f"algo={algo}", *env_args, "total_steps=768", "checkpoint_interval=3")
    run(crashed_cfg)  # 6 updates, checkpoint at 3 and 6
    resumed, _ = run(_cfg(tmp_path / "b", f"algo={algo}", *env_args, "total_steps=1024",
                          f"resume={tmp_path / 'b' / 'run'}"))
    rows_a = [json.loads(x) for x in (tmp_path / "a" / "run" / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(x) for x in (tmp_path / "b" / "run" / "metrics.jsonl").read_text().splitlines()]
    drop = {"sps", "collect_fraction"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows_a] == \
        [{k: v for k, v in r.items() if k not in drop} for r in rows_b]
    for p, q in zip(straight.agent.actors.parameters(), resumed.agent.actors.parameters()):
        assert torch.equal(p, q)


def test_resume_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run(_cfg(tmp_path, "algo=happo", f"resume={tmp_path / 'nowhere'}"))


def test_config_errors_name_the_key_and_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown key 'bogus'.*allowed"):
        parse_overrides(["bogus=1"])
    with pytest.raises(ConfigError, match="seed expects a value of type int"):
        parse_overrides(["seed=abc"])
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["happo"])
    with pytest.raises(ConfigError, match="unknown algo 'hapo'.*happo"):
        resolve(parse_overrides(["algo=hapo"]))
    with pytest.raises(ConfigError, match="unknown env 'matrix/xxx'.*matrix/xor"):
        resolve(parse_overrides(["env=matrix/xxx"]))
    with pytest.raises(ConfigError, match="unknown env.foo for matrix/xor; allowed: .*n_agents"):
        resolve(parse_overrides(["env.foo=1"]))
    with pytest.raises(ConfigError, match="unknown algo.nope for happo"):
        resolve(parse_overrides(["algo.nope=1"]))
    with pytest.raises(ConfigError, match="algo.clip expects a value of type float"):
        resolve(parse_overrides(["algo.clip=wide"]))
    with pytest.raises(ConfigError, match="granularity must be one of"):
        resolve(parse_overrides(["algo.granularity=sideways"]))
    with pytest.raises(ConfigError, match="needs share_param=False"):
        resolve(parse_overrides(["algo=happo", "algo.share_param=true"]))


def test_coerce_types_without_eval() -> None:
    assert coerce("3", int, "x") == 3
    assert coerce("1e-3", float, "x") == 1e-3
    assert coerce("False", bool, "x") is False
    assert coerce("64,64", tuple[int, ...], "x") == (64, 64)
    assert coerce("none", int | None, "x") is None
    with pytest.raises(ConfigError, match="x expects a value of type bool"):
        coerce("maybe", bool, "x")
    with pytest.raises(ConfigError):
        coerce("__import__('os')", int, "x")


def test_env_kwargs_are_typed_from_the_factory_signature() -> None:
    cfg = resolve(parse_overrides(["env=matrix/xor", "env.n_agents=4"]))
    assert cfg.env_kwargs == {"n_agents": 4}
    cfg = resolve(parse_overrides(["env=matrix/penalty", "env.k=-10"]))
    assert cfg.env_kwargs == {"k": -10.0}


@pytest.mark.parametrize("cls", [OnPolicyConfig, HAPPOConfig, MAPPOConfig])
def test_config_validation(cls: type) -> None:
    with pytest.raises(ValueError, match="clip must lie in"):
        cls(clip=1.5)
    with pytest.raises(ValueError, match="gamma must lie in"):
        cls(gamma=1.5)
    with pytest.raises(ValueError, match="lr must be > 0"):
        cls(lr=0.0)
    with pytest.raises(ValueError, match="ppo_epoch must be a positive integer"):
        cls(ppo_epoch=0)


def test_make_agent_rejects_unknown_keys() -> None:
    env = make("matrix/xor", num_envs=4)
    with pytest.raises(TypeError, match="unknown happo config key"):
        make_agent("happo", env.spec, learning_rate=1e-3)
    # a superset check: several algorithms are added in parallel (mat, mat_dec here)
    assert {"mappo", "ippo", "happo", "hatrpo", "haa2c", "ar_mappo", "mat", "mat_dec",
            "iql", "vdn", "qmix", "qplex", "ow_qmix", "cw_qmix"} <= set(known_algorithms())


def test_cli_train_and_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["train", "algo=haa2c", "env=matrix/climbing", "total_steps=160", f"run_dir={tmp_path / 't'}", *SMALL])
    assert rc == 0
    assert (tmp_path / "t" / "checkpoints" / "last.pt").exists()
    rc = main(["validate", "algo=happo", "env=matrix/xor", "total_steps=320", f"run_dir={tmp_path / 'v'}", *SMALL])
    assert rc == 0
    report = json.loads((tmp_path / "v" / "validation.json").read_text())
    assert report["summary"]["J_star"] == 1.0 and report["summary"]["J_star_share"] == 0.5
    assert report["summary"]["is_epsilon_nash"] == (report["nash_gaps"][-1] <= 0.05)
    assert len(report["returns"]) == 11
    assert (tmp_path / "v" / "validation.png").exists()
    assert main(["train", "bogus=1"]) == 2
    assert "unknown key 'bogus'" in capsys.readouterr().out


def test_policy_table_readout_is_exact() -> None:
    """The oracle's tables are the networks' own probabilities at every enumerated state."""
    env = make("matrix/random", n_agents=2, n_actions=[2, 3], n_states=3, gamma=0.5, num_envs=4, seed=1)
    agent = make_agent("happo", env.spec, seed=0, hidden=(8,))
    tables = policy_tables(agent, env)
    assert [t.shape for t in tables] == [(3, 2), (3, 3)]
    obs = env.observation_table()
    for i, table in enumerate(tables):
        for s in range(3):
            dist = agent.actors.distribution_agent(i, obs[s, i][None], env.avail_actions_of_state(s)[i][None])
            assert torch.allclose(dist.probs[0, : table.shape[1]].double(), torch.as_tensor(table[s]), atol=1e-7)


@pytest.mark.parametrize("algo", ["mappo", "ippo", "happo", "hatrpo", "haa2c"])
def test_every_algorithm_runs_on_heterogeneous_and_continuous_envs(algo: str) -> None:
    kw = {"share_param": False} if algo in ("mappo", "ippo") else {}
    report = oracle_run(algo, "matrix/random", env_kwargs={"n_actions": [2, 3], "n_states": 2, "gamma": 0.5},
                        n_updates=2, num_envs=8, rollout_length=3, algo_kwargs=dict(hidden=(8,), **kw))
    assert len(report.returns) == 3
    env = make("gaussian/a1a2", num_envs=16)
    agent = make_agent(algo, env.spec, hidden=(8,), **kw)
    from seqmarl.algos import Trainer, TrainerConfig

    Trainer(env, agent, TrainerConfig(total_steps=32, rollout_length=1, progress=False, tensorboard=False)).train()


@pytest.mark.parametrize("granularity", ["agent_outer", "minibatch_outer"])
@pytest.mark.parametrize("aggregation", ["prod", "mean"])
def test_sequential_variants_run(granularity: str, aggregation: str) -> None:
    env = make("gaussian/a1a2", num_envs=16)
    agent = make_agent("happo", env.spec, hidden=(8,), granularity=granularity, ratio_aggregation=aggregation,
                       actor_num_mini_batch=2, adv_norm="minibatch", fixed_order=True)
    from seqmarl.algos import Trainer, TrainerConfig

    rows = Trainer(env, agent, TrainerConfig(total_steps=32, rollout_length=1, progress=False, tensorboard=False)).train()
    assert len(rows) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none on this machine)")
@pytest.mark.parametrize("algo", ["mappo", "ippo", "happo", "hatrpo", "haa2c"])
def test_every_algorithm_runs_on_cuda(algo: str) -> None:
    report = oracle_run(algo, "matrix/xor", n_updates=3, num_envs=32, device="cuda", algo_kwargs=dict(hidden=(16,)))
    assert len(report.returns) == 4


def test_evaluation_reports_stochastic_and_greedy_returns(tmp_path: Path) -> None:
    """After HAPPO has solved xor(2) the greedy evaluation return is exactly r(0,1) = r(1,0) = 1, and the
    stochastic one is at most 1; both are logged in the metric rows."""
    trainer, history = run(_cfg(tmp_path, "algo=happo", "env=matrix/xor", "total_steps=1280", "eval_interval=20",
                                "eval_episodes=16"))
    last = history[-1]
    assert last["eval_return_greedy"] == 1.0
    assert 0.9 <= last["eval_return_stochastic"] <= 1.0
    assert "eval_return_greedy" not in history[0]


@pytest.mark.parametrize("algo", ["mappo", "ippo", "happo", "hatrpo", "haa2c"])
def test_every_algorithm_implements_the_algorithm_protocol(algo: str) -> None:
    from seqmarl.algos import Algorithm

    env = make("matrix/xor", num_envs=4)
    assert isinstance(make_agent(algo, env.spec), Algorithm)


def test_default_rollout_length_follows_the_episode_limit(tmp_path: Path) -> None:
    from seqmarl.train import build

    for env_name, expected in (("matrix/xor", 1), ("bridge", 30), ("matrix/random", 50)):
        cfg = resolve(_cfg(tmp_path, f"env={env_name}"))
        _, _, trainer = build(cfg)
        assert trainer.config.rollout_length == expected, env_name
