"""``seqmarl envs``: every registered environment listed with agents, observation sizes, actions and limit; missing
packages reported with the extra that installs them; exit code 0."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from seqmarl import envs
from seqmarl.cli import main
from seqmarl.envs import registry


def _line(out: str, name: str) -> str:
    matches = [line for line in out.splitlines() if line.split() and line.split()[0] == name]
    assert len(matches) == 1, f"{name} should be listed once:\n{out}"
    return matches[0]


def test_lists_every_registered_env(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    for name in envs.known_envs():
        _line(out, name)
    assert _line(out, "bridge").split()[1:] == ["2", "6", "8", "discrete(5)", "30"]
    assert _line(out, "gaussian/a1a2").split()[1:] == ["2", "1", "1", "box[-inf,inf]^1", "1"]
    assert f"{len(envs.known_envs())} environments:" in out


def test_real_benchmark_rows(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mpe2", reason="mpe2 is not installed (pip install seqmarl[mpe])")
    pytest.importorskip("vmas", reason="vmas is not installed (pip install seqmarl[vmas])")
    assert main(["envs", "mpe/*", "vmas/balance"]) == 0
    out = capsys.readouterr().out
    assert _line(out, "mpe/simple_spread").split()[1:] == ["3", "18", "54", "discrete(5)", "25"]
    assert _line(out, "mpe/simple_speaker_listener").split()[1:] == ["2", "3,11", "(padded", "11)", "14",
                                                                     "discrete(3,5)", "25"]
    assert "86x6,84x2 (padded 86)" in _line(out, "mpe/collect_treasure")
    assert _line(out, "vmas/balance").split()[1:] == ["3", "16", "48", "box[-1,1]^2", "100"]
    assert "bridge" not in out  # filtered by the patterns


def test_missing_package_is_reported_not_fatal(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for mod in [m for m in sys.modules if m == "vmas" or m.startswith("vmas.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "vmas", None)
    assert main(["envs", "vmas/*", "bridge"]) == 0
    out = capsys.readouterr().out
    for scenario in ("balance", "transport", "navigation", "wheel"):
        assert _line(out, f"vmas/{scenario}").endswith("missing extra: pip install seqmarl[vmas]")
    assert _line(out, "bridge").split()[1] == "2"
    assert "5 environments: 1 built, 4 missing a package, 0 failed to build" in out


def test_broken_env_and_json(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(num_envs: int = 1, device: str = "cpu", seed: int | None = None) -> envs.MultiAgentEnv:
        raise RuntimeError("simulator binary not found")

    def plain_missing(num_envs: int = 1, device: str = "cpu", seed: int | None = None) -> envs.MultiAgentEnv:
        import seqmarl_no_such_simulator  # noqa: F401

        raise AssertionError("unreachable")

    monkeypatch.setitem(registry._REGISTRY, "zz/broken", broken)
    monkeypatch.setitem(registry._REGISTRY, "zz/plain", plain_missing)
    path = tmp_path / "envs.json"
    assert main(["envs", "zz/*", "matrix/xor", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert _line(out, "zz/broken").endswith("error: RuntimeError: simulator binary not found")
    assert _line(out, "zz/plain").endswith("missing package: pip install seqmarl_no_such_simulator")
    rows = {r["name"]: r for r in json.loads(path.read_text())}
    assert rows["matrix/xor"]["status"] == "ok" and rows["matrix/xor"]["n_agents"] == 2
    assert rows["zz/broken"]["status"] == "error" and rows["zz/plain"]["status"] == "missing"


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["envs", "--bogus"]) == 2
    assert "unrecognised arguments: --bogus" in capsys.readouterr().err


def test_listed_in_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "envs" in capsys.readouterr().out
