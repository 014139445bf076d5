"""``seqmarl envs``: list every registered environment with its agents, observation sizes, action spaces and limit.

Each environment is built once with ``num_envs=1, seed=0`` and default keywords. An environment whose package is
not installed is listed with the extra that installs it (``missing extra: pip install seqmarl[mpe]``) instead of
failing; the command exits 0 either way.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from typing import Any

from seqmarl.cli import command

__all__ = ["describe_env", "env_rows"]


def _fmt_num(x: float) -> str:
    return f"{x:g}"


def _actions(spec: Any) -> str:
    spaces = spec.agent_spaces
    if spec.is_discrete:
        counts = [s.n for s in spaces]
        return f"discrete({counts[0]})" if len(set(counts)) == 1 else f"discrete({','.join(map(str, counts))})"
    parts = []
    for s in spaces:
        lows, highs = set(s.low), set(s.high)
        bounds = (f"[{_fmt_num(lows.pop())},{_fmt_num(highs.pop())}]" if len(lows) == 1 and len(highs) == 1
                  else "[mixed bounds]")
        parts.append(f"box{bounds}^{s.dim}")
    return parts[0] if len(set(parts)) == 1 else " ".join(parts)


def describe_env(name: str) -> dict[str, Any]:
    """Build ``name`` with ``num_envs=1, seed=0`` and describe it. Returns a dict with ``status`` ``"ok"`` (and
    ``n_agents``, ``obs_dims``, ``obs_dim``, ``state_dim``, ``actions``, ``episode_limit``), ``"missing"`` (with
    ``install``: the pip command) or ``"error"`` (with ``error``)."""
    from seqmarl import envs

    streams = sys.stdout, sys.stderr
    try:
        env = envs.make(name, num_envs=1, seed=0)
    except envs.MissingExtraError as exc:
        return {"name": name, "status": "missing", "missing": "extra", "install": exc.install_hint,
                "package": exc.package}
    except ModuleNotFoundError as exc:  # an adapter that did not wrap its import: still a missing package
        if (exc.name or "").split(".")[0] in ("seqmarl", "envs"):
            return {"name": name, "status": "error", "error": f"{type(exc).__name__}: {exc}"}
        return {"name": name, "status": "missing", "missing": "package", "install": f"pip install {exc.name}",
                "package": exc.name}
    except Exception as exc:  # noqa: BLE001 - reported per environment, the listing goes on
        return {"name": name, "status": "error", "error": f"{type(exc).__name__}: {exc}"}
    finally:
        # some simulators reset the streams on import (jaxmarl 0.1's mabrax sets sys.stdout = sys.__stdout__),
        # which would send this listing past a caller's redirection
        sys.stdout, sys.stderr = streams
    spec = env.spec
    obs_dims = tuple(getattr(env, "agent_obs_dims", (spec.obs_dim,) * spec.n_agents))
    row = {"name": name, "status": "ok", "n_agents": spec.n_agents, "obs_dims": list(obs_dims),
           "obs_dim": spec.obs_dim, "state_dim": spec.state_dim, "actions": _actions(spec),
           "discrete": spec.is_discrete, "episode_limit": spec.episode_limit}
    close = getattr(env, "close", None)
    if callable(close):
        close()
    return row


def env_rows(patterns: list[str] | None = None) -> list[dict[str, Any]]:
    """:func:`describe_env` of every registered name matching one of the glob ``patterns`` (all if None)."""
    from seqmarl import envs

    names = envs.known_envs()
    if patterns:
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    return [describe_env(n) for n in names]


def _obs_text(row: dict[str, Any]) -> str:
    """``18`` when all agents observe 18 numbers, ``86x6,84x2 (padded 86)`` for runs of differing sizes."""
    dims = row["obs_dims"]
    if len(set(dims)) == 1:
        return str(dims[0])
    runs: list[list[int]] = []
    for d in dims:
        if runs and runs[-1][0] == d:
            runs[-1][1] += 1
        else:
            runs.append([d, 1])
    text = ",".join(str(d) if k == 1 else f"{d}x{k}" for d, k in runs)
    return f"{text} (padded {row['obs_dim']})"


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("patterns", nargs="*", metavar="PATTERN",
                   help="only the names matching these glob patterns (e.g. 'mpe/*'); default: all")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON to PATH")


@command("envs", "list the registered environments: agents, observation sizes, action spaces, episode limit", _args)
def _envs(ns: argparse.Namespace) -> int:
    extra = getattr(ns, "overrides", [])
    if extra:
        print(f"error: unrecognised arguments: {' '.join(extra)}", file=sys.stderr)
        return 2
    rows = env_rows(ns.patterns or None)
    if ns.patterns and not rows:
        print(f"no registered environment matches {ns.patterns}", file=sys.stderr)
    width = max([len(r["name"]) for r in rows] + [4])
    print(f"{'name':<{width}}  {'agents':>6}  {'obs':<22}  {'state':>5}  {'actions':<24}  {'limit':>5}")
    for r in rows:
        if r["status"] == "ok":
            print(f"{r['name']:<{width}}  {r['n_agents']:>6}  {_obs_text(r):<22}  {r['state_dim']:>5}  "
                  f"{r['actions']:<24}  {r['episode_limit']:>5}")
        elif r["status"] == "missing":
            print(f"{r['name']:<{width}}  missing {r['missing']}: {r['install']}")
        else:
            print(f"{r['name']:<{width}}  error: {r['error']}")
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "missing", "error")}
    print(f"{len(rows)} environments: {counts['ok']} built, {counts['missing']} missing a package, "
          f"{counts['error']} failed to build")
    if ns.json:
        with open(ns.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)
    return 0
