"""Active masks (HARL ``use_policy_active_masks``): an agent that was dead when it acted (``step.info["active"]``,
e.g. SMAX) is left out of the policy objective, the entropy, the KL of HATRPO and the advantage statistics."""

from __future__ import annotations

import pytest
import torch

from seqmarl.algos import Trainer, TrainerConfig, make_agent
from seqmarl.algos import actor_updates as au
from seqmarl.envs import make


def test_active_mean_closed_form():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert float(au.active_mean(x, None)) == 2.5
    m = torch.tensor([[True, False], [True, True]])
    assert float(au.active_mean(x, m)) == pytest.approx((1 + 3 + 4) / 3)
    assert float(au.active_mean(x, torch.zeros(2, 2, dtype=torch.bool))) == 0.0


def _filled(algo: str, seed: int = 0, **kw):
    env = make("matrix/climbing", num_envs=64, seed=seed)
    agent = make_agent(algo, env.spec, seed=seed, hidden=(16, 16), ppo_epoch=1, critic_epoch=1, **kw)
    trainer = Trainer(env, agent, TrainerConfig(total_steps=64, rollout_length=1, progress=False, tensorboard=False),
                      seed=seed)
    buffer = trainer.collect()
    return agent, buffer


def _actor_params_after_update(algo: str, flip_inactive: bool, mask: bool, **kw) -> list[torch.Tensor]:
    agent, buffer = _filled(algo, **kw)
    inactive = torch.zeros_like(buffer.active)
    inactive[:, ::2, 0] = True  # agent 0 "dead" in every other environment
    if mask:
        buffer.active.copy_(~inactive)
    if flip_inactive:  # what a dead agent did must not matter
        buffer.actions[..., 0] = torch.where(inactive[..., 0], (buffer.actions[..., 0] + 1) % 3, buffer.actions[..., 0])
    agent.update(buffer)
    return [p.detach().clone() for p in agent.actors.parameters()]


@pytest.mark.parametrize("algo", ["mappo", "hatrpo"])
def test_an_inactive_agents_actions_do_not_change_the_update(algo):
    """With the mask, changing agent 0's actions where it was inactive leaves the actors' update bit-identical;
    without it (ablation) the update changes."""
    kw = {"share_param": False} if algo == "mappo" else {}
    a = _actor_params_after_update(algo, flip_inactive=False, mask=True, **kw)
    b = _actor_params_after_update(algo, flip_inactive=True, mask=True, **kw)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    c = _actor_params_after_update(algo, flip_inactive=False, mask=False, **kw)
    d = _actor_params_after_update(algo, flip_inactive=True, mask=False, **kw)
    assert not all(torch.equal(x, y) for x, y in zip(c, d))


def test_all_active_takes_the_unmasked_path():
    agent, buffer = _filled("mappo")
    batch = au.from_buffer(buffer, agent.spec.n_agents)
    assert batch.active is None


def test_the_trainer_stores_the_envs_active_mask(monkeypatch):
    env = make("matrix/climbing", num_envs=8, seed=0)
    def marked(fn):
        def wrapped(*args):
            out = fn(*args)
            out.info["active"] = torch.tensor([[True, False]] * 8)
            return out
        return wrapped

    monkeypatch.setattr(env, "step", marked(env.step))  # the trainer steps by step() or step_async/step_wait
    monkeypatch.setattr(env, "step_wait", marked(env.step_wait))
    agent = make_agent("mappo", env.spec, seed=0, hidden=(8, 8))
    trainer = Trainer(env, agent, TrainerConfig(total_steps=24, rollout_length=3, progress=False, tensorboard=False))
    buffer = trainer.collect()
    assert buffer.active[0].all()  # the first step acts on the reset observation (no mask given: all active)
    assert not buffer.active[1:, :, 1].any() and buffer.active[1:, :, 0].all()


def test_active_mean_rejects_a_bad_mask_by_name():
    x = torch.ones(2, 3)
    with pytest.raises((TypeError, ValueError), match="active"):
        au.active_mean(x, torch.full((2, 3), 0.5))  # not a 0/1 mask
    with pytest.raises(ValueError, match="active"):
        au.active_mean(x, torch.ones(4, dtype=torch.bool))


def test_batch_advantage_statistics_are_taken_over_active_entries(monkeypatch):
    """adv_norm="batch": mean 0 and std 1 over the ACTIVE entries (HARL), not over all of them."""
    agent, buffer = _filled("mappo", adv_norm="batch")
    inactive = torch.zeros_like(buffer.active)
    inactive[:, : buffer.num_envs // 2, 0] = True
    buffer.active.copy_(~inactive)
    seen = {}
    original = au._joint_clip

    def spy(agent_, batch):
        seen["adv"], seen["active"] = batch.advantages.clone(), batch.active.clone()
        return original(agent_, batch)

    monkeypatch.setattr(au, "_joint_clip", spy)
    agent.update(buffer)
    sel = seen["adv"][seen["active"]]
    assert float(sel.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(sel.std(correction=0)) == pytest.approx(1.0, abs=1e-3)


def _critic_params_after_update(algo: str, perturb_inactive: bool, mask: bool) -> list[torch.Tensor]:
    """Update with agent 0 inactive in every other env; ``perturb_inactive`` shifts agent 0's GAE returns and
    advantages there by -30 (Adam's first step is nearly sign(g): the shift must flip gradient signs to show).
    Value normalisation is off: its running statistics take every return, dead agents' included, as HARL's
    ``value_normalizer.update(return_batch)`` does."""
    agent, buffer = _filled(algo, use_value_norm=False)
    inactive = torch.zeros_like(buffer.active)
    inactive[:, ::2, 0] = True
    if mask:
        buffer.active.copy_(~inactive)
    if perturb_inactive:  # a dead agent's return (its value target) must not matter
        compute = buffer.compute_returns

        def shifted(*args, **kwargs):
            out = compute(*args, **kwargs)
            for t in (buffer.returns, buffer.advantages):
                t[..., 0] = torch.where(inactive[..., 0], t[..., 0] - 30.0, t[..., 0])
            return out

        buffer.compute_returns = shifted
    agent.update(buffer)
    net = agent.critic if agent.critic is not agent.actors else agent.actors
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("algo", ["ippo", "mat"])
def test_an_inactive_agents_value_target_does_not_change_the_value_fit(algo):
    """HARL/MAT ``use_value_active_masks``: a per-agent value (IPPO's V_i(o_i), MAT's encoder values) is fitted only
    where its agent was active. Shifting a dead agent's returns and advantages
    leaves the update unchanged with the mask; without it (ablation) the update changes. For MAT the shift also
    moves agent 0's advantages there, so the test needs the policy AND the value mask of its one combined loss."""
    def gap(x: list[torch.Tensor], y: list[torch.Tensor]) -> float:
        return max(float((p - q).abs().max()) for p, q in zip(x, y))

    a = _critic_params_after_update(algo, perturb_inactive=False, mask=True)
    b = _critic_params_after_update(algo, perturb_inactive=True, mask=True)
    assert gap(a, b) < 1e-8  # equal up to float summation order (the masked terms are exact zeros)
    c = _critic_params_after_update(algo, perturb_inactive=False, mask=False)
    d = _critic_params_after_update(algo, perturb_inactive=True, mask=False)
    assert gap(c, d) > 1e-4


def test_value_loss_reduction_none_is_elementwise():
    from seqmarl.algos.core.losses import value_loss
    v = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    old = torch.zeros(2, 2)
    r = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    el = value_loss(v, old, r, 0.2, reduction="none")
    # max(e^2/2 of R - V, of R - clip(V, old +- 0.2))
    expect = torch.maximum(0.5 * (r - v) ** 2, 0.5 * (r - v.clamp(-0.2, 0.2)) ** 2)
    assert torch.equal(el, expect)
    assert float(value_loss(v, old, r, 0.2)) == pytest.approx(float(expect.mean()))
    with pytest.raises(ValueError, match="reduction"):
        value_loss(v, old, r, 0.2, reduction="sum")
