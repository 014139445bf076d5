"""``seqmarl.testing.tabular_policy``: the exact ``pi(a|s)`` of tabular policies, ``seqmarl.algos`` agents and a
user's torch policy (the small protocol), and the errors that name the bad argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqmarl.algos import make_agent
from seqmarl.envs import MatrixGameEnv
from seqmarl.testing import assert_epsilon_nash, assert_reaches_optimum, tabular_policy
from seqmarl.theory import AutoRegressive, Factorized, Joint, games, random_game
from seqmarl.validate import policy_tables

GAME = random_game(np.random.default_rng(0), 3, (2, 3, 2), 3, 0.9)


def test_tabular_policies_pass_through_and_arrays_are_read():
    pi = Factorized.uniform(GAME.n_states, GAME.n_actions)
    assert tabular_policy(pi, GAME) is pi
    ar = AutoRegressive.from_joint(pi.probs(), (2, 0, 1))
    assert tabular_policy(ar, GAME) is ar
    joint = tabular_policy(pi.probs(), GAME)
    assert isinstance(joint, Joint) and np.allclose(joint.probs(), pi.probs())
    tables = tabular_policy([torch.from_numpy(np.array(t)) for t in pi.tables], GAME)
    assert isinstance(tables, Factorized) and all(np.array_equal(a, b) for a, b in zip(tables.tables, pi.tables))


@pytest.mark.parametrize("obs", ["state", "state+agent_id", "none"])
@pytest.mark.parametrize(("algo", "kw"), [("happo", {}), ("mappo", {"share_param": True})])
def test_an_algos_agent_is_read_exactly(obs, algo, kw):
    env = MatrixGameEnv(GAME, num_envs=2, obs=obs)
    agent = make_agent(algo, env.spec, seed=1, **kw)
    expected = policy_tables(agent, env)  # the oracle harness' own read-out
    for source in (GAME, env):  # the observation mode is inferred from the agent, or taken from the env
        pi = tabular_policy(agent, source)
        assert isinstance(pi, Factorized) and pi.n_actions == GAME.n_actions
        assert all(np.allclose(a, b, atol=1e-12) for a, b in zip(pi.tables, expected))
    assert np.allclose(tabular_policy(agent.actors, GAME).probs(), pi.probs())


def test_helpers_take_an_agent():
    env = MatrixGameEnv(games.climbing(), num_envs=2)
    agent = make_agent("happo", env.spec)
    with pytest.raises(AssertionError, match="not an eps-Nash equilibrium"):
        assert_epsilon_nash(agent, env, eps=1e-3)  # an untrained (near-uniform) agent
    assert_reaches_optimum(lambda game, rng: agent, games.climbing(), tol=25.0)


class PerAgentLogits(torch.nn.Module):
    """The protocol's second form: one module, ``obs [S, n, d] -> Categorical`` of batch shape ``[S, n]``."""

    def __init__(self, n_states: int, n_agents: int, a_max: int, n_actions: tuple[int, ...]):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.randn(n_agents, n_states, a_max, generator=torch.Generator().manual_seed(0)))
        mask = torch.arange(a_max)[None, :] < torch.tensor(n_actions)[:, None]
        self.register_buffer("mask", mask)

    def forward(self, obs: torch.Tensor) -> torch.distributions.Categorical:
        logits = torch.einsum("snk,nka->sna", obs, self.logits)
        return torch.distributions.Categorical(logits=logits.masked_fill(~self.mask, float("-inf")))


def test_a_users_torch_policy_is_read_exactly():
    model = PerAgentLogits(GAME.n_states, GAME.n_agents, max(GAME.n_actions), GAME.n_actions)
    pi = tabular_policy(model, GAME)
    for i, a in enumerate(GAME.n_actions):
        expected = torch.softmax(model.logits[i, :, :a].double(), -1).detach().numpy()
        assert np.allclose(pi.tables[i], expected, atol=1e-6)
    # first form: one callable per agent, obs_i [S, d] -> dist (here a probability tensor)
    per_agent = [lambda o, a=a: torch.full((o.shape[0], a), 1.0 / a) for a in GAME.n_actions]
    assert np.allclose(tabular_policy(per_agent, GAME).probs(), Factorized.uniform(3, GAME.n_actions).probs())
    # ... or an nn.ModuleList of per-agent modules returning probabilities
    torch.manual_seed(0)
    heads = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(3, a), torch.nn.Softmax(-1)) for a in GAME.n_actions])
    eye = torch.eye(GAME.n_states)
    pi = tabular_policy(heads, GAME)
    assert all(np.allclose(pi.tables[i], heads[i](eye).detach().numpy(), atol=1e-6) for i in range(3))


@pytest.mark.parametrize(("policy", "exc", "needle"), [
    (np.ones((3, 2, 2)) / 4, ValueError, r"policy \(an array, read as a joint table pi\(a\|s\)\) must have shape"),
    ([np.ones((3, 2)) / 2] * 2, ValueError, r"one entry per agent \(3\)"),
    ([np.ones((3, 2)) / 2, np.ones((3, 2)) / 2, np.ones((3, 2)) / 2], ValueError, r"policy\[1\] .* must have shape"),
    ([np.full((3, 2), 0.7), np.ones((3, 3)) / 3, np.ones((3, 2)) / 2], ValueError, "sum to 1"),
    ("uniform", TypeError, "policy must be"),
    ([lambda o: torch.ones(o.shape[0], 2) / 2] * 3, ValueError, r"gave agent 1 probabilities of shape \(3, 2\)"),
    ([lambda o: torch.ones(o.shape[0], 3) / 3] * 3, ValueError, "puts probability 0.333 on agent 0's padded"),
    ([lambda o: torch.ones(o.shape[0], 3)] * 3, ValueError, "rows summing to"),
    ([lambda o: "dist"] * 3, TypeError, "must return a distribution"),
    (lambda obs: torch.ones(3, 3), ValueError, r"policy\(obs \[S, n, d\]\) must give probabilities \[S, n, A_max\]"),
])
def test_bad_policies_are_named(policy, exc, needle):
    with pytest.raises(exc, match=needle):
        tabular_policy(policy, GAME)


def test_bad_games_and_options_are_named():
    pi = Factorized.uniform(GAME.n_states, GAME.n_actions)
    with pytest.raises(TypeError, match="game must be"):
        tabular_policy(pi, "xor")
    with pytest.raises(ValueError, match="obs must be one of"):
        tabular_policy(pi, GAME, obs="pixels")
    with pytest.raises(ValueError, match="the game has 1 states"):
        tabular_policy(pi, games.xor(2))
    env = MatrixGameEnv(games.xor(2), num_envs=1)
    recurrent = make_agent("happo", env.spec, use_rnn=True)
    with pytest.raises(ValueError, match="recurrent agent"):
        tabular_policy(recurrent, env)
    three_states = random_game(np.random.default_rng(1), 2, 3, 3, 0.9)
    agent = make_agent("happo", MatrixGameEnv(three_states, num_envs=1, obs="state+agent_id").spec)
    with pytest.raises(ValueError, match="takes 5 observation features; the game's observations have 1"):
        tabular_policy(agent, games.climbing())  # trained on another game
    with pytest.raises(ValueError, match="has 3 agents, the game 2"):
        tabular_policy(make_agent("happo", MatrixGameEnv(GAME, num_envs=1).spec), games.climbing())
