"""A CLI that explains itself, packaging metadata and determinism of run files (issue 13)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from seqmarl.cli import main
from seqmarl.config import parse_overrides
from seqmarl.train import run


@pytest.mark.parametrize("command", ["train", "validate"])
def test_help_lists_algorithms_envs_and_top_level_defaults(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    from seqmarl.algos import known_algorithms

    assert "algorithms: " + ", ".join(known_algorithms()) in out
    assert {"happo", "mappo", "qmix", "vdn"} <= set(known_algorithms())
    assert "matrix/xor" in out and "bridge" in out and "gaussian/a1a2" in out
    for line in ("total_steps=20000", "num_envs=64", "checkpoint_interval=10", "rollout_length=none", "seed=0",
                 "progress=true", "preset=none"):
        assert f"  {line}" in out, line


@pytest.mark.parametrize("argv", [["config", "happo"], ["train", "algo=happo", "--help"]])
def test_algorithm_fields_with_defaults_and_sources(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "algo=happo (HAPPOConfig)" in out
    assert "  lr=0.0005  — actor Adam step size (5e-4 — HARL" in out
    assert "  hidden=128,128" in out and "  fixed_order=false" in out
    assert "layer_norm=false" in out and "mlp.py" in out  # the source of a HARL-fidelity option


def test_config_unknown_algorithm(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "hapo"]) == 2
    assert "unknown algo 'hapo'" in capsys.readouterr().err


def test_license_is_an_spdx_string() -> None:
    meta = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    assert int(meta["build-system"]["requires"][0].split(">=")[1]) >= 77


def test_two_runs_with_the_same_seed_write_identical_metric_files(tmp_path: Path) -> None:
    args = ["algo=happo", "env=matrix/random", "env.n_states=2", "rollout_length=2", "num_envs=8", "algo.hidden=8",
            "total_steps=64", "progress=false", "tensorboard=false", "seed=3"]
    for name in ("a", "b"):
        run(parse_overrides([f"run_dir={tmp_path / name}", *args]))
    wall = {"sps", "collect_fraction"}

    def jsonl(name: str) -> list[dict]:
        rows = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k not in wall} for r in rows]

    def csv(name: str) -> list[list[str]]:
        lines = [line.split(",") for line in (tmp_path / name / "metrics.csv").read_text().splitlines()]
        keep = [i for i, k in enumerate(lines[0]) if k not in wall]
        return [[cells[i] for i in keep] for cells in lines]

    assert len(jsonl("a")) == 4
    assert jsonl("a") == jsonl("b")
    assert csv("a") == csv("b")
