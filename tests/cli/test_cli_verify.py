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


def test_verify_default_seed_is_fixed_and_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A default run is the same run every time (seed 0); the seed is in the summary line and in every JSON row."""
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["verify", "--only", "pdl_identity", "--json", str(first)]) == 0
    assert main(["verify", "--only", "pdl_identity", "--json", str(second)]) == 0
    out = capsys.readouterr().out
    assert out.count("checks passed in") == 2 and "(seed 0)" in out
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert [(r["worst_error"], r["detail"], r["seed"], r["profile"]) for r in a] == \
           [(r["worst_error"], r["detail"], r["seed"], r["profile"]) for r in b]
    assert a[0]["seed"] == 0 and a[0]["profile"] == "default"


def test_verify_seed_option_changes_the_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out0, out7 = tmp_path / "s0.json", tmp_path / "s7.json"
    assert main(["verify", "--only", "pdl_identity", "--seed", "0", "--json", str(out0)]) == 0
    assert main(["verify", "--only", "pdl_identity", "--seed", "7", "--json", str(out7)]) == 0
    r0, r7 = json.loads(out0.read_text())[0], json.loads(out7.read_text())[0]
    assert r7["seed"] == 7 and "(seed 7)" in capsys.readouterr().out
    assert (r0["worst_error"], r0["detail"]) != (r7["worst_error"], r7["detail"])


def test_verify_failure_prints_seed_and_rerun_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = Check("always_fails", "a claim that is false", "test", "exact",
                lambda profile: CheckResult(cases=1, worst_error=float(profile.seed), passed=False, detail="wrong"))
    import seqmarl.verify as verify

    monkeypatch.setattr(verify, "select", lambda names: [bad])
    out = tmp_path / "f.json"
    assert main(["verify", "--seed", "5", "--thorough", "--json", str(out)]) == 1
    line = capsys.readouterr().out
    assert "0/1 checks passed" in line and "(seed 5, --thorough)" in line
    assert "reproduce with: seqmarl verify --seed 5 --thorough --only always_fails" in " ".join(line.split())
    row = json.loads(out.read_text())[0]
    assert row["seed"] == 5 and row["profile"] == "thorough" and row["worst_error"] == 5.0


@pytest.mark.parametrize("seed", ["-1", "x", "1.5"])
def test_verify_rejects_a_bad_seed(seed: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["verify", "--seed", seed])
    assert exc.value.code == 2
    assert "--seed must be a non-negative integer" in capsys.readouterr().err


def test_run_checks_rejects_a_bad_seed() -> None:
    import seqmarl.verify as verify

    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        verify.run_checks(["pdl_identity"], seed=-1)
    assert verify.DEFAULT_SEED == 0
