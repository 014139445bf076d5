"""Tuned configs with provenance (issue 8 §6): `seqmarl train config=<name>`, `seqmarl configs`."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import yaml

from seqmarl import tuned
from seqmarl.algos import config_for, known_algorithms
from seqmarl.algos.configs import field_names
from seqmarl.cli import main
from seqmarl.config import RunConfig, resolve
from seqmarl.envs import registry

NAMES = tuned.known_configs()
# issue 8 §6: the tasks that must have a tuned config
REQUIRED_ENVS = {"mamujoco/HalfCheetah-2x3", "mamujoco/HalfCheetah-6x1", "mamujoco/Ant-2x4", "mamujoco/Walker2d-2x3",
                 "mpe/simple_spread", "smax/3m", "smax/2s3z", "smax/smacv2_5_units", "vmas/balance", "vmas/transport"}
EXTRA_MODULE = {"mamujoco": "gymnasium_robotics", "mpe": "mpe2", "vmas": "vmas", "smax": "jaxmarl"}


def _raw(name: str) -> dict:
    return yaml.safe_load((tuned.CONFIG_DIR / f"{name}.yaml").read_text())


def _value_entries(data: dict):
    """Every ``(key, entry)`` of a tuned file that carries a value."""
    yield "algo", data["algo"]
    yield "env", data["env"]
    for section in ("run", "env_kwargs", "algo_kwargs"):
        for key, entry in (data.get(section) or {}).items():
            yield f"{section}.{key}", entry


def test_every_task_of_the_issue_has_a_config() -> None:
    envs = {tuned.load(n).env for n in NAMES}
    assert REQUIRED_ENVS <= envs, f"missing tuned configs for {sorted(REQUIRED_ENVS - envs)}"


@pytest.mark.parametrize("name", NAMES)
def test_config_loads_and_every_key_is_known(name: str) -> None:
    t = tuned.load(name)
    assert t.algo in known_algorithms()
    assert t.env in registry.known_envs()
    assert set(t.algo_kwargs) <= set(field_names(config_for(t.algo)))
    assert set(t.run) <= set(tuned.RUN_KEYS)
    params = registry._parameters(registry._lookup(t.env)) or {}
    assert set(t.env_kwargs) <= set(params) - {"num_envs", "device", "seed"}
    # the run settings the brief names are all given
    assert {"num_envs", "rollout_length", "total_steps", "eval_interval", "eval_episodes"} <= set(t.run)
    # resolving the full config (types, ranges, algorithm constraints) succeeds
    cfg = resolve(tuned.run_config(name, ["progress=false"]))
    assert cfg.algo == t.algo and cfg.env == t.env
    for key, value in t.algo_kwargs.items():
        assert cfg.algo_kwargs[key] == value, key


@pytest.mark.parametrize("name", NAMES)
def test_every_value_has_provenance(name: str) -> None:
    data = _raw(name)
    aliases = data["sources"]
    t = tuned.load(name)
    seen = set()
    for key, entry in _value_entries(data):
        assert isinstance(entry, dict) and set(entry) == {"value", "source"}, f"{name}: {key}"
        source = entry["source"].strip()
        if source.startswith("chosen here:"):
            assert len(source) > len("chosen here:") + 10, f"{name}: {key}: say why it was chosen"
        else:
            alias, _, where = source.partition(":")
            assert alias in aliases and where.strip(), f"{name}: {key}: {source!r}"
            assert "@" in aliases[alias], f"{name}: sources.{alias} must pin a commit (repo@commit path)"
        seen.add(key.replace("env_kwargs.", "env.").replace("algo_kwargs.", "algo."))
    assert seen == set(t.provenance), f"{name}: provenance keys differ from the value keys"


def test_values_match_their_sources_on_spot_checks() -> None:
    """A few numbers read off the cited files (HARL d539bad2, JaxMARL c793d09, BenchMARL 179a956)."""
    hc = tuned.load("happo-halfcheetah-2x3")
    assert (hc.algo_kwargs["clip"], hc.algo_kwargs["ppo_epoch"], hc.algo_kwargs["critic_epoch"]) == (0.05, 15, 15)
    assert hc.algo_kwargs["hidden"] == (128, 128, 128) and hc.run["num_envs"] == 20
    walker = tuned.load("happo-walker2d-2x3")
    assert (walker.algo_kwargs["lr"], walker.algo_kwargs["actor_num_mini_batch"]) == (0.001, 2)
    assert walker.algo_kwargs["linear_lr_decay"] is True and walker.algo_kwargs["entropy_coef"] == 0.0
    assert tuned.load("happo-ant-2x4").algo_kwargs["clip"] == 0.1
    smax = tuned.load("mappo-smax-3m")
    assert (smax.algo_kwargs["lr"], smax.algo_kwargs["max_grad_norm"], smax.run["num_envs"]) == (0.002, 0.25, 128)
    vmas = tuned.load("mappo-vmas-balance")
    assert (vmas.algo_kwargs["gamma"], vmas.algo_kwargs["lr"], vmas.env_kwargs["n_agents"]) == (0.9, 5e-5, 4)


# ------------------------------------------------------------------------------------------ the CLI
def _smoke_args(name: str, run_dir: Path) -> list[str]:
    t = tuned.load(name)
    minibatches = t.algo_kwargs.get("actor_num_mini_batch", 1)
    # recurrent: one env sequence per minibatch; feed-forward: 8 steps x num_envs samples, >= the minibatches
    num_envs = minibatches if t.algo_kwargs.get("use_rnn") else max(2, -(-minibatches // 8))
    return ["train", f"config={name}", f"num_envs={num_envs}", "rollout_length=8", f"total_steps={8 * num_envs}",
            "eval_interval=0", "progress=false", "tensorboard=false", f"run_dir={run_dir}", "seed=3"]


def _smoke_params():
    out = []
    for name in NAMES:
        family = tuned.load(name).env.split("/")[0]
        module = EXTRA_MODULE.get(family)
        marks = []
        if module is not None and importlib.util.find_spec(module) is None:
            marks.append(pytest.mark.skip(reason=f"{module} is not installed (pip install seqmarl[{'mujoco' if family == 'mamujoco' else family}])"))
        if family == "smax":
            marks.append(pytest.mark.slow)  # the jax compile of a map: 7-50 s on a loaded 2-core machine
        out.append(pytest.param(name, marks=marks))
    return out


@pytest.mark.parametrize("name", _smoke_params())
def test_train_config_runs_one_update(name: str, tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    assert main(_smoke_args(name, run_dir)) == 0
    t = tuned.load(name)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert rows and rows[-1]["iteration"] == 1
    finite = [v for k, v in rows[-1].items() if isinstance(v, float) and "loss" in k]
    assert finite and all(math.isfinite(v) for v in finite)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["algo"] == t.algo and saved["env"] == t.env
    assert saved["num_envs"] != t.run["num_envs"]  # the command line wins over the tuned value
    assert saved["seed"] == 3 and saved["rollout_length"] == 8
    for key, value in t.algo_kwargs.items():  # every tuned algorithm value reached the run
        assert (tuple(saved["algo_kwargs"][key]) if isinstance(value, tuple) else saved["algo_kwargs"][key]) == value
    for key, value in t.env_kwargs.items():
        assert saved["env_kwargs"][key] == value
    assert (run_dir / "tuned_config.yaml").read_text() == t.path.read_text()


def test_command_line_overrides_win() -> None:
    cfg = resolve(tuned.run_config("happo-halfcheetah-2x3", ["algo.lr=3e-4", "num_envs=3", "env.normalize=false",
                                                               "progress=false"]))
    assert cfg.algo_kwargs["lr"] == 3e-4 and cfg.num_envs == 3 and cfg.env_kwargs["normalize"] is False
    assert cfg.algo_kwargs["clip"] == 0.05 and cfg.rollout_length == 200  # the rest stays tuned
    assert RunConfig().num_envs != 3


def test_unknown_config_name_exits_2_with_the_list(capsys) -> None:
    assert main(["train", "config=no-such-config"]) == 2
    out = capsys.readouterr()
    text = out.out + out.err
    assert "unknown tuned config 'no-such-config'" in text and "Traceback" not in text
    for name in NAMES:
        assert name in text


def test_config_twice_is_refused(capsys) -> None:
    assert main(["train", f"config={NAMES[0]}", f"config={NAMES[1]}"]) == 2
    assert "config= given 2 times" in capsys.readouterr().out


def test_listing(capsys) -> None:
    assert main(["train", "config=list"]) == 0
    listed = capsys.readouterr().out
    assert main(["configs"]) == 0
    assert capsys.readouterr().out == listed
    for name in NAMES:
        assert name in listed
    assert main(["configs", "happo-halfcheetah-2x3"]) == 0
    shown = capsys.readouterr().out
    assert "algo.clip" in shown and "tuned_configs/mamujoco/HalfCheetah-v2-2x3/happo/config.json : algo.clip_param" in shown
    assert main(["configs", "nope"]) == 2
    assert "unknown tuned config" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ bad files
def _write(tmp_path: Path, mutate) -> Path:
    data = _raw("happo-mpe-simple-spread")
    mutate(data)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_own_file_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: None)
    assert tuned.load(str(path)).algo_kwargs == tuned.load("happo-mpe-simple-spread").algo_kwargs


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["algo_kwargs"]["lr"].pop("source"), "algo_kwargs.lr has no provenance"),
    (lambda d: d["algo_kwargs"].__setitem__("lr", 0.0005), "algo_kwargs.lr must be a mapping"),
    (lambda d: d["run"]["num_envs"].__setitem__("source", "  "), "run.num_envs has no provenance"),
    (lambda d: d["algo_kwargs"]["clip"].__setitem__("source", "somewhere: algo.clip_param"),
     "algo_kwargs.clip: source 'somewhere: algo.clip_param' must start with a declared alias"),
    (lambda d: d["algo_kwargs"]["clip"].__setitem__("source", "chosen here:"), "needs the reason"),
    (lambda d: d["env"].pop("source"), "env has no provenance"),
    (lambda d: d["algo_kwargs"].__setitem__("not_a_field", {"value": 1, "source": "tuned: x"}),
     "algo_kwargs.not_a_field is not a field of HAPPOConfig"),
    (lambda d: d["run"].__setitem__("speed", {"value": 1, "source": "tuned: x"}), "run.speed is not a run setting"),
    (lambda d: d["run"].__setitem__("algo", {"value": "mappo", "source": "tuned: x"}), "run.algo is not a run setting"),
    (lambda d: d["env_kwargs"].__setitem__("n_agents", {"value": 3, "source": "tuned: x"}),
     "env_kwargs.n_agents is not an argument of mpe/simple_spread"),
    (lambda d: d["algo_kwargs"]["lr"].__setitem__("value", "fast"), "lr expects a value of type float"),
    (lambda d: d["algo_kwargs"]["clip"].__setitem__("value", 1.5), "clip must lie in (0, 1)"),
    (lambda d: d["run"]["num_envs"].__setitem__("value", 0), "num_envs must be an integer >= 1"),
    (lambda d: d["env"].__setitem__("value", "mpe/nowhere"), "unknown environment 'mpe/nowhere'"),
    (lambda d: d["algo"].__setitem__("value", "nope"), "unknown algorithm 'nope'"),
    (lambda d: d.__setitem__("hyper", {}), "unknown top-level keys ['hyper']"),
    (lambda d: d.pop("sources"), "missing top-level key 'sources'"),
    (lambda d: d["sources"].__setitem__("extra", "someone/repo@abc file"),
     "sources ['extra'] are declared but no value cites them"),
])
def test_bad_file_is_refused_naming_file_and_key(tmp_path: Path, mutate, message: str, capsys) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(tuned.TunedConfigError) as info:
        tuned.load(str(path))
    assert message in str(info.value) and str(path) in str(info.value)
    assert main(["train", f"config={path}", "progress=false", f"run_dir={tmp_path / 'r'}"]) == 2  # CLI: exit 2
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err and not (tmp_path / "r").exists()
