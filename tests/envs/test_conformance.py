"""The batched-protocol contract (seqmarl.envs.base) checked on EVERY registered environment name.

Parametrised over ``envs.known_envs()`` at collection time, so environments registered later (``mamujoco/...``,
``smax/...``) are checked too. A name whose package is not installed is skipped with the reason (the
:class:`MissingExtraError` message, which names the extra). Episodes are shortened through the environment's own
time-limit keyword (``episode_limit``, ``max_cycles`` or ``max_steps``) where it has one, so a few dozen steps
cross several automatic resets.

Checked: shapes and dtypes of every field (``Step.check``), ``avail_actions`` (discrete only; padding masked, at
least one action per agent), terminated/truncated disjoint and truncation at the limit, ``final_*`` equal to the
returned tensors for environments that did not end, ``episode_return``/``episode_length`` against an independent
running sum, the elapsed counter reset on auto-reset, seeding determinism (two builds, and ``reset(seed)`` replay),
the device of every tensor (cpu; cuda when available), and rejection of malformed actions.

Cost control (``make test`` must stay short; some simulators JIT-compile per scenario, ~20 s each): every name of
the cheap families (:data:`FULL_FAMILIES`) and one representative of every other family get the full checks; the
other names of those families are only built (``test_builds``), so every registered name appears.
``SEQMARL_CONFORMANCE=all`` runs the full checks on every name.
"""

from __future__ import annotations

import math
import os
import sys

import pytest
import torch

from seqmarl import envs
from seqmarl.envs import MissingExtraError

NAMES = envs.known_envs()
# families (the part of a name before "/", "" for none) cheap enough to check every name in full
FULL_FAMILIES = {"", "matrix", "gaussian", "mpe", "vmas", "mamujoco"}
# the representative of a costly family (the first name in sorted order when absent or not registered)
PREFERRED = {"smax": "smax/3m", "smac": "smac/3m", "smacv2": "smacv2/protoss_5_vs_5"}


def _family(name: str) -> str:
    return name.split("/", 1)[0] if "/" in name else ""


def _full_names(names: list[str]) -> list[str]:
    if os.environ.get("SEQMARL_CONFORMANCE", "") == "all":
        return list(names)
    chosen = [n for n in names if _family(n) in FULL_FAMILIES]
    for family in sorted({_family(n) for n in names} - FULL_FAMILIES):
        members = [n for n in names if _family(n) == family]
        chosen.append(PREFERRED[family] if PREFERRED.get(family) in members else members[0])
    return sorted(chosen)


FULL = _full_names(NAMES)
LIGHT = [n for n in NAMES if n not in FULL]
SHORT_LIMIT = 6
NUM_ENVS = 3
LIMIT_KEYWORDS = ("episode_limit", "max_cycles", "max_steps")


def _short_kwargs(name: str) -> dict[str, object]:
    """The environment's own time-limit keyword set to a short limit when its default is a longer integer (a default
    of None means "the environment's natural horizon" and is left alone)."""
    params = envs.describe(name)
    for key in LIMIT_KEYWORDS:
        if key in params:
            default = params[key]
            if isinstance(default, int) and not isinstance(default, bool) and default > SHORT_LIMIT:
                return {key: SHORT_LIMIT}
            return {}
    return {}


def build(name: str, **kwargs: object) -> envs.MultiAgentEnv:
    """``envs.make(name, ...)``, skipping (with the printed reason) when the environment's package is missing."""
    try:
        return envs.make(name, **_short_kwargs(name), **kwargs)
    except MissingExtraError as exc:
        print(f"SKIP {name}: {exc}", file=sys.stderr)
        pytest.skip(f"{name}: {exc}")
    except ModuleNotFoundError as exc:  # an adapter that raised the plain error for a third-party package
        if (exc.name or "").split(".")[0] in ("seqmarl", "envs"):
            raise
        print(f"SKIP {name}: package {exc.name!r} is not installed", file=sys.stderr)
        pytest.skip(f"{name}: package {exc.name!r} is not installed ({exc})")
    raise AssertionError("unreachable")


def random_actions(env: envs.MultiAgentEnv, avail: torch.Tensor | None, gen: torch.Generator) -> torch.Tensor:
    """Uniformly random valid actions (available discrete actions; uniform in finite boxes, else clipped normals)."""
    spec, b, n = env.spec, env.num_envs, env.spec.n_agents
    if spec.is_discrete:
        assert avail is not None
        probs = avail.to("cpu", torch.float32).reshape(b * n, -1)
        return torch.multinomial(probs, 1, generator=gen).reshape(b, n).to(env.device)
    d = spec.act_dim
    low = torch.zeros(n, d, dtype=torch.float64)
    high = torch.zeros(n, d, dtype=torch.float64)
    for i, space in enumerate(spec.agent_spaces):
        low[i, : space.dim] = torch.tensor(space.low, dtype=torch.float64)
        high[i, : space.dim] = torch.tensor(space.high, dtype=torch.float64)
    u = torch.rand(b, n, d, generator=gen, dtype=torch.float64)
    normal = torch.randn(b, n, d, generator=gen, dtype=torch.float64)
    finite = torch.isfinite(low) & torch.isfinite(high)
    out = torch.where(finite, low + (high - low) * u, torch.maximum(torch.minimum(normal, high), low))
    return out.to(torch.float32).to(env.device)


def _check_avail(env: envs.MultiAgentEnv, avail: torch.Tensor | None) -> None:
    spec = env.spec
    if not spec.is_discrete:
        assert avail is None, "continuous environments must return avail_actions=None"
        return
    assert avail is not None and avail.dtype == torch.bool
    assert bool(avail.any(-1).all()), "every agent needs at least one available action"
    pad = torch.arange(spec.max_actions, device=avail.device)[None, :] >= torch.tensor(spec.n_actions, device=avail.device)[:, None]
    assert not bool((avail & pad).any()), "padding actions (>= the agent's n) must be unavailable"


def _check_devices(step: envs.Step, device: torch.device) -> None:
    tensors = [step.obs, step.state, step.reward, step.terminated, step.truncated]
    tensors += [step.avail_actions] if step.avail_actions is not None else []
    tensors += [v for k, v in step.info.items() if isinstance(v, torch.Tensor)]
    for t in tensors:
        assert t.device.type == device.type, f"a tensor is on {t.device}, the environment on {device}"


def _rollout_contract(name: str, device: str) -> None:
    env = build(name, num_envs=NUM_ENVS, device=device, seed=0)
    dev = torch.device(device)
    spec, limit = env.spec, env.spec.episode_limit
    step = env.reset()
    step.check(spec, NUM_ENVS)
    _check_devices(step, dev)
    _check_avail(env, step.avail_actions)
    assert torch.isfinite(step.obs).all() and torch.isfinite(step.state).all()
    assert not bool(step.done.any())
    gen = torch.Generator().manual_seed(1)
    ret = torch.zeros(NUM_ENVS, dtype=torch.float64)
    length = torch.zeros(NUM_ENVS, dtype=torch.int64)
    n_steps = min(max(2 * limit + 3, 12), 40)
    ended = 0
    for _ in range(n_steps):
        actions = random_actions(env, step.avail_actions, gen)
        step = env.step(actions)
        step.check(spec, NUM_ENVS)
        _check_devices(step, dev)
        _check_avail(env, step.avail_actions)
        info = step.info
        for key in ("final_obs", "final_state", "final_avail_actions", "episode_return", "episode_length"):
            assert key in info, f"info lacks {key!r}"
        assert info["final_obs"].shape == step.obs.shape and info["final_state"].shape == step.state.shape
        assert info["episode_length"].dtype == torch.int64
        assert torch.isfinite(step.reward).all() and torch.isfinite(step.obs).all()
        assert torch.isfinite(info["final_obs"]).all() and torch.isfinite(info["final_state"]).all()
        assert not bool((step.terminated & step.truncated).any()), "terminated and truncated must be disjoint"
        # independent running return / length
        ret += step.reward.double().cpu()
        length += 1
        assert torch.equal(info["episode_length"].cpu(), length)
        assert torch.allclose(info["episode_return"].double().cpu(), ret, rtol=1e-5, atol=1e-4)
        assert bool((length <= limit).all())
        done = step.done.cpu()
        assert bool(done[length == limit].all()), "an episode reaching episode_limit must end"
        assert not bool(step.truncated.cpu()[length < limit].any()), "truncated before episode_limit"
        keep = ~done
        assert torch.equal(info["final_obs"].cpu()[keep], step.obs.cpu()[keep])
        assert torch.equal(info["final_state"].cpu()[keep], step.state.cpu()[keep])
        if spec.is_discrete:
            assert info["final_avail_actions"] is not None
            assert torch.equal(info["final_avail_actions"].cpu()[keep], step.avail_actions.cpu()[keep])
        else:
            assert info["final_avail_actions"] is None
        assert torch.equal(env.elapsed.cpu(), torch.where(done, 0, length))
        ended += int(done.sum())
        ret[done] = 0.0
        length[done] = 0
    if limit <= n_steps:
        assert ended >= NUM_ENVS, "every environment should have ended at least one episode"


@pytest.mark.parametrize("name", FULL)
def test_rollout_contract_cpu(name: str) -> None:
    _rollout_contract(name, "cpu")


@pytest.mark.cuda
@pytest.mark.parametrize("name", FULL)
def test_rollout_contract_cuda(name: str) -> None:
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    _rollout_contract(name, "cuda")


def _trajectory(env: envs.MultiAgentEnv, steps: int, seed: int | None = None) -> list[tuple[torch.Tensor, ...]]:
    step = env.reset(seed) if seed is not None else env.reset()
    gen = torch.Generator().manual_seed(123)
    out = [(step.obs, step.state)]
    for _ in range(steps):
        step = env.step(random_actions(env, step.avail_actions, gen))
        fields = [step.obs, step.state, step.reward, step.terminated, step.truncated, step.info["final_obs"],
                  step.info["final_state"], step.info["episode_return"]]
        if step.avail_actions is not None:
            fields.append(step.avail_actions)
        out.append(tuple(t.cpu().clone() for t in fields))
    return out


def _assert_same(a: list[tuple[torch.Tensor, ...]], b: list[tuple[torch.Tensor, ...]], what: str) -> None:
    assert len(a) == len(b)
    for t, (x, y) in enumerate(zip(a, b)):
        for k, (u, v) in enumerate(zip(x, y)):
            assert torch.equal(u, v), f"{what}: step {t}, field {k} differs"


@pytest.mark.parametrize("name", FULL)
def test_seeding_determinism(name: str) -> None:
    steps = 2 * SHORT_LIMIT + 2
    first = build(name, num_envs=2, seed=5)
    run_a = _trajectory(first, steps)
    second = build(name, num_envs=2, seed=5)
    run_b = _trajectory(second, steps)
    _assert_same(run_a, run_b, "two builds with seed=5")
    run_c = _trajectory(first, steps, seed=5)  # reset(seed) re-seeds the same environment
    _assert_same(run_a, run_c, "reset(seed=5) replay")


@pytest.mark.parametrize("name", FULL)
def test_malformed_actions_are_rejected(name: str) -> None:
    env = build(name, num_envs=2, seed=0)
    step = env.reset()
    spec = env.spec
    good = random_actions(env, step.avail_actions, torch.Generator().manual_seed(0))
    with pytest.raises((ValueError, TypeError)):
        env.step(good[:1])  # wrong batch size
    if spec.is_discrete:
        with pytest.raises(ValueError, match="actions"):
            env.step(torch.full_like(good, spec.max_actions))  # out of range for every agent
    else:
        bad = good.clone()
        bad[0, 0, 0] = math.nan
        with pytest.raises(ValueError, match="actions"):
            env.step(bad)
    env.step(good)  # still usable


@pytest.mark.parametrize("name", LIGHT)
def test_builds(name: str) -> None:
    """The names of costly families beyond their representative: built with the common keywords and a sane spec
    (no reset: JIT-compiled simulators compile there, ~20 s per scenario)."""
    env = build(name, num_envs=2, seed=0)
    assert isinstance(env, envs.MultiAgentEnv) and isinstance(env.spec, envs.EnvSpec)
    assert env.num_envs == 2 and env.device == torch.device("cpu") and repr(env)


def test_every_registered_name_is_covered() -> None:
    assert NAMES == envs.known_envs() and len(NAMES) >= 8
    assert sorted(FULL + LIGHT) == NAMES and not set(FULL) & set(LIGHT)
    assert {_family(n) for n in FULL} == {_family(n) for n in NAMES}  # one full representative per family at least
    assert {"mpe/simple_spread", "mpe/simple_reference", "mpe/simple_speaker_listener", "vmas/balance",
            "vmas/transport", "vmas/navigation", "vmas/wheel"} <= set(NAMES)


@pytest.mark.parametrize("name,package,extra", [("mpe/simple_spread", "mpe2", "mpe"), ("vmas/balance", "vmas", "vmas")])
def test_missing_package_names_the_extra(name: str, package: str, extra: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for mod in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, package, None)  # makes `import <package>` raise ModuleNotFoundError
    with pytest.raises(MissingExtraError, match=rf"pip install seqmarl\[{extra}\]") as info:
        envs.make(name, num_envs=1)
    assert isinstance(info.value, ImportError) and info.value.extra == extra and info.value.package == package
    assert name in str(info.value)
