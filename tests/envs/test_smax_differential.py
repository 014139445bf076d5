"""smax/*: the adapter against jaxmarl's HeuristicEnemySMAX stepped directly (its own auto-resetting ``step``) with
the same keys and actions — observations, world state, masks, rewards, dones, final observations and alive masks
must agree exactly; plus the map list, checkpoints, zero-copy hand-over and the argument errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from seqmarl import envs
from seqmarl.envs import MissingExtraError

try:
    import jax
    import jax.numpy as jnp
    import jaxmarl
    from jaxmarl.environments.smax import map_name_to_scenario
    from jaxmarl.environments.smax.smax_env import MAP_NAME_TO_SCENARIO

    HAVE, WHY = True, ""
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    HAVE, WHY = False, f"jaxmarl/jax not installed ({exc}); pip install seqmarl[smax]"
    print(f"SKIP smax differential tests: {WHY}", file=sys.stderr)

needs_package = pytest.mark.skipif(not HAVE, reason=WHY)
B, LIMIT = 3, 12


@pytest.fixture(scope="module")
def env():
    """One SMAXEnv for the module (its jitted step compiles once, ~10-30 s)."""
    e = envs.make("smax/3m", num_envs=B, seed=7, episode_limit=LIMIT)
    yield e


def _random_available(avail: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b, n, a = avail.shape
    return torch.multinomial(avail.reshape(b * n, a).float(), 1, generator=gen).reshape(b, n)


@needs_package
@pytest.mark.slow
def test_adapter_equals_the_package(env) -> None:
    penv = jaxmarl.make("HeuristicEnemySMAX", scenario=map_name_to_scenario("3m"), max_steps=LIMIT - 1)
    agents = penv.agents
    vreset = jax.jit(jax.vmap(penv.reset))
    vstep = jax.jit(jax.vmap(penv.step))  # the package's own step: step_env + reset, selected by done
    vstep_env = jax.jit(jax.vmap(lambda k, s, a: penv.step_env(jax.random.split(k)[0], s, a)))  # pre-reset view
    vavail = jax.jit(jax.vmap(penv.get_avail_actions))

    def stack(d: dict) -> np.ndarray:
        return np.stack([np.asarray(d[a]) for a in agents], axis=1)

    step = env.reset(seed=5)
    assert env.root_seed == int(torch.randint(0, 2**31 - 1, (1,), generator=torch.Generator().manual_seed(5)))
    keys = jax.random.split(jax.random.PRNGKey(env.root_seed), B + 1)
    root = keys[0]
    pobs, pstate = vreset(keys[1:])
    np.testing.assert_array_equal(step.obs.numpy(), stack(pobs))
    np.testing.assert_array_equal(step.state.numpy(), np.asarray(pobs["world_state"]))
    np.testing.assert_array_equal(step.avail_actions.numpy(), stack(vavail(pstate)) != 0)
    gen = torch.Generator().manual_seed(0)
    ended = terminated = 0
    for t in range(3 * LIMIT):
        actions = _random_available(step.avail_actions, gen)
        step = env.step(actions)
        keys = jax.random.split(root, B + 1)
        root = keys[0]
        act = {a: jnp.asarray(actions[:, i].numpy(), dtype=jnp.int32) for i, a in enumerate(agents)}
        fobs, fstate, _, _, _ = vstep_env(keys[1:], pstate, act)
        pobs, pstate, rew, dones, _ = vstep(keys[1:], pstate, act)
        what = f"t={t}"
        np.testing.assert_array_equal(step.obs.numpy(), stack(pobs), err_msg=what)
        np.testing.assert_array_equal(step.state.numpy(), np.asarray(pobs["world_state"]), err_msg=what)
        np.testing.assert_array_equal(step.avail_actions.numpy(), stack(vavail(pstate)) != 0, err_msg=what)
        np.testing.assert_array_equal(step.info["final_obs"].numpy(), stack(fobs), err_msg=what)
        np.testing.assert_array_equal(step.info["final_state"].numpy(), np.asarray(fobs["world_state"]), err_msg=what)
        np.testing.assert_array_equal(step.reward.numpy(), np.asarray(rew[agents[0]], dtype=np.float32), err_msg=what)
        for a in agents:  # every ally gets the team reward
            np.testing.assert_array_equal(np.asarray(rew[a]), np.asarray(rew[agents[0]]))
        done = np.asarray(dones["__all__"])
        np.testing.assert_array_equal(step.done.numpy(), done, err_msg=what)
        alive = np.asarray(fstate.state.unit_alive)
        wiped = ~alive[:, :3].any(1) | ~alive[:, 3:].any(1)
        np.testing.assert_array_equal(step.terminated.numpy(), done & wiped, err_msg=what)
        np.testing.assert_array_equal(step.info["final_active"].numpy(), alive[:, :3], err_msg=what)
        np.testing.assert_array_equal(step.info["active"].numpy(), np.asarray(pstate.state.unit_alive)[:, :3], err_msg=what)
        np.testing.assert_array_equal(step.info["battle_won"].numpy(), done & ~alive[:, 3:].any(1) & alive[:, :3].any(1))
        ended += int(done.sum())
        terminated += int(step.terminated.sum())
    assert ended >= B and int(step.info["episode_length"].max()) <= LIMIT


@needs_package
@pytest.mark.slow
def test_checkpoint_resumes_exactly_and_outputs_are_zero_copy(env) -> None:
    step = env.reset(seed=1)
    gen = torch.Generator().manual_seed(1)
    for _ in range(4):
        step = env.step(_random_available(step.avail_actions, gen))
    saved = env.state_dict()
    actions = [_random_available(step.avail_actions, gen)]
    first = env.step(actions[0])
    env.load_state_dict(saved)
    again = env.step(actions[0])
    for field in ("obs", "state", "reward", "terminated", "truncated", "avail_actions"):
        assert torch.equal(getattr(first, field), getattr(again, field)), field
    # DLPack hand-over: the tensor's memory is the jax buffer (no copy)
    out = env._fns.pack(env._jstate)
    t = torch.from_dlpack(out["obs"])
    assert t.data_ptr() == out["obs"].unsafe_buffer_pointer()


@needs_package
def test_map_list_is_the_package_registry() -> None:
    from seqmarl.envs.smax import SMAX_MAPS

    assert sorted(SMAX_MAPS) == sorted(MAP_NAME_TO_SCENARIO)
    assert {f"smax/{m}" for m in SMAX_MAPS} <= set(envs.known_envs())
    assert envs.describe("smax/2s3z")["episode_limit"] == 101


@needs_package
def test_errors_name_the_argument() -> None:
    from seqmarl.envs.smax import SMAXEnv

    with pytest.raises(ValueError, match=r"unknown SMAX map_name '4m'; known maps: \["):
        SMAXEnv("4m")
    with pytest.raises(ValueError, match="observation_type must be"):
        envs.make("smax/3m", observation_type="pixels")
    with pytest.raises(ValueError, match="attack_mode must be"):
        envs.make("smax/3m", attack_mode="nearest")
    with pytest.raises(ValueError, match="episode_limit must be >= 2"):
        envs.make("smax/3m", episode_limit=1)


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs with or without the package: the import is made to fail."""
    for mod in [m for m in sys.modules if m == "jaxmarl" or m.startswith("jaxmarl.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "jaxmarl", None)
    with pytest.raises(MissingExtraError, match=r"pip install seqmarl\[smax\]") as info:
        envs.make("smax/3m")
    assert info.value.extra == "smax" and "smax/3m" in str(info.value)
