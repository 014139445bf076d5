"""`seqmarl.testing.tabular_policy` reads an auto-regressive seqmarl agent as its exact JOINT table."""

from __future__ import annotations

import numpy as np
import pytest

from seqmarl.algos import Trainer, TrainerConfig, make_agent
from seqmarl.envs import make
from seqmarl.testing import tabular_policy
from seqmarl.theory import Factorized, Joint
from seqmarl.theory.conditional_entropy import conditional_entropies
from seqmarl.validate import joint_policy


@pytest.fixture(scope="module")
def trained():
    """AR-MAPPO after 12 updates on permutation(3): its agents' actions depend on each other's."""
    env = make("matrix/permutation", n_agents=3, num_envs=128, seed=0)
    agent = make_agent("ar_mappo", env.spec, seed=0, ar_order="fixed", agent_id=True, lr=5e-3, hidden=(32, 32))
    Trainer(env, agent, TrainerConfig(total_steps=128 * 12, rollout_length=1, progress=False, tensorboard=False),
            seed=0).train()
    return env, agent


def test_an_autoregressive_agent_comes_back_as_its_exact_joint_table(trained) -> None:
    env, agent = trained
    pi = tabular_policy(agent, env)
    assert isinstance(pi, Joint)
    expected = joint_policy(agent, env).probs()
    np.testing.assert_allclose(pi.probs(), expected, rtol=0, atol=1e-12)
    # the same from the game alone (observations inferred from the agent's obs_dim) and from the bare actors
    # (the fixed order 0, 1, 2, the agent's own)
    np.testing.assert_allclose(tabular_policy(agent, env.game).probs(), expected, atol=1e-9)
    np.testing.assert_allclose(tabular_policy(agent.actors, env).probs(), expected, atol=1e-9)


def test_the_joint_table_is_not_a_product(trained) -> None:
    """A reader that multiplied per-agent marginals would lose the dependence: the conditional entropy of the
    last agent given the others is well below its marginal entropy."""
    env, agent = trained
    table = tabular_policy(agent, env).probs()[0]
    marginals = [table.sum(axis=tuple(j for j in range(3) if j != i)) for i in range(3)]
    marginal_h = [float(-(m * np.log(m)).sum()) for m in marginals]
    h = conditional_entropies(table)
    assert marginal_h[2] - h[2] > 0.05, (marginal_h, h.tolist())
    product = np.einsum("i,j,k->ijk", *marginals)
    assert np.abs(product - table).max() > 1e-2


def test_product_agents_are_still_factorized() -> None:
    env = make("matrix/permutation", n_agents=3, num_envs=8, seed=0)
    agent = make_agent("mappo", env.spec, seed=0, share_param=False, hidden=(8,))
    pi = tabular_policy(agent, env)
    assert isinstance(pi, Factorized)
    np.testing.assert_allclose(pi.probs(), joint_policy(agent, env).probs(), atol=1e-12)


def test_recurrent_autoregressive_is_refused() -> None:
    class Fake:
        autoregressive = True
        recurrent = True

    with pytest.raises(ValueError, match="recurrent"):
        tabular_policy(Fake(), make("matrix/permutation", n_agents=3, num_envs=1).game)
