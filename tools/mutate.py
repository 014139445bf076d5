"""Mutation testing of seqmarl with mutmut (``make mutate``; slow, not part of ``make test``).

mutmut names a mutant after the module its file implements (``seqmarl.theory.bounds.x_kl_tables__mutmut_3``) and
imports the mutated copy from ``mutants/``, so it needs the ordinary package layout. The repository maps its area
folders into ``seqmarl`` (``theory/`` -> ``seqmarl.theory`` ...), so each area is staged first into
``build/mutate/<area>/`` as ``seqmarl/{theory,proofs_checks,envs,algos}`` plus ``tests/`` and a ``pyproject.toml``
holding the mutmut configuration, then ``mutmut run`` is started there. Areas:

* ``theory``  — every module of ``theory/``, killed by the theory, theorem-check and helper tests;
* ``verify``  — the same mutants, killed by ``seqmarl verify`` alone (every registered check must pass);
* ``algos``   — the update-rule modules of ``algos/`` (actor updates, losses, GAE, value norm, trust region),
  killed by ``tests/algos`` (not slow);
* ``sequence`` — the sequence-model policies (MAT/MAT-Dec, the AR-MAPPO actor, TAD's coordinators and TAD-PPO),
  killed by the sequence-model test files of ``tests/algos`` (``SEQUENCE_TESTS``, not slow). A separate area so
  that the ``algos`` results stay comparable.

Scope: the maths, not the error messages. Statements that raise an input-validation error are not mutated
(``do_not_mutate_patterns``; the validation tests cover them), and a surviving mutant whose only change is the text
of a string literal (an argument name handed to a validator, a message) is reported as ``message-only`` and left
out of the score. Everything else counts: score = killed / (killed + survived), where ``killed`` includes
timeouts and ``survived`` includes mutants of functions no selected test calls.

A full run is long on a small machine (about two mutants per source line); ``--sample N`` tests a random sample
of N mutants (``--seed``), and the report then gives the sampled score with its 95% Wilson interval. The staging
folder is kept between runs while the sources are unchanged, so an interrupted full run resumes where it stopped.

Results go to ``mutation/<area>.json`` (score and counts) and ``mutation/<area>-survivors.txt`` (every survivor
with its diff); ``mutation/equivalent.md`` is the hand-written list of survivors judged equivalent, with why.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import math
import random
import tokenize
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"seqmarl": "seqmarl", "seqmarl/theory": "theory", "seqmarl/proofs_checks": "proofs_checks",
                "seqmarl/envs": "envs", "seqmarl/algos": "algos"}
ALGO_MODULES = ["actor_updates.py", "core/losses.py", "core/gae.py", "core/value_norm.py", "core/trust_region.py"]
SEQUENCE_MODULES = ["core/mat_policy.py", "core/ar_policy.py", "core/tad.py", "tad_ppo.py"]
# the test files of tests/algos that build these policies (mutmut's first, clean run of the whole of tests/algos
# takes too long on a small machine; mutmut then runs, per mutant, only the selected tests that call its function)
SEQUENCE_TESTS = ["test_ar_mappo.py", "test_mat.py", "test_tad_ppo.py", "test_bridge_orders.py",
                  "test_sequence_mutants.py"]
AREAS = {
    "theory": {
        "mutate": ["seqmarl/theory/*.py"],
        "tests": ["tests/theory", "tests/proofs_checks", "tests/test_assertions.py", "tests/test_strategies.py",
                  "-m", "not slow"],
    },
    "verify": {
        "mutate": ["seqmarl/theory/*.py"],
        "tests": ["tests/proofs_checks/test_all_checks.py::test_check_passes_with_its_cases_and_error"],
    },
    "algos": {
        "mutate": [f"seqmarl/algos/{m}" for m in ALGO_MODULES],
        "tests": ["tests/algos", "-m", "not slow and not cuda"],
    },
    "inference": {  # acting and the fused PPO log-prob/entropy pass (issue 11 §2 speed work)
        "mutate": ["seqmarl/algos/core/stacked.py"],
        "tests": ["tests/algos/core/test_core_stacked.py", "tests/algos/core/test_core_networks.py",
                  "-m", "not slow and not cuda"],
    },
    "sequence": {
        "mutate": [f"seqmarl/algos/{m}" for m in SEQUENCE_MODULES],
        "tests": [f"tests/algos/{t}" for t in SEQUENCE_TESTS] + ["-m", "not slow and not cuda"],
    },
}
KILLED = {1, 3, 36, 24, -24, 152, 255, 37}  # test failure, pytest internal error, timeouts, type check
SURVIVED = {0, 5, 33}  # no failing test, or no test covers the mutated function


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(x) for x in items) + "]"


NO_MUTATE_PATTERNS = [r"^\s*raise \w*(Error|Exception)\b"]


def _sources_digest(area: str) -> str:
    """Hash of everything staged (sources, tests, the area's configuration): a changed digest restages."""
    h = hashlib.sha256(json.dumps(AREAS[area], sort_keys=True).encode() + (ROOT / "tools" / "mutate.py").read_bytes())
    for src in sorted(set(PACKAGE_DIRS.values())) + ["tests"]:
        for f in sorted((ROOT / src).rglob("*.py")):
            if "__pycache__" not in f.parts:
                h.update(str(f.relative_to(ROOT)).encode() + f.read_bytes())
    return h.hexdigest()


def stage(area: str, workdir: Path) -> bool:
    """Copy the repository into the ordinary ``seqmarl/...`` layout with the area's mutmut configuration.
    Returns False (and keeps the earlier results) when the staged copy is already current."""
    digest = _sources_digest(area)
    stamp = workdir / ".sources-digest"
    if stamp.exists() and stamp.read_text() == digest:
        return False
    if workdir.exists():
        shutil.rmtree(workdir)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for dest, src in PACKAGE_DIRS.items():
        target = workdir / dest
        target.mkdir(parents=True, exist_ok=True)
        for item in (ROOT / src).iterdir():
            if item.is_file() and item.suffix == ".py":
                shutil.copy2(item, target / item.name)
            elif item.is_dir() and item.name == "core" and src == "algos":
                shutil.copytree(item, target / "core", ignore=ignore)
    shutil.copytree(ROOT / "tests", workdir / "tests", ignore=ignore)
    # the area folders as they are in the repository, for tests that read a source file by its path
    for src in sorted(set(PACKAGE_DIRS.values()) - {"seqmarl"}):
        shutil.copytree(ROOT / src, workdir / src, ignore=ignore)
    cfg = AREAS[area]
    pytest_cfg = _pytest_section()
    (workdir / "pyproject.toml").write_text(
        pytest_cfg
        + "\n[tool.mutmut]\n"
        + 'source_paths = ["seqmarl/"]\n'
        + f"also_copy = {_toml_list(sorted(set(PACKAGE_DIRS.values()) - {'seqmarl'}))}\n"
        + f"only_mutate = {_toml_list(cfg['mutate'])}\n"
        + f"do_not_mutate_patterns = {_toml_list(NO_MUTATE_PATTERNS)}\n"
        + f"pytest_add_cli_args_test_selection = {_toml_list(cfg['tests'])}\n"
        + 'pytest_add_cli_args = ["-p", "no:xdist", "-p", "no:randomly", "-x", "-q"]\n'
        + 'process_isolation = "forkserver"\n'
        + "timeout_multiplier = 5.0\n"
        + "timeout_constant = 10.0\n"
        + "use_git_change_detection = false\n"
    )
    stamp.write_text(digest)
    return True


def _pytest_section() -> str:
    """The repository's ``[tool.pytest.ini_options]`` table, verbatim."""
    text = (ROOT / "pyproject.toml").read_text()
    start = text.index("[tool.pytest.ini_options]")
    end = text.find("\n[", start + 1)
    return text[start:] if end < 0 else text[start:end + 1]


def collect(workdir: Path) -> dict[str, int | None]:
    """``{mutant name: exit code}`` from the ``.meta`` files mutmut writes beside each mutated module."""
    codes: dict[str, int | None] = {}
    for meta in (workdir / "mutants").rglob("*.py.meta"):
        codes.update(json.loads(meta.read_text()).get("exit_code_by_key", {}))
    return codes


def _shape(line: str, none_is_string: bool) -> list[str] | None:
    """The line's tokens with every string literal (and, for the mutated line, ``None``) replaced by ``S``."""
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    out = []
    for t in toks:
        if t.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.COMMENT):
            continue
        string_like = t.type == tokenize.STRING or (none_is_string and t.type == tokenize.NAME and t.string == "None")
        out.append("S" if string_like else t.string)
    return out


def _names(line: str) -> set[str]:
    return {t.string for t in tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline)
            if t.type == tokenize.NAME}


def _is_message(literal: str, line: str) -> bool:
    """A string literal that is text for a person: an f-string, one holding a space (a message), or one that
    spells the name of a variable on the same line (the argument name handed to a validator, e.g.
    ``_positive(eta, "eta")``). Literals such as ``"prod"`` or an einsum spec are code: their mutants are scored."""
    if literal.lower().lstrip("rb").startswith("f"):
        return True
    try:
        value = str(ast.literal_eval(literal))
    except (ValueError, SyntaxError):
        return False
    return any(ch.isspace() for ch in value) or value in _names(line)


def message_only(diff: str) -> bool:
    """True when the mutant's diff changes only string literals that are messages or argument names (see
    :func:`_is_message`): ``_product_policy(game, pi, "pi")`` -> ``"XXpiXX"`` or ``None``."""
    old = [l[1:] for l in diff.splitlines() if l.startswith("-") and not l.startswith("---")]
    new = [l[1:] for l in diff.splitlines() if l.startswith("+") and not l.startswith("+++")]
    if not old or len(old) != len(new):
        return False
    for a, b in zip(old, new):
        sa, sb = _shape(a, False), _shape(b, True)
        if sa is None or sb is None or sa != sb:
            return False
        literals = [t.string for t in tokenize.generate_tokens(io.StringIO(a.strip() + "\n").readline)
                    if t.type == tokenize.STRING]
        changed = [lit for lit in literals if lit not in b]
        if not changed or not all(_is_message(lit, a) for lit in changed):
            return False
    return True


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion k / n."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _changed_tests(workdir: Path) -> list[str]:
    """Test files of the repository that differ from (or are absent in) the staged snapshot ``workdir/tests``."""
    changed = []
    for f in sorted((ROOT / "tests").rglob("test_*.py")):
        rel = f.relative_to(ROOT)
        staged = workdir / rel
        if not staged.exists() or staged.read_bytes() != f.read_bytes():
            changed.append(str(rel))
    # newest first: a kill usually comes from the test written for it, and -x then stops early
    return sorted(changed, key=lambda rel: -(ROOT / rel).stat().st_mtime)


def recheck_command(python: str, area: str, stop_first: bool) -> list[str]:
    """The pytest command line of a recheck run (test files appended by the caller): the area's marker
    expression, no xdist, failures and errors in the short summary; ``-x`` when one failure decides."""
    tests = AREAS[area]["tests"]
    marker = ["-m", tests[tests.index("-m") + 1]] if "-m" in tests else []
    return [python, "-m", "pytest", "-p", "no:xdist", "-q", "-rfE", *(["-x"] if stop_first else []), *marker]


def baseline_failures(stdout: str) -> tuple[list[str], set[str]]:
    """From a ``-rfE`` short summary: the node ids that FAILED, and the files with an ERROR (collection)."""
    failed = [line.split()[1] for line in stdout.splitlines() if line.startswith("FAILED ")]
    broken = {line.split()[1].split("::")[0] for line in stdout.splitlines() if line.startswith("ERROR ")}
    return failed, broken


def recheck(area: str, workdir: Path, python: str, only: list[str] | None = None) -> dict[str, int]:
    """Re-test the survivors of the last run with today's tests, against the same mutated snapshot.

    The snapshot's mutants stay as they were (same names, same code); the test files changed since the run are
    copied into it. Each survivor is re-run on the changed tests only (``MUTANT_UNDER_TEST`` switches the mutant
    on): the unchanged ones already passed on this very mutant. Changed tests that fail on the un-mutated snapshot (they test
    code written after it) are deselected first, so they cannot count as kills. ``only`` (``--only``) keeps just
    those changed files: the survivors' own test file, when the other changed files are long learning tests that
    cannot kill them. Writes ``recheck.json``."""
    mutants = workdir / "mutants"
    codes = collect(workdir)
    sample_file = workdir / "sample.json"
    names = json.loads(sample_file.read_text()) if sample_file.exists() else sorted(codes)
    survivors = [n for n in names if codes.get(n) in SURVIVED]
    roots = tuple(a.split("::")[0] for a in AREAS[area]["tests"] if a.startswith("tests"))
    changed = [c for c in _changed_tests(workdir) if c.startswith(roots)]
    if only is not None:  # --only: re-test with these changed files alone (e.g. the file written for the survivors)
        changed = [c for c in changed if c in only]
    for rel in changed:
        (mutants / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, mutants / rel)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    base = recheck_command(python, area, stop_first=True)
    deselect: list[str] = []
    if changed:
        env_clean = dict(env, MUTANT_UNDER_TEST="")
        out = subprocess.run(recheck_command(python, area, stop_first=False) + changed, cwd=mutants, env=env_clean,
                             capture_output=True, text=True)
        if out.returncode not in (0, 1):  # 2-4: interrupted, internal or usage error: nothing was measured
            raise RuntimeError(f"baseline run of the changed tests failed (pytest exit {out.returncode}):\n"
                               + (out.stdout + out.stderr)[-3000:])
        deselect, broken = baseline_failures(out.stdout)
        changed = [c for c in changed if c not in broken]  # do not even import on the snapshot
    results: dict[str, int] = {}
    for name in survivors:
        # the unchanged tests already ran on this very mutant and passed (they are deterministic): only the
        # changed and new test files can kill it now
        selection = changed
        if not selection:
            results[name] = 33
            continue
        cmd = base + [a for d in deselect for a in ("--deselect", d)] + selection
        run = subprocess.run(cmd, cwd=mutants, env=dict(env, MUTANT_UNDER_TEST=name), capture_output=True, text=True,
                             timeout=1800)
        results[name] = 0 if run.returncode in (0, 5) else 1
        print(f"recheck {name}: {'survived' if results[name] == 0 else 'killed'}", flush=True)
    (workdir / "recheck.json").write_text(json.dumps({"changed_tests": changed, "deselected": deselect,
                                                      "results": results}, indent=2))
    return results


def report(area: str, workdir: Path, seconds: float, python: str, sample: list[str] | None = None) -> dict:
    codes = collect(workdir)
    total = len(codes)
    if sample is not None:
        codes = {k: codes.get(k) for k in sample}
    rechecked = {}
    if (workdir / "recheck.json").exists():
        rechecked = json.loads((workdir / "recheck.json").read_text())["results"]
        codes.update({k: v for k, v in rechecked.items() if k in codes})
    tested = {k: c for k, c in codes.items() if c is not None}
    diffs = {}
    for name, c in tested.items():
        if c not in KILLED:
            diffs[name] = subprocess.run([python, "-m", "mutmut", "show", name], cwd=workdir,
                                         capture_output=True, text=True).stdout.strip()
    killed = sorted(k for k, c in tested.items() if c in KILLED)
    messages = sorted(k for k in diffs if tested[k] in SURVIVED and message_only(diffs[k]))
    survived = sorted(k for k in diffs if tested[k] in SURVIVED and k not in messages)
    other = sorted(k for k in diffs if tested[k] not in SURVIVED)
    scored = len(killed) + len(survived)
    low, high = wilson(len(killed), scored)
    result = {
        "area": area, "mutants_generated": total, "tested": len(tested), "sampled": sample is not None,
        "killed": len(killed), "survived": len(survived), "message_only": len(messages), "not_scored": len(other),
        "not_yet_tested": len(codes) - len(tested),
        "killed_on_recheck": sum(1 for v in rechecked.values() if v in KILLED),
        "score": round(len(killed) / scored, 4) if scored else None,
        "score_95ci": [round(low, 4), round(high, 4)] if scored else None,
        "seconds": round(seconds, 1), "tests": AREAS[area]["tests"], "mutated": AREAS[area]["mutate"],
        "mutmut": _mutmut_version(python),
    }
    out = ROOT / "mutation"
    out.mkdir(exist_ok=True)
    (out / f"{area}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# {area}: surviving mutants ({len(survived)}), then message-only ({len(messages)}), then other "
             f"outcomes ({len(other)}). Regenerate: python tools/mutate.py {area} --report-only\n"]
    for group, names in (("survived", survived), ("message-only", messages), ("other", other)):
        for name in names:
            lines.append(f"## {group}: {name} (exit code {tested[name]})\n{diffs[name]}\n")
    (out / f"{area}-survivors.txt").write_text("\n".join(lines))
    return result


def _mutmut_version(python: str) -> str:
    out = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('mutmut'))"],
                         capture_output=True, text=True)
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("areas", nargs="*", default=list(AREAS), help=f"areas to mutate (default: all of {list(AREAS)})")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1, help="parallel mutant workers")
    parser.add_argument("--build", type=Path, default=ROOT / "build" / "mutate", help="staging folder")
    parser.add_argument("--report-only", action="store_true", help="re-read an earlier run's results")
    parser.add_argument("--recheck", action="store_true",
                        help="re-test the last run's survivors with today's tests (same mutated snapshot)")
    parser.add_argument("--only", nargs="+", default=None, metavar="TEST_FILE",
                        help="with --recheck: re-test with these changed test files only (paths like tests/algos/x.py)")
    parser.add_argument("--sample", type=int, default=0, help="test a random sample of this many mutants (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    args = parser.parse_args(argv)
    if args.sample < 0:
        parser.error(f"--sample must be >= 0 (0 = every mutant), got {args.sample}")
    if args.max_children < 1:
        parser.error(f"--max-children must be >= 1, got {args.max_children}")
    if args.only is not None and not args.recheck:
        parser.error("--only needs --recheck (it selects the changed test files a recheck runs)")
    unknown = [a for a in args.areas if a not in AREAS]
    if unknown:
        parser.error(f"unknown area(s) {unknown}; choose from {list(AREAS)}")
    python = sys.executable
    for area in args.areas:
        workdir = args.build / area
        start = time.perf_counter()
        sample_file = workdir / "sample.json"
        sample = None
        if args.recheck:
            if area == "verify":
                parser.error("--recheck re-runs tests; the verify area's test is the checks themselves: rerun it")
            recheck(area, workdir, python, args.only)
            if sample_file.exists():
                sample = json.loads(sample_file.read_text())
        elif not args.report_only:
            (workdir / "recheck.json").unlink(missing_ok=True)
            stage(area, workdir)
            env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
            base = [python, "-m", "mutmut", "run", "--max-children", str(args.max_children)]
            if args.sample:
                if not collect(workdir):  # generate the mutants and the test map; the filter matches nothing
                    subprocess.run(base + ["zz-generate-only"], cwd=workdir, env=env, check=False,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                names = sorted(collect(workdir))
                if not names:
                    raise SystemExit(f"mutmut generated no mutants in {workdir}; run it there to see why")
                sample = sorted(random.Random(args.seed).sample(names, min(args.sample, len(names))))
                sample_file.write_text(json.dumps(sample))
                todo = [n for n in sample if collect(workdir).get(n) is None]
                for i in range(0, len(todo), 200):  # keep the command line short
                    subprocess.run(base + todo[i:i + 200], cwd=workdir, env=env, check=False)
            else:
                sample_file.unlink(missing_ok=True)
                subprocess.run(base, cwd=workdir, env=env, check=False)
        elif sample_file.exists():
            sample = json.loads(sample_file.read_text())
        result = report(area, workdir, time.perf_counter() - start, python, sample)
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
