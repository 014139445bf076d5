"""``seqmarl report SWEEP_DIR`` — aggregate a sweep's runs with rliable (Agarwal et al., 2021, "Deep RL at the
Edge of the Statistical Precipice", NeurIPS) and export them for marl-eval (Gorsane et al., 2022, "Towards a
Standardised Performance Evaluation Protocol for Cooperative MARL", NeurIPS).

Runs and groups. Every run directory under ``SWEEP_DIR/runs/`` with a ``done.json`` (``--include-unfinished``:
any with metrics) is read: ``config.yaml`` gives ``algo``, ``env`` and ``seed``. A group is
(label, env) where the label is the algorithm name, followed by the other swept keys of ``sweep.json`` when the
grid varies more than algo/env/seed (``happo[algo.lr=5e-4;algo.clip_param=0.1]``; ``;``, not ``,``: marl-eval
refuses algorithm names with commas): the seeds of a group are its independent runs. A swept ``config=`` (a tuned
config per algorithm) joins the label only where two configs give runs of the same algorithm and env. Several
SWEEP_DIRs are read together (``seqmarl report A B --out R``; run names then carry their sweep's folder name), e.g.
one sweep per tuned config. Runs that would share a label but were run with different settings (their
``config.yaml`` differs in more than bookkeeping: seed, run_dir, logging, device) are not seeds of one experiment:
the settings that differ join their labels (``mappo[algo.ppo_epoch=15]`` beside ``mappo[algo.ppo_epoch=5]``), and a
seed repeated with the same settings is noted.

Metric. ``--metric auto`` takes ``eval_return_greedy`` (the greedy-policy evaluation return, as HARL's
evaluation reports deterministic actions) when every run logged it, else ``episode_return`` (the trainer's
mean return of the last 100 finished training episodes). Rows where the metric is not finite are dropped.

Final score of a run: the mean of its last ``--final-window`` logged metric values (default 1: the last).

Normalisation (for the across-env aggregate, the performance profile and probability of improvement):
``s = (x - lo_e) / (hi_e - lo_e)`` per env ``e``; by default (``minmax``) ``lo_e``/``hi_e`` are the minimum and
maximum of every logged metric value of every run in that env (marl-eval's global min-max); ``ENV=lo:hi``
gives them by hand (e.g. the random and optimal returns); ``none`` keeps raw scores. A degenerate range
(``hi_e == lo_e``) maps every score to 0 and is noted.

Statistics (rliable): per (label, env) on raw final scores, and over envs on normalised final scores (a
``runs x envs`` matrix per label; if labels have different numbers of runs in different envs, each label keeps
its first ``min`` runs by seed, noted): IQM (25 % trimmed mean), mean, median (within an env: over runs; across
envs: rliable's median over envs of the per-env mean), optimality gap (normalised,
gamma = 1), each with a 95 % stratified-bootstrap percentile CI (``rly.get_interval_estimates``, ``--reps``
replications, seeded by ``--seed``); probability of improvement ``P(X > Y)`` (Mann-Whitney U / (n m), averaged
over envs; ``metrics.probability_of_improvement``) with its CI; the performance profile (fraction of runs with
normalised score > tau, ``rly.create_performance_profile``).

Learning curves: each env has one common step grid ``linspace(lo, hi, G)`` with ``lo`` the largest first
logged step and ``hi`` the smallest last logged step over the env's runs (no extrapolation), ``G =
min(--points, most logged points of a run)``; each run's metric is linearly interpolated onto it
(``numpy.interp``), and the curve is the IQM over runs at each grid step with its bootstrap CI.

Outputs in ``--out`` (default ``SWEEP_DIR/report``): ``report.md``, ``report.json`` (every number above),
``marl_eval.json`` (marl-eval's raw-data layout: ``{env: {task: {label: {"run_i": {"step_k": {"step_count",
"return": [x]}, ..., "absolute_metrics": {"return": [final]}}}}}}``, env/task from ``env`` split at its first
``/``, steps on the common grid so every run has the same steps), ``curves.png``, ``aggregate.png``,
``performance_profile.png``, ``probability_of_improvement.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from seqmarl.cli import command

AUTO_METRICS = ("eval_return_greedy", "episode_return")
CI = 0.95


class ReportError(ValueError):
    """The sweep directory or a report option is not usable (the CLI prints it and exits with code 2)."""


@dataclass
class Run:
    """One run's metric curve (finite rows only)."""

    name: str
    label: str
    env: str
    seed: int
    steps: np.ndarray
    values: np.ndarray
    columns: set[str] = field(default_factory=set)


# ------------------------------------------------------------------------------------------------ reading
def _read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    lines = path.read_text().splitlines() if path.is_file() else []
    for k, line in enumerate(lines):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                if k != len(lines) - 1:  # only a half-written last line is tolerated
                    raise ReportError(f"{path}: line {k + 1} is not valid JSON") from None
    return rows


def labels_from_manifest(sweep_dir: Path) -> dict[str, tuple[str, str]]:
    """Run name -> ``(algo override or "", tail)``: the tail joins the swept keys other than algo/env/seed/config
    (module docstring; ``config`` is added by :func:`load_runs` only where it separates runs)."""
    path = sweep_dir / "sweep.json"
    if not path.is_file():
        return {}
    manifest = json.loads(path.read_text())
    extra = [k for k, vals in manifest.get("grid", []) if len(vals) > 1 and k not in ("algo", "env", "seed", "config")]
    out = {}
    for run in manifest.get("runs", []):
        values = dict(o.split("=", 1) for o in run["overrides"])
        tail = ";".join(f"{k}={values[k]}" for k in extra if k in values)  # no commas: marl-eval rejects them
        out[run["name"]] = (values.get("algo", ""), tail, values.get("config", ""))
    return out


def load_runs(sweep_dir: str | Path | Sequence[str | Path], metric: str = "auto",
              include_unfinished: bool = False) -> tuple[list[Run], str, list[str]]:
    """The runs of a sweep (or of a folder of run directories), or of several such directories together, with the
    chosen metric; returns ``(runs, metric, notes)``. A run's label is its algorithm (from its ``config.yaml``)
    plus the swept keys; where runs of one (label, env) came from different tuned configs (``config=`` swept, or
    several sweeps), ``config=<name>`` joins the label so that they are not taken as seeds of one group."""
    import yaml

    dirs = [Path(d) for d in ([sweep_dir] if isinstance(sweep_dir, (str, Path)) else sweep_dir)]
    if not dirs:
        raise ReportError("no SWEEP_DIR given")
    notes: list[str] = []
    raw: list[list[Any]] = []  # [name, label, env, seed, rows, config]
    for one in dirs:
        if not one.is_dir():
            raise ReportError(f"SWEEP_DIR {one} is not a directory")
        root = one / "runs" if (one / "runs").is_dir() else one
        labels = labels_from_manifest(one)
        prefix = f"{one.name}/" if len(dirs) > 1 else ""
        for run_dir in sorted(p for p in root.iterdir() if (p / "config.yaml").is_file()):
            if not include_unfinished and not (run_dir / "done.json").is_file():
                notes.append(f"{prefix}{run_dir.name}: not finished (no done.json), left out (--include-unfinished keeps it)")
                continue
            cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
            rows = _read_rows(run_dir / "metrics.jsonl")
            if not rows:
                notes.append(f"{prefix}{run_dir.name}: no metrics rows, left out")
                continue
            algo, tail, config = labels.get(run_dir.name, ("", "", ""))
            label = (algo or str(cfg.get("algo"))) + (f"[{tail}]" if tail else "")
            raw.append([prefix + run_dir.name, label, str(cfg.get("env")), int(cfg.get("seed", 0)), rows,
                        config or str(cfg.get("config") or ""), _settings(cfg)])
    if not raw:
        raise ReportError(f"SWEEP_DIR {', '.join(map(str, dirs))}: no finished runs (run directories with "
                          "config.yaml, metrics.jsonl and done.json)")
    configs: dict[tuple[str, str], set[str]] = {}
    for item in raw:
        configs.setdefault((item[1], item[2]), set()).add(item[5])
    for item in raw:
        if len(configs[(item[1], item[2])]) > 1:
            item[1] = _add_tag(item[1], f"config={item[5] or 'none'}")
    _tag_differing_settings(raw, notes)

    def finite(rows: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
        return [(float(r["env_steps"]), float(r[key])) for r in rows
                if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]

    if metric == "auto":
        metric = next((m for m in AUTO_METRICS if all(finite(item[4], m) for item in raw)), "")
        if not metric:
            raise ReportError(f"--metric auto: not every run logged {' or '.join(AUTO_METRICS)}; name one with --metric")
    runs = []
    for name, label, env, seed, rows, _, _ in raw:
        pairs = finite(rows, metric)
        if not pairs:
            known = sorted({k for r in rows for k in r})
            raise ReportError(f"--metric {metric}: run {name} has no finite values of it; its columns: {known}")
        steps, values = map(np.asarray, zip(*pairs))
        runs.append(Run(name, label, env, seed, steps, values, {k for r in rows for k in r}))
    return runs, metric, notes


#: run-config keys that do not change what is learned (bookkeeping, output, the seed itself)
BOOKKEEPING_KEYS = frozenset({"seed", "run_dir", "resume", "progress", "tensorboard", "checkpoint_interval",
                              "log_interval", "device", "update_threads"})


def _settings(cfg: dict[str, Any]) -> dict[str, str]:
    """A run's ``config.yaml`` flattened to ``{key: value}`` (``algo.X`` / ``env.X`` for the algorithm's and the
    env's arguments, as on the command line), bookkeeping keys left out."""
    out: dict[str, str] = {}
    for key, value in cfg.items():
        if key in BOOKKEEPING_KEYS:
            continue
        if key in ("algo_kwargs", "env_kwargs") and isinstance(value, dict):
            prefix = key.split("_")[0]
            out.update({f"{prefix}.{k}": json.dumps(v, sort_keys=True) for k, v in value.items()})
        else:
            out[key] = json.dumps(value, sort_keys=True)
    return out


def _add_tag(label: str, tag: str) -> str:
    return label[:-1] + f";{tag}]" if label.endswith("]") else f"{label}[{tag}]"


def _tag_differing_settings(raw: list[list[Any]], notes: list[str]) -> None:
    """Runs that share a label and env but were run with different settings (e.g. two sweeps, one with
    ``algo.ppo_epoch=15``) are not seeds of one experiment: each label gets the settings that differ within its
    group (``mappo[algo.ppo_epoch=15]``), so they are reported apart. A group whose runs repeat a seed with the
    same settings is noted (re-runs are averaged as if they were further seeds)."""
    groups: dict[tuple[str, str], list[list[Any]]] = {}
    for item in raw:
        groups.setdefault((item[1], item[2]), []).append(item)
    for (label, env), items in groups.items():
        keys = sorted({k for it in items for k in it[6]})
        differing = [k for k in keys if len({it[6].get(k) for it in items}) > 1]
        if differing:
            for it in items:
                shown = ";".join(f"{k}={_plain(it[6].get(k))}" for k in differing)
                it[1] = _add_tag(it[1], shown)
        seen: dict[tuple[str, int], str] = {}
        for it in items:
            key = (it[1], it[3])
            if key in seen:
                notes.append(f"{it[0]} repeats seed {it[3]} of {seen[key]} with the same settings (label {it[1]}, "
                             f"env {env}): both are counted")
            seen.setdefault(key, it[0])


def _plain(value: str | None) -> str:
    """A setting as written on the command line: JSON strings unquoted, lists joined with commas replaced by
    ``/`` (marl-eval rejects commas in names)."""
    if value is None:
        return "unset"
    v = json.loads(value)
    if isinstance(v, list):
        return "/".join(map(str, v))
    return str(v).lower() if isinstance(v, bool) else str(v)


# ------------------------------------------------------------------------------------------------ pure parts
def group_runs(runs: list[Run]) -> dict[str, dict[str, list[Run]]]:
    """``{env: {label: [runs sorted by seed]}}`` (envs and labels in sorted order)."""
    out: dict[str, dict[str, list[Run]]] = {}
    for r in runs:
        out.setdefault(r.env, {}).setdefault(r.label, []).append(r)
    return {e: {a: sorted(out[e][a], key=lambda r: (r.seed, r.name)) for a in sorted(out[e])} for e in sorted(out)}


def final_score(run: Run, window: int = 1) -> float:
    """Mean of the last ``window`` logged values."""
    return float(np.mean(run.values[-window:]))


def step_grid(runs: Sequence[Run], points: int) -> np.ndarray | None:
    """The common grid ``linspace(max first step, min last step, G)``; None if the runs share no step range."""
    lo = max(float(r.steps[0]) for r in runs)
    hi = min(float(r.steps[-1]) for r in runs)
    if lo > hi:
        return None
    n = min(points, max(len(r.steps) for r in runs))
    return np.array([lo]) if lo == hi or n < 2 else np.linspace(lo, hi, n)


def interpolate(run: Run, grid: np.ndarray) -> np.ndarray:
    """The run's metric at the grid steps, linear between its logged steps."""
    return np.interp(grid, run.steps, run.values)


def parse_normalise(items: Sequence[str] | None) -> tuple[str, dict[str, tuple[float, float]]]:
    """``--normalise`` values -> (mode, fixed bounds). Mode ``minmax`` (default) or ``none``; ``ENV=lo:hi`` items
    fix an env's bounds (the others stay min-max)."""
    mode, fixed = "minmax", {}
    for item in items or []:
        if item in ("none", "minmax"):
            mode = item
            continue
        env, sep, rng = item.rpartition("=")
        lo_s, colon, hi_s = rng.partition(":")
        try:
            lo, hi = float(lo_s), float(hi_s)
        except ValueError:
            lo = hi = float("nan")
        if not sep or not env or not colon or not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
            raise ReportError(f"--normalise {item!r}: expected none, minmax or ENV=lo:hi with finite lo < hi "
                              "(e.g. matrix/xor=0:1)")
        fixed[env] = (lo, hi)
    return mode, fixed


def normalisation_bounds(groups: dict[str, dict[str, list[Run]]], mode: str,
                         fixed: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float, str]]:
    """Per env ``(lo, hi, source)``: given by hand, or min/max of every logged value of every run there."""
    unknown = sorted(set(fixed) - set(groups))
    if unknown:
        raise ReportError(f"--normalise names env(s) {unknown} that no run used; envs: {sorted(groups)}")
    out = {}
    for env, by_label in groups.items():
        if env in fixed:
            out[env] = (*fixed[env], "given")
        elif mode == "none":
            out[env] = (0.0, 1.0, "none")
        else:
            values = np.concatenate([r.values for rs in by_label.values() for r in rs])
            out[env] = (float(values.min()), float(values.max()), "minmax")
    return out


def normalise(x: np.ndarray | float, bounds: tuple[float, float, str]) -> np.ndarray:
    lo, hi, _ = bounds
    x = np.asarray(x, dtype=float)
    return np.zeros_like(x) if hi == lo else (x - lo) / (hi - lo)


# ------------------------------------------------------------------------------------------------ statistics
def _rliable() -> tuple[Any, Any]:
    """``(rliable.library, rliable.metrics)``, or a :class:`ReportError` that says how to install them."""
    try:
        from rliable import library, metrics
    except ImportError:
        raise ReportError("seqmarl report needs rliable: pip install 'seqmarl[report]'") from None
    except TypeError as exc:  # arch 7.x (rliable's bootstrap) against pandas 3: deprecate_kwarg changed
        import pandas

        raise ReportError(f"rliable cannot be imported: its dependency arch fails with pandas {pandas.__version__} "
                          f"({exc}); install pandas<3 (arch 8 drops the random_state argument rliable 1.2 "
                          "passes)") from None
    return library, metrics


def _aggregates(per_env: bool = False) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """IQM, mean, median. rliable's median is the median over tasks of the per-task mean (the across-env
    aggregate); within one env (``per_env``) that would be the mean, so the median over runs is used there."""
    _, metrics = _rliable()
    median = (lambda s: np.array([np.median(s)])) if per_env else (lambda s: np.array([metrics.aggregate_median(s)]))
    return {"iqm": lambda s: np.array([metrics.aggregate_iqm(s)]),
            "mean": lambda s: np.array([metrics.aggregate_mean(s)]),
            "median": median}


@contextlib.contextmanager
def _global_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global RNG for the block and restore its state after. rliable's stratified bootstrap draws
    its resampling indices with ``np.random.choice`` (the global RNG), so its ``random_state`` argument alone
    does not make the confidence intervals reproducible."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _iqm_per_step(scores: np.ndarray) -> np.ndarray:
    """rliable's IQM (``scipy.stats.trim_mean(x, 0.25)`` over runs and tasks) at every step of a
    ``runs x tasks x steps`` array, in one vectorised call (the bootstrap calls it ``--reps`` times)."""
    import scipy.stats

    return scipy.stats.trim_mean(scores.reshape(-1, scores.shape[-1]), 0.25, axis=0)


def interval_estimates(score_dict: dict[str, np.ndarray], func: Callable, reps: int, seed: int) -> dict[str, list]:
    """``{key: [point, ci_low, ci_high]}`` (scalars) or ``{key: [[points], [lows], [highs]]}`` (vectors)."""
    import warnings

    rly, _ = _rliable()
    with warnings.catch_warnings(), _global_seed(seed):  # arch 7 warns that random_state is deprecated
        warnings.simplefilter("ignore", FutureWarning)
        points, cis = rly.get_interval_estimates(score_dict, func, reps=reps, confidence_interval_size=CI,
                                                 random_state=np.random.RandomState(seed))
    out = {}
    for key in score_dict:
        p, ci = np.asarray(points[key], dtype=float), np.asarray(cis[key], dtype=float)
        out[key] = [float(p[0]), float(ci[0][0]), float(ci[1][0])] if p.size == 1 else [p.tolist(), ci[0].tolist(), ci[1].tolist()]
    return out


def build_report(runs: list[Run], metric: str, normalise_items: Sequence[str] | None = None, final_window: int = 1,
                 points: int = 50, reps: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Every statistic of the report (module docstring), as plain JSON-able values."""
    rly, metrics = _rliable()
    if final_window < 1:
        raise ReportError(f"--final-window must be >= 1, got {final_window}")
    if points < 1 or reps < 1:
        raise ReportError(f"--points and --reps must be >= 1, got {points} and {reps}")
    groups = group_runs(runs)
    mode, fixed = parse_normalise(normalise_items)
    bounds = normalisation_bounds(groups, mode, fixed)
    notes = [f"{env}: normalisation range is degenerate (lo = hi = {b[0]}), normalised scores are 0"
             for env, b in bounds.items() if b[0] == b[1]]
    aggs = _aggregates()
    final: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for env, by_label in groups.items():
        final[env] = {}
        for label, rs in by_label.items():
            scores = np.array([[final_score(r, final_window)] for r in rs])
            entry: dict[str, Any] = {"runs": [r.name for r in rs], "seeds": [r.seed for r in rs],
                                     "scores": scores[:, 0].tolist(),
                                     "normalised_scores": normalise(scores[:, 0], bounds[env]).tolist()}
            for name, fn in _aggregates(per_env=True).items():
                entry[name] = interval_estimates({label: scores}, fn, reps, seed)[label]
            gap = lambda s: np.array([metrics.aggregate_optimality_gap(s, 1.0)])  # noqa: E731
            entry["optimality_gap_normalised"] = interval_estimates({label: normalise(scores, bounds[env])}, gap,
                                                                    reps, seed)[label]
            final[env][label] = entry
        grid = step_grid([r for rs in by_label.values() for r in rs], points)
        if grid is None:
            notes.append(f"{env}: the runs share no logged step range, no learning curve")
            continue
        curves[env] = {"steps": grid.tolist()}
        for label, rs in by_label.items():
            arr = np.stack([interpolate(r, grid) for r in rs])[:, None, :]  # runs x 1 task x G
            iqm_curve = _iqm_per_step
            est = interval_estimates({label: arr}, iqm_curve, reps, seed)[label]
            if grid.size == 1:
                est = [[est[0]], [est[1]], [est[2]]]
            curves[env][label] = {"iqm": est[0], "ci_low": est[1], "ci_high": est[2],
                                  "runs": arr[:, 0, :].tolist()}
    # across envs: runs x envs matrices of normalised final scores, for labels present in every env
    envs = list(groups)
    labels = sorted(set.intersection(*(set(groups[e]) for e in envs)))
    dropped = sorted({lab for e in envs for lab in groups[e]} - set(labels))
    if dropped:
        notes.append(f"labels {dropped} are missing in some env and are left out of the across-env statistics")
    matrices: dict[str, np.ndarray] = {}
    for label in labels:
        n = min(len(groups[e][label]) for e in envs)
        if any(len(groups[e][label]) != n for e in envs):
            notes.append(f"{label}: different numbers of runs per env, the first {n} (by seed) enter the aggregate")
        matrices[label] = np.array([[float(normalise(final_score(groups[e][label][i], final_window), bounds[e]))
                                     for e in envs] for i in range(n)])
    aggregate: dict[str, Any] = {}
    poi: dict[str, Any] = {}
    profile: dict[str, Any] = {}
    if matrices:
        for name, fn in aggs.items():
            for label, val in interval_estimates(matrices, fn, reps, seed).items():
                aggregate.setdefault(label, {})[name] = val
        gap = lambda s: np.array([metrics.aggregate_optimality_gap(s, 1.0)])  # noqa: E731
        for label, val in interval_estimates(matrices, gap, reps, seed).items():
            aggregate[label]["optimality_gap"] = val
        pairs = {f"{x} > {y}": (matrices[x], matrices[y]) for x in labels for y in labels if x != y}
        if pairs:
            poi_fn = lambda a, b: np.array([metrics.probability_of_improvement(a, b)])  # noqa: E731
            poi = interval_estimates(pairs, poi_fn, reps, seed)  # type: ignore[arg-type]
        taus = np.linspace(0.0, 1.0, 51)
        import warnings

        with warnings.catch_warnings(), _global_seed(seed):
            warnings.simplefilter("ignore", FutureWarning)
            prof, prof_ci = rly.create_performance_profile(matrices, taus, reps=reps)
        profile = {"taus": taus.tolist(), **{lab: {"profile": np.asarray(prof[lab]).tolist(),
                                                    "ci_low": np.asarray(prof_ci[lab])[0].tolist(),
                                                    "ci_high": np.asarray(prof_ci[lab])[1].tolist()} for lab in labels}}
    return {"metric": metric, "final_window": final_window, "reps": reps, "seed": seed, "confidence": CI,
            "normalisation": {e: {"lo": b[0], "hi": b[1], "source": b[2]} for e, b in bounds.items()},
            "envs": envs, "labels": labels, "final": final, "curves": curves, "aggregate": aggregate,
            "probability_of_improvement": poi, "performance_profile": profile, "notes": notes}


# ------------------------------------------------------------------------------------------------ exports
def split_env(env: str) -> tuple[str, str]:
    """marl-eval's (environment, task): ``smax/3m`` -> (smax, 3m); a name without ``/`` is both."""
    head, sep, tail = env.partition("/")
    return (head, tail) if sep else (env, env)


def marl_eval_data(report: dict[str, Any], metric_name: str = "return") -> dict[str, Any]:
    """The marl-eval raw-data dictionary (module docstring) of a :func:`build_report` result."""
    data: dict[str, Any] = {}
    for env, by_label in report["final"].items():
        env_name, task = split_env(env)
        curve = report["curves"].get(env)
        for label, entry in by_label.items():
            algo_runs: dict[str, Any] = {}
            for i, score in enumerate(entry["scores"]):
                run: dict[str, Any] = {}
                if curve is not None:
                    for k, (step, value) in enumerate(zip(curve["steps"], curve[label]["runs"][i])):
                        run[f"step_{k}"] = {"step_count": int(round(step)), metric_name: [float(value)]}
                run["absolute_metrics"] = {metric_name: [float(score)]}  # last key: marl-eval reads steps[-1]
                algo_runs[f"run_{i}"] = run
            data.setdefault(env_name, {}).setdefault(task, {})[label] = algo_runs
    return data


def _ci(v: list) -> str:
    return f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"


def markdown(report: dict[str, Any], images: Sequence[str] = ()) -> str:
    lines = [f"# Sweep report", "", f"Metric: `{report['metric']}` (final score: mean of the last "
             f"{report['final_window']} logged value(s)); 95 % stratified-bootstrap CIs, {report['reps']} "
             "replications (rliable).", ""]
    for env, by_label in report["final"].items():
        lines += [f"## {env}", "", "| algorithm | runs | IQM [95% CI] | mean [95% CI] | median [95% CI] |",
                  "|---|---|---|---|---|"]
        for label, e in by_label.items():
            lines.append(f"| {label} | {len(e['scores'])} | {_ci(e['iqm'])} | {_ci(e['mean'])} | {_ci(e['median'])} |")
        lines.append("")
    if report["aggregate"]:
        norm = ", ".join(f"{e}: [{b['lo']:.4g}, {b['hi']:.4g}] ({b['source']})" for e, b in report["normalisation"].items())
        lines += ["## Across envs (normalised scores)", "", f"Normalisation: {norm}.", "",
                  "| algorithm | IQM | mean | median | optimality gap |", "|---|---|---|---|---|"]
        for label, a in report["aggregate"].items():
            lines.append(f"| {label} | {_ci(a['iqm'])} | {_ci(a['mean'])} | {_ci(a['median'])} | {_ci(a['optimality_gap'])} |")
        lines.append("")
    if report["probability_of_improvement"]:
        lines += ["## Probability of improvement", "", "| X > Y | P(X > Y) [95% CI] |", "|---|---|"]
        for pair, v in report["probability_of_improvement"].items():
            lines.append(f"| {pair} | {_ci(v)} |")
        lines.append("")
    for note in report["notes"]:
        lines.append(f"- note: {note}")
    lines += [""] + [f"![{Path(i).stem}]({i})" for i in images]
    return "\n".join(lines) + "\n"


def write_plots(report: dict[str, Any], out: Path) -> list[str]:
    """PNG figures (matplotlib, Agg); returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    envs = [e for e in report["envs"] if e in report["curves"]]
    if envs:
        fig, axes = plt.subplots(1, len(envs), figsize=(4.5 * len(envs), 3.4), squeeze=False)
        for ax, env in zip(axes[0], envs):
            c = report["curves"][env]
            for label in report["final"][env]:
                ax.plot(c["steps"], c[label]["iqm"], label=label)
                ax.fill_between(c["steps"], c[label]["ci_low"], c[label]["ci_high"], alpha=0.25)
            ax.set_title(env)
            ax.set_xlabel("env steps")
            ax.set_ylabel(f"IQM {report['metric']}")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "curves.png", dpi=110)
        plt.close(fig)
        written.append("curves.png")
    if report["aggregate"]:
        names = ["iqm", "mean", "median", "optimality_gap"]
        fig, axes = plt.subplots(1, 4, figsize=(13, 0.5 + 0.45 * len(report["labels"]) + 1.2))
        for ax, name in zip(axes, names):
            for i, label in enumerate(report["labels"]):
                p, lo, hi = report["aggregate"][label][name]
                ax.barh(i, hi - lo, left=lo, height=0.6, alpha=0.6)
                ax.plot([p, p], [i - 0.3, i + 0.3], color="k")
            ax.set_yticks(range(len(report["labels"])))
            ax.set_yticklabels(report["labels"] if name == "iqm" else [])
            ax.set_title(name)
            ax.set_xlabel("normalised score")
            ax.margins(x=0.15)
        fig.tight_layout()
        fig.savefig(out / "aggregate.png", dpi=110)
        plt.close(fig)
        written.append("aggregate.png")
        prof = report["performance_profile"]
        fig, ax = plt.subplots(figsize=(5, 3.4))
        for label in report["labels"]:
            ax.plot(prof["taus"], prof[label]["profile"], label=label)
            ax.fill_between(prof["taus"], prof[label]["ci_low"], prof[label]["ci_high"], alpha=0.25)
        ax.set_xlabel(r"normalised score $\tau$")
        ax.set_ylabel(r"fraction of runs with score $> \tau$")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "performance_profile.png", dpi=110)
        plt.close(fig)
        written.append("performance_profile.png")
    if report["probability_of_improvement"]:
        pairs = list(report["probability_of_improvement"].items())
        fig, ax = plt.subplots(figsize=(5.5, 0.6 + 0.45 * len(pairs)))
        for i, (pair, (p, lo, hi)) in enumerate(pairs):
            ax.barh(i, hi - lo, left=lo, height=0.6, alpha=0.6)
            ax.plot([p, p], [i - 0.3, i + 0.3], color="k")
        ax.axvline(0.5, ls="--", color="grey")
        ax.set_yticks(range(len(pairs)))
        ax.set_yticklabels([p for p, _ in pairs])
        ax.set_xlim(0, 1)
        ax.set_xlabel("P(X > Y)")
        fig.tight_layout()
        fig.savefig(out / "probability_of_improvement.png", dpi=110)
        plt.close(fig)
        written.append("probability_of_improvement.png")
    return written


def write_report(sweep_dir: str | Path | Sequence[str | Path], out: str | Path | None = None, metric: str = "auto",
                 normalise_items: Sequence[str] | None = None, final_window: int = 1, points: int = 50,
                 reps: int = 2000, seed: int = 0, include_unfinished: bool = False) -> dict[str, Any]:
    """Read, compute, write ``report.md``, ``report.json``, ``marl_eval.json`` and the PNGs; returns the report."""
    from seqmarl.algos.trainer import _atomic_write_text

    several = not isinstance(sweep_dir, (str, Path))
    if several and len(sweep_dir) > 1 and out is None:
        raise ReportError("several SWEEP_DIRs need --out (where the common report goes)")
    runs, metric, notes = load_runs(sweep_dir, metric, include_unfinished)
    report = build_report(runs, metric, normalise_items, final_window, points, reps, seed)
    report["notes"] = notes + report["notes"]
    out = Path(out) if out else Path(sweep_dir[0] if several else sweep_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    images = write_plots(report, out)
    _atomic_write_text(out / "report.json", json.dumps(report, indent=1))
    _atomic_write_text(out / "marl_eval.json", json.dumps(marl_eval_data(report), indent=1))
    _atomic_write_text(out / "report.md", markdown(report, images))
    report["out"] = str(out)
    return report


# ------------------------------------------------------------------------------------------------ CLI
def _int_at_least(name: str, minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep_dir", metavar="SWEEP_DIR", nargs="+",
                   help="a sweep directory (seqmarl sweep --out) or a folder of run directories; several are "
                        "reported together (then --out is needed)")
    p.add_argument("--out", default=None, help="output folder (default SWEEP_DIR/report; required with several)")
    p.add_argument("--metric", default="auto", help="metrics.jsonl column to report (default auto: "
                   "eval_return_greedy if every run logged it, else episode_return)")
    p.add_argument("--normalise", action="append", metavar="none|minmax|ENV=lo:hi",
                   help="score normalisation across envs (default minmax per env over all logged values; repeatable)")
    p.add_argument("--final-window", type=_int_at_least("--final-window", 1), default=1,
                   help="final score = mean of the last K logged values (default 1)")
    p.add_argument("--points", type=_int_at_least("--points", 1), default=50, help="learning-curve grid points (default 50)")
    p.add_argument("--reps", type=_int_at_least("--reps", 1), default=2000,
                   help="bootstrap replications (default 2000, rliable's performance-profile default)")
    p.add_argument("--seed", type=_int_at_least("--seed", 0), default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--include-unfinished", action="store_true", help="also report runs without done.json")


@command("report", "aggregate a sweep: IQM and bootstrap CIs (rliable), curves, profiles, marl-eval JSON", _args)
def _main(ns: argparse.Namespace) -> int:
    extra = list(getattr(ns, "overrides", []) or [])
    if extra:
        print(f"error: unrecognised arguments: {' '.join(extra)} (seqmarl report SWEEP_DIR [SWEEP_DIR ...] [options])",
              file=sys.stderr)
        return 2
    try:
        report = write_report(ns.sweep_dir, ns.out, ns.metric, ns.normalise, ns.final_window, ns.points, ns.reps,
                              ns.seed, ns.include_unfinished)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(report["out"])
    print((out / "report.md").read_text())
    print(f"written: {out}/report.md, report.json, marl_eval.json and the PNGs")
    return 0
