"""`seqmarl --help/--version/verify`: exit codes, JSON, selection, and that a failing check fails the run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import seqmarl
from seqmarl.cli import main
from seqmarl.proofs_checks import Check, CheckResult, all_checks, select


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert seqmarl.__version__ in capsys.readouterr().out
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("verify", "train", "validate"):
        assert command in out


def test_console_script_is_installed() -> None:
    result = subprocess.run([sys.executable, "-m", "seqmarl", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"seqmarl {seqmarl.__version__}"


def test_verify_only_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v.json"
    assert main(["verify", "--only", "a1a2_example", "--only", "pdl_identity", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["name"] for r in rows] == ["a1a2_example", "pdl_identity"]
    assert all(r["passed"] and r["cases"] > 0 for r in rows)
    assert "2/2 checks passed" in capsys.readouterr().out


def test_verify_unknown_check_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown check.*known checks"):
        select(["no_such_check"])


def test_a_failing_check_makes_verify_exit_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = Check("always_fails", "a claim that is false", "test", "exact",
                lambda profile: CheckResult(cases=1, worst_error=1.0, passed=False, detail="wrong"))
    crash = Check("crashes", "a check that raises", "test", "exact", lambda profile: 1 / 0)
    import seqmarl.verify as verify

    monkeypatch.setattr(verify, "select", lambda names: [bad, crash])
    out = tmp_path / "f.json"
    assert main(["verify", "--json", str(out)]) == 1
    rows = json.loads(out.read_text())
    assert [r["passed"] for r in rows] == [False, False]
    assert "ZeroDivisionError" in rows[1]["detail"]


def test_registry_covers_the_theory_summary_matrix() -> None:
    """Every row of theory.md §10 (plus the IGM and TAD rows) has a registered check."""
    names = {c.name for c in all_checks()}
    required = {
        "pdl_identity", "lemma1_decomposition", "zero_surrogate_eq6", "lemma2_bound", "lemma2_first_order",
        "prop3_estimator_eq9", "algorithm1_monotone", "ne_convergence", "happo_exact_monotone",
        "prop1_shared_ratio_exact", "a1a2_example", "permutation_entropy", "vdn_ls_closed_form",
        "qmix_representability", "tad_transform_values", "igm_xor_not_representable",
    }
    assert required <= names, required - names
    assert all(c.method in ("exact", "symbolic", "convex", "property", "counterexample") for c in all_checks())
