"""jaxmarl_mpe/simple_spread: (1) the adapter against jaxmarl's SimpleSpreadMPE stepped directly (its own
auto-resetting ``step``) with the same keys — observations, rewards, flags and final observations exactly; (2) the
package's task against mpe2's simple_spread_v3 from the same positions with the same actions — observations and
rewards equal up to float32 rounding, collisions included (the claim that the two envs are one task); plus
checkpoints and argument errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from seqmarl import envs

try:
    import jax
    import jax.numpy as jnp
    import jaxmarl
    from jaxmarl.environments.mpe.default_params import CONTINUOUS_ACT, DISCRETE_ACT

    HAVE, WHY = True, ""
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    HAVE, WHY = False, f"jaxmarl/jax not installed ({exc}); pip install seqmarl[smax]"
    print(f"SKIP jaxmarl_mpe tests: {WHY}", file=sys.stderr)

try:
    from mpe2 import simple_spread_v3

    HAVE_MPE2, WHY_MPE2 = True, ""
except ImportError as exc:  # pragma: no cover
    HAVE_MPE2, WHY_MPE2 = False, f"mpe2 not installed ({exc}); pip install seqmarl[mpe]"
    print(f"SKIP jaxmarl_mpe vs mpe2 test: {WHY_MPE2}", file=sys.stderr)

needs_package = pytest.mark.skipif(not HAVE, reason=WHY)
B, LIMIT = 3, 6


def _actions(continuous: bool, gen: torch.Generator) -> torch.Tensor:
    if continuous:  # partly outside the box: the adapter must clip as mpe2's wrapper does
        return torch.rand(B, 3, 5, generator=gen) * 1.6 - 0.3
    return torch.randint(0, 5, (B, 3), generator=gen)


@needs_package
@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_adapter_equals_the_package(continuous: bool, reduction: str) -> None:
    env = envs.make("jaxmarl_mpe/simple_spread", num_envs=B, seed=3, max_cycles=LIMIT,
                    continuous_actions=continuous, reward_reduction=reduction)
    penv = jaxmarl.make("MPE_simple_spread_v3", action_type=CONTINUOUS_ACT if continuous else DISCRETE_ACT,
                        max_steps=LIMIT - 1)
    agents = penv.agents
    vreset = jax.jit(jax.vmap(penv.reset))
    vstep = jax.jit(jax.vmap(penv.step))  # the package's own step: step_env + reset, selected by done
    vstep_env = jax.jit(jax.vmap(lambda k, s, a: penv.step_env(jax.random.split(k)[0], s, a)))  # before the reset

    def stack(d: dict) -> np.ndarray:
        return np.stack([np.asarray(d[a]) for a in agents], axis=1)

    step = env.reset(seed=5)
    keys = jax.random.split(jax.random.PRNGKey(env.root_seed), B + 1)
    root = keys[0]
    obs, state = vreset(keys[1:])
    if continuous:
        assert step.avail_actions is None
    else:
        assert step.avail_actions.shape == (B, 3, 5) and bool(step.avail_actions.all())
    np.testing.assert_array_equal(step.obs.numpy(), stack(obs))
    np.testing.assert_array_equal(step.state.numpy(), stack(obs).reshape(B, -1))
    gen = torch.Generator().manual_seed(0)
    ended = 0
    for t in range(2 * LIMIT + 1):
        act = _actions(continuous, gen)
        step = env.step(act)
        sent = act.clamp(0.0, 1.0).numpy() if continuous else act.numpy().astype(np.int32)
        keys = jax.random.split(root, B + 1)
        root = keys[0]
        adict = {a: jnp.asarray(sent[:, i]) for i, a in enumerate(agents)}
        final_obs = stack(vstep_env(keys[1:], state, adict)[0])
        obs, state, rewards, dones, _ = vstep(keys[1:], state, adict)
        per_agent = torch.from_numpy(stack(rewards))
        team = per_agent.sum(1) if reduction == "sum" else per_agent.mean(1)
        # XLA fuses the adapter's one jitted batch step and the package's own step differently: float32 rounding
        close = {"rtol": 0, "atol": 1e-5}
        np.testing.assert_allclose(step.obs.numpy(), stack(obs), **close)
        np.testing.assert_allclose(step.state.numpy(), stack(obs).reshape(B, -1), **close)
        np.testing.assert_allclose(step.info["final_obs"].numpy(), final_obs, **close)
        np.testing.assert_allclose(step.info["final_state"].numpy(), final_obs.reshape(B, -1), **close)
        torch.testing.assert_close(step.info["agent_rewards"], per_agent, **close)
        torch.testing.assert_close(step.reward, team, **close)
        np.testing.assert_array_equal(step.truncated.numpy(), np.asarray(dones["__all__"]))
        assert not step.terminated.any()
        assert bool(step.truncated.all()) == ((t + 1) % LIMIT == 0)
        ended += int(step.truncated.sum())
    assert ended == 2 * B


@needs_package
@pytest.mark.skipif(not HAVE_MPE2, reason=WHY_MPE2)
@pytest.mark.parametrize("continuous", [False, True])
def test_the_package_is_mpe2s_simple_spread(continuous: bool) -> None:
    """Same positions, same actions: jaxmarl's SimpleSpreadMPE and mpe2's simple_spread_v3 give the same
    observations and rewards for a whole episode (two agents start overlapping, so the contact force and the
    collision penalty are exercised)."""
    steps = 25
    penv = jaxmarl.make("MPE_simple_spread_v3", action_type=CONTINUOUS_ACT if continuous else DISCRETE_ACT)
    agents = penv.agents
    _, state = penv.reset(jax.random.PRNGKey(0))
    start = np.array([[0.0, 0.0], [0.12, 0.05], [-0.6, 0.4], [0.5, 0.5], [-0.3, -0.7], [0.8, -0.2]])
    state = state.replace(p_pos=jnp.asarray(start, dtype=jnp.float32))
    ref = simple_spread_v3.parallel_env(N=3, local_ratio=0.5, max_cycles=steps, continuous_actions=continuous)
    ref.reset(seed=0)
    world = ref.unwrapped.world
    for entity, pos in zip(world.agents + world.landmarks, np.asarray(state.p_pos, dtype=np.float64)):
        entity.state.p_pos = pos.copy()
        entity.state.p_vel = np.zeros(2)
    step_env = jax.jit(penv.step_env)
    rng = np.random.default_rng(1)
    collided = False
    for _ in range(steps):
        act = rng.random((3, 5)).astype(np.float32) if continuous else rng.integers(0, 5, 3)
        obs, state, rewards, _, _ = step_env(jax.random.PRNGKey(1), state,
                                             {a: jnp.asarray(act[i]) for i, a in enumerate(agents)})
        robs, rrew, _, _, _ = ref.step({a: act[i] for i, a in enumerate(agents)})
        for a in agents:
            np.testing.assert_allclose(np.asarray(obs[a]), robs[a], rtol=0, atol=2e-4)
            np.testing.assert_allclose(float(rewards[a]), rrew[a], rtol=0, atol=2e-4)
        # every agent shares the global part: agents' rewards differ only by collision penalties (0.5 each)
        collided |= max(rrew.values()) - min(rrew.values()) > 0.25
    assert collided, "the episode never exercised a collision"


@needs_package
def test_resume_continues_exactly() -> None:
    a = envs.make("jaxmarl_mpe/simple_spread", num_envs=B, seed=1, max_cycles=LIMIT, continuous_actions=True)
    b = envs.make("jaxmarl_mpe/simple_spread", num_envs=B, seed=99, max_cycles=LIMIT, continuous_actions=True)
    a.reset()
    gen = torch.Generator().manual_seed(2)
    for _ in range(4):
        a.step(_actions(True, gen))
    b.reset()
    b.load_state_dict(a.state_dict())
    for _ in range(2 * LIMIT):
        act = _actions(True, gen)
        sa, sb = a.step(act), b.step(act)
        torch.testing.assert_close(sa.obs, sb.obs, rtol=0, atol=0)
        torch.testing.assert_close(sa.reward, sb.reward, rtol=0, atol=0)
        assert torch.equal(sa.truncated, sb.truncated)
        assert torch.equal(sa.info["episode_length"], sb.info["episode_length"])


@needs_package
@pytest.mark.parametrize("kwargs, needle", [
    ({"N": 1}, "N"), ({"local_ratio": 1.5}, "local_ratio"), ({"max_cycles": 1}, "max_cycles"),
    ({"continuous_actions": "yes"}, "continuous_actions"), ({"reward_reduction": "max"}, "reward_reduction"),
    ({"num_envs": 0}, "num_envs"),
])
def test_bad_arguments_are_named(kwargs: dict, needle: str) -> None:
    with pytest.raises((ValueError, TypeError), match=needle):
        envs.make("jaxmarl_mpe/simple_spread", **kwargs)


@needs_package
def test_discrete_actions_are_checked() -> None:
    env = envs.make("jaxmarl_mpe/simple_spread", num_envs=B, seed=0)
    env.reset()
    with pytest.raises(ValueError, match="out of range"):
        env.step(torch.full((B, 3), 5, dtype=torch.int64))
