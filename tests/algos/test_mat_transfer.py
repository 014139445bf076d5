"""MAT / MAT-Dec zero-shot transfer across agent counts (seqmarl.algos.mat_transfer) and the ``mat_token_id``
option it needs: the weights load for n=3 -> n=8, an n=3 -> n=3 load acts bit-identically to the source, the
n=8 model runs with finite log-probs that two loads reproduce, and the loads are refused by name when a one-hot
agent id (or the sizes) tie the weights to n."""

from __future__ import annotations

import pytest
import torch

from seqmarl.algos import MATConfig, MATDecConfig, make_agent
from seqmarl.algos.mat_transfer import load_for_agents
from seqmarl.envs.base import AgentSpace, EnvSpec

OBS, A, STATE = 6, 5, 4


def spec(n: int, obs: int = OBS, actions: int = A, state: int = STATE) -> EnvSpec:
    return EnvSpec(n_agents=n, obs_dim=obs, state_dim=state, agent_spaces=(AgentSpace.discrete(actions),) * n,
                   episode_limit=10)


def _trained(algo: str, **kw):
    """A source agent with non-initial weights (perturbed) and a non-trivial value normaliser."""
    agent = make_agent(algo, spec(3), seed=1, **({"mat_token_id": False} if algo == "mat" else {}), **kw)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in agent.actors.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    agent.value_norm.update(torch.randn(64, 3, generator=gen) * 4 + 2)
    return agent


def _inputs(n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(16, n, OBS, generator=gen)
    avail = torch.rand(16, n, A, generator=gen) < 0.7
    avail[..., 0] = True
    actions = torch.multinomial(avail.float().reshape(-1, A), 1, generator=gen).reshape(16, n)
    return obs, avail, actions


@pytest.mark.parametrize("algo", ["mat", "mat_dec"])
def test_same_n_load_is_bit_identical(algo: str) -> None:
    src = _trained(algo)
    copy = load_for_agents(src, spec(3))
    obs, avail, actions = _inputs(3)
    assert torch.equal(src.actors.log_prob(obs, actions, avail), copy.actors.log_prob(obs, actions, avail))
    assert torch.equal(src.actors.values(obs), copy.actors.values(obs))
    a1, lp1 = src.actors.sample(obs, avail, torch.Generator().manual_seed(3))
    a2, lp2 = copy.actors.sample(obs, avail, torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2) and torch.equal(lp1, lp2)
    assert torch.equal(src.value_norm.running_mean, copy.value_norm.running_mean)
    # and a fresh agent (no load) differs: the comparison above is not vacuous
    fresh = make_agent(algo, spec(3), seed=1, **({"mat_token_id": False} if algo == "mat" else {}))
    assert not torch.equal(fresh.actors.log_prob(obs, actions, avail), copy.actors.log_prob(obs, actions, avail))
    # the optimiser is fresh
    assert not copy.actor_optimizers[0].state


@pytest.mark.parametrize("algo", ["mat", "mat_dec"])
def test_load_three_to_eight(algo: str) -> None:
    src = _trained(algo)
    one, two = load_for_agents(src, spec(8), seed=0), load_for_agents(src.state_dict(), spec(8), seed=9)
    assert one.spec.n_agents == 8
    sd = src.actors.state_dict()
    for name, value in one.actors.state_dict().items():
        assert torch.equal(value, sd[name]), name
    obs, avail, actions = _inputs(8)
    lp1, lp2 = one.actors.log_prob(obs, actions, avail), two.actors.log_prob(obs, actions, avail)
    assert lp1.shape == (16, 8) and torch.isfinite(lp1).all() and torch.equal(lp1, lp2)
    act, _ = one.actors.sample(obs, avail, deterministic=True)
    assert bool(avail.gather(-1, act.unsqueeze(-1)).all())
    if algo == "mat_dec":  # a product policy of one shared MLP: agent i's marginal is the n=3 model's on o^i
        lp3 = src.actors.log_prob(obs[:, :3], actions[:, :3], avail[:, :3])
        assert torch.allclose(lp1[:, :3], lp3, atol=1e-6)
    else:  # MAT's encoder attends over all agents, so no agent's conditional equals an n=3 one in general
        assert torch.isfinite(one.actors.values(obs)).all()


def test_refusals_name_the_cause() -> None:
    with pytest.raises(ValueError, match="mat_token_id=True"):
        load_for_agents(make_agent("mat", spec(3)), spec(8))
    with pytest.raises(ValueError, match="agent_id=True"):
        load_for_agents(make_agent("mat", spec(3), mat_token_id=False, agent_id=True), spec(8))
    with pytest.raises(ValueError, match="agent_id=True"):
        load_for_agents(make_agent("mat_dec", spec(3), agent_id=True), spec(8))
    with pytest.raises(ValueError, match="HAPPO, cannot act"):
        load_for_agents(make_agent("happo", spec(3)), spec(8))
    src = make_agent("mat", spec(3), mat_token_id=False)
    with pytest.raises(ValueError, match="obs_dim=6"):
        load_for_agents(src, spec(8, obs=7))
    with pytest.raises(ValueError, match="action count 5"):
        load_for_agents(src, spec(8, actions=6))
    with pytest.raises(ValueError, match="state_dim=4"):
        load_for_agents(src, spec(8, state=5))
    with pytest.raises(TypeError, match="spec must be an EnvSpec"):
        load_for_agents(src, 8)


def test_token_id_option_changes_the_tokens() -> None:
    on, off = make_agent("mat", spec(3)), make_agent("mat", spec(3), mat_token_id=False)
    assert on.actors.token_dim == 1 + A + 3 and off.actors.token_dim == 1 + A
    assert off.actors.action_embed[0].weight.shape == (64, 1 + A)
    # without the id, the token of an action does not depend on who took it
    a = torch.tensor([2, 2])
    who = torch.tensor([0, 1])
    t_off, t_on = off.actors._token(a, who, torch.float32), on.actors._token(a, who, torch.float32)
    assert torch.equal(t_off[0], t_off[1]) and not torch.equal(t_on[0], t_on[1])


def test_token_id_config_checks() -> None:
    with pytest.raises(TypeError, match="mat_token_id must be a bool"):
        MATConfig(mat_token_id=0)
    with pytest.raises(ValueError, match="mat_token_id=False needs ar_order='fixed'"):
        MATConfig(mat_token_id=False, ar_order="random", agent_id=True)
    with pytest.raises(ValueError, match="product policy"):
        MATDecConfig(mat_token_id=False)
