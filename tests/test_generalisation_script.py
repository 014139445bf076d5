"""benchmarks/generalisation.py at a tiny budget (3m -> 8m): guards the script's functions from rot — MAT is
rebuilt for 8 agents and evaluated, HAPPO is reported not applicable, the table and JSON-able results come out."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("jaxmarl")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "generalisation.py"


def _module():
    spec = importlib.util.spec_from_file_location("generalisation_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_tiny_run_3m_to_8m() -> None:
    gen = _module()
    res = gen.run_smax(["mat", "happo"], steps=200, seeds=[0], episodes=2, eval_maps=("smax/3m", "smax/8m"),
                       num_envs=2, rollout_length=50)
    assert set(res) == {"mat", "happo"}
    for algo in ("mat", "happo"):
        rec = res[algo]["smax/3m"]
        assert 0.0 <= rec["win_rate"] <= 1.0 and math.isfinite(rec["return"])
    assert 0.0 <= res["mat"]["smax/8m"]["win_rate"] <= 1.0
    assert "n/a" in res["happo"]["smax/8m"]["na"] and not res["happo"]["smax/8m"]["seeds"]
    text = gen.table(res, ("smax/3m", "smax/8m"))
    assert text.count("\n") == 3 and "n/a: one actor per agent" in text
    json.dumps(res)
