"""AR-MAPPO (Fu et al. ICML22) against the exact oracles.

Every test has an ABLATION that must fail the same assertion. For the learning tests it is the same model with
the previous actions hidden (``ar_condition=False``: the attention output is zeroed, the network and every other
setting unchanged); for the exactness tests, where such a model passes trivially (it is a product policy), the
ablation is the specific misuse the test guards against (a wrong teacher-forcing order, a non-causal attention
mask, a per-agent readout). Figures asserted come from the exact oracle (``theory.optima``, the exact joint table)
or closed forms (J* = 1, J*_share = 2/2^n, log n!), never from a previous run. Seeded, CPU, small networks.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from seqmarl.algos import actor_updates, make_agent
from seqmarl.algos.core import AutoRegressiveActor, JointPolicy, MultiAgentActors, exact_joint_table
from seqmarl.algos.core.joint_policy import all_orders, random_orders
from seqmarl.algos.core.distributions import DiagGaussian
from seqmarl.algos.core.networks import BoxSpace
from seqmarl.algos.trainer import Trainer, TrainerConfig
from seqmarl.envs import make
from seqmarl.theory import Factorized, Joint, games, optima
from seqmarl.validate import joint_policy, oracle_run, policy_tables

FAST = dict(lr=5e-3, hidden=(32, 32))
LARGE_STEPS = dict(lr=5e-3, hidden=(32, 32), adv_norm="none")  # test_oracle_learning.SETTINGS
ABLATION = dict(ar_condition=False)


def _actor(condition: bool = True, seed: int = 0, **kw) -> AutoRegressiveActor:
    torch.manual_seed(seed)
    return AutoRegressiveActor(4, 3, [3, 2, 3, 4], hidden=(16, 16), out_gain=1.0, condition=condition, **kw)


def _gauss_actor(condition: bool = True, seed: int = 0, **kw) -> AutoRegressiveActor:
    """Three continuous agents with heterogeneous dimensions 2, 3, 1 (padded to d_max = 3), float64."""
    torch.manual_seed(seed)
    return AutoRegressiveActor(3, 3, [BoxSpace(2), BoxSpace(3), BoxSpace(1)], hidden=(16, 16), out_gain=1.0,
                               condition=condition, dtype=torch.float64, **kw)


def _inputs(batch: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(batch, 4, 3, generator=g)
    avail = torch.rand(batch, 4, 4, generator=g) < 0.7
    avail[..., 0] = True  # every agent keeps at least one action
    return obs, avail


# ------------------------------------------------------------------------------------------------ exactness
def test_both_policies_satisfy_the_joint_policy_interface() -> None:
    assert isinstance(_actor(), JointPolicy)
    assert isinstance(MultiAgentActors(2, 3, 3, share=True), JointPolicy)


@pytest.mark.parametrize("random", [False, True])
def test_teacher_forced_log_probs_equal_the_sequential_samples(random: bool) -> None:
    """Sampling agent after agent (each conditioned on the actions drawn before it) and teacher forcing the drawn
    joint actions in the SAME order give the same per-agent conditional log-probs (to 1e-6), with masks and
    heterogeneous action counts. Ablation: teacher forcing in another order (the fixed one, or the reversed one
    for fixed-order samples) — the misuse a random-order update without stored orders would make — differs."""
    actor = _actor()
    obs, avail = _inputs()
    g = torch.Generator().manual_seed(1)
    order = random_orders(obs.shape[0], 4, g) if random else None
    with torch.no_grad():
        actions, lp_sample = actor.sample(obs, avail, generator=g, order=order)
        lp_forced = actor.log_prob(obs, actions, avail, order=order)
        wrong = torch.arange(4) if random else torch.arange(3, -1, -1)
        lp_wrong = actor.log_prob(obs, actions, avail, order=wrong.expand(obs.shape[0], 4))
    assert bool(avail.gather(-1, actions.unsqueeze(-1)).all())  # masked actions are never drawn
    assert float((lp_sample - lp_forced).abs().max()) <= 1e-6
    assert float((lp_sample - lp_wrong).abs().max()) > 1e-3  # the ablation fails the same check


class _NonCausal(AutoRegressiveActor):
    """Ablation: every agent attends to ALL other agents' tokens (a non-causal mask)."""

    def _context(self, e, tokens, before):  # noqa: ANN001, ANN202
        others = torch.ones_like(before)
        return super()._context(e, tokens, others)


@pytest.mark.parametrize("cls", [AutoRegressiveActor, _NonCausal])
def test_changing_an_agents_action_changes_only_the_agents_after_it(cls: type) -> None:
    """For every order position k: changing the action of the agent acting k-th never changes the conditionals
    of the agents before it (exactly: their attention weight on it is 0) and does change those after it (the
    conditioning exists). Ablations: a non-causal mask breaks the first claim; ``condition=False`` the second."""
    torch.manual_seed(0)
    obs, avail = _inputs(64)
    g = torch.Generator().manual_seed(2)
    order = random_orders(64, 4, g)
    results = {}
    for name, actor in (("model", cls(4, 3, [3, 2, 3, 4], hidden=(16, 16), out_gain=1.0)),
                        ("no_condition", _actor(condition=False))):
        with torch.no_grad():
            actions, _ = actor.sample(obs, avail, generator=g, order=order)
            before = actor.distribution(obs, actions, avail, order).probs
            earlier_moved, later_moved = 0.0, 0.0
            for k in range(4):
                agent = order[:, k]
                changed = actions.clone()
                rows = torch.arange(64)
                changed[rows, agent] = (actions[rows, agent] + 1) % torch.tensor(actor.sizes)[agent]
                after = actor.distribution(obs, changed, avail, order).probs
                pos = torch.empty_like(order).scatter_(1, order, torch.arange(4).expand(64, 4))
                diff = (after - before).abs().amax(-1)  # [64, n]
                earlier_moved = max(earlier_moved, float(diff[pos < k].max()) if k > 0 else 0.0)
                later_moved = max(later_moved, float(diff[pos > k].max()) if k < 3 else later_moved)
        results[name] = (earlier_moved, later_moved)
    earlier, later = results["model"]
    if cls is AutoRegressiveActor:
        assert earlier == 0.0 and later > 1e-3, results
        assert results["no_condition"][1] == 0.0  # ablation: nothing after k reacts
    else:
        assert earlier > 1e-3, results  # the non-causal ablation fails the first claim


def _trained(ar_order: str, updates: int = 12):
    env = make("matrix/permutation", n_agents=3, num_envs=128, seed=0)
    agent = make_agent("ar_mappo", env.spec, seed=0, ar_order=ar_order, agent_id=True, **FAST)
    Trainer(env, agent, TrainerConfig(total_steps=128 * updates, rollout_length=1, progress=False,
                                      tensorboard=False), seed=0).train()
    return env, agent


def test_exact_joint_readout_sums_to_one_and_matches_sampling_frequencies() -> None:
    """The exact joint table of a random-order AR agent (all 3! orders enumerated, every joint action teacher
    forced; ``validate.joint_policy``) sums to 1 and matches the frequencies of 40,000 joint actions drawn by
    ``agent.act`` within a CLT bound (5 standard errors per cell + 1e-3, Bonferroni-safe over 27 cells). Ablations:
    the per-agent readout (product of the table's marginals, what ``policy_tables`` gives a product policy) and the
    fixed-order table both fail the bound."""
    env, agent = _trained("random")
    pi = joint_policy(agent, env)
    assert isinstance(pi, Joint)
    table = pi.probs()[0]  # one state
    assert abs(table.sum() - 1.0) <= 1e-9
    N = 40_000
    obs = env.observation_table().expand(N, -1, -1)
    avail = torch.stack([env.avail_actions_of_state(0)] * N)
    step = SimpleNamespace(obs=obs, avail_actions=avail)
    actions, _ = agent.act(step)
    counts = np.zeros((3, 3, 3))
    np.add.at(counts, tuple(actions.T.numpy()), 1)
    freq = counts / N

    def within(p: np.ndarray) -> bool:
        return bool(np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / N) + 1e-3))

    assert within(table), np.abs(freq - table).max()
    marg = [table.sum(axis=tuple(j for j in range(3) if j != i)) for i in range(3)]
    product = marg[0][:, None, None] * marg[1][None, :, None] * marg[2][None, None, :]
    obs_t = env.observation_table()
    avail_t = env.avail_actions_of_state(0)[None]
    fixed = exact_joint_table(agent.actors, obs_t, avail_t, (3, 3, 3), [(0, 1, 2)])[0]
    assert not within(product)
    assert not within(fixed)


def test_random_order_is_stored_and_the_update_teacher_forces_it() -> None:
    """A random-order agent stores each sample's order in the buffer; the update's recomputed old log-probs equal
    the behaviour log-probs of sampling (to 1e-6), so the first joint ratio is exactly the sampling one. Ablation:
    the same batch without its orders (teacher forcing in 0..n-1) differs."""
    env = make("matrix/permutation", n_agents=3, num_envs=256, seed=0)
    agent = make_agent("ar_mappo", env.spec, seed=0, ar_order="random", hidden=(16, 16), gain=1.0)
    trainer = Trainer(env, agent, TrainerConfig(total_steps=256 * 2, rollout_length=2, progress=False,
                                                tensorboard=False), seed=0)
    buffer = trainer.collect()
    assert buffer.orders is not None and len({tuple(o) for o in buffer.flat("orders").tolist()}) == 6
    batch = actor_updates.from_buffer(buffer, 3)
    old = actor_updates._old_log_probs(agent, batch)
    assert float((old - batch.old_log_probs).abs().max()) <= 1e-6
    batch.order = None
    assert float((actor_updates._old_log_probs(agent, batch) - buffer.flat("log_probs")).abs().max()) > 1e-3


@pytest.mark.parametrize("continuous", [False, True])
def test_counterfactual_entropy_is_every_agents_first_mover_entropy(continuous: bool) -> None:
    """``counterfactual_entropy`` (Fu-code's bonus): agent i's entropy with the earlier actions zeroed equals its
    conditional entropy when it acts FIRST in the order (exact: the first mover's context is c = 0), whatever
    actions the others took; it differs from the conditional entropy of a later position (the ablation; discrete
    only: a Gaussian's state-independent std gives every position the same entropy)."""
    actor = _gauss_actor() if continuous else _actor()
    obs = _gauss_obs(64) if continuous else _inputs(64)[0]
    n = actor.n_agents
    actions, _ = actor.sample(obs)
    cf = actor.counterfactual_entropy(obs)
    for i in range(n):
        order = torch.tensor([i] + [j for j in range(n) if j != i]).expand(64, n)
        _, ents = actor.log_prob_and_entropy(obs, actions, order=order)
        assert torch.allclose(cf[:, i], ents[:, i], atol=1e-12 if continuous else 1e-6, rtol=0)
    if continuous:  # a Gaussian with a state-independent std has the same entropy at every position
        return
    last = torch.tensor([j for j in range(n) if j != 0] + [0]).expand(64, n)  # agent 0 acts last
    _, ents = actor.log_prob_and_entropy(obs, actions, order=last)
    assert float((cf[:, 0] - ents[:, 0]).abs().max()) > 1e-4


def test_the_update_takes_the_entropy_named_by_ar_entropy(monkeypatch: pytest.MonkeyPatch) -> None:
    """With one epoch and one minibatch the reported entropy is the bonus at the pre-update parameters: the sum of
    the counterfactual entropies for ``ar_entropy="counterfactual"``, of the conditional ones by default."""
    env = make("matrix/permutation", n_agents=3, num_envs=128, seed=0)
    seen = {}
    for kind in ("counterfactual", "conditional"):
        agent = make_agent("ar_mappo", env.spec, seed=0, ar_order="random", hidden=(16, 16), gain=1.0, ppo_epoch=1,
                           ar_entropy=kind)
        trainer = Trainer(env, agent, TrainerConfig(total_steps=128, rollout_length=1, progress=False,
                                                    tensorboard=False), seed=0)
        buffer = trainer.collect()
        batch = actor_updates.from_buffer(buffer, 3)
        with torch.no_grad():
            obs, actions, avail, order = actor_updates._joint_inputs(agent, batch, slice(None))
            cf = float(agent.actors.counterfactual_entropy(obs, avail).sum(-1).mean())
            cond = float(agent.actors.log_prob_and_entropy(obs, actions, avail, order=order)[1].sum(-1).mean())
        seen[kind] = (float(agent.update(buffer)["entropy"]), cf, cond)
    got, cf, cond = seen["counterfactual"]
    assert got == pytest.approx(cf, abs=1e-6) and abs(cf - cond) > 1e-3
    got, cf, cond = seen["conditional"]
    assert got == pytest.approx(cond, abs=1e-6)


def test_the_update_clips_the_joint_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    """``joint_ratio_clip`` hands PPO's clip ONE ratio per sample, ``exp(sum_i (log pi^i - log pi^i_old))`` of the
    current conditionals (checked at every epoch against a recomputation), and the joint advantage. Ablation:
    MAPPO's ``joint_clip`` (per-agent ratios) hands it ``[m, n]`` ratios — it fails the shape check."""
    seen: dict[str, list] = {}

    def run(algo: str, **kw) -> None:
        env = make("matrix/climbing", num_envs=64, seed=0)
        agent = make_agent(algo, env.spec, seed=0, ppo_epoch=3, **FAST, **kw)
        buffer = Trainer(env, agent, TrainerConfig(total_steps=64, rollout_length=1, progress=False,
                                                   tensorboard=False), seed=0).collect()
        buffer.compute_returns(agent.config.gamma, agent.config.gae_lambda, agent.value_norm)
        batch = actor_updates.from_buffer(buffer, 2)
        original = actor_updates.ppo_clip_objective
        records = seen.setdefault(algo, [])

        def spy(ratio, adv, clip, **k):  # noqa: ANN001, ANN202
            if ratio.dim() == 1:
                with torch.no_grad():
                    lp = agent.actors.log_prob(batch.obs, batch.actions, batch.avail, order=batch.order)
                    expected = torch.exp((lp - batch.old_log_probs).sum(-1))
                # the minibatch is a permutation of the samples: compare the sorted ratios
                records.append((tuple(ratio.shape), float((ratio.detach().sort().values - expected.sort().values).abs().max()),
                                float((ratio.detach() - 1).abs().max())))
            else:
                records.append((tuple(ratio.shape), 0.0, 0.0))
            return original(ratio, adv, clip, **k)

        monkeypatch.setattr(actor_updates, "ppo_clip_objective", spy)
        actor_updates.run(agent, batch)
        monkeypatch.setattr(actor_updates, "ppo_clip_objective", original)

    run("ar_mappo")
    records = seen["ar_mappo"]
    assert len(records) == 3 and all(shape == (64,) for shape, _, _ in records)
    assert max(err for _, err, _ in records) <= 1e-5
    assert records[0][2] <= 1e-6 and records[-1][2] > 1e-4  # exactly 1 at the first step, then it moves
    run("mappo")
    assert any(shape != (64,) for shape, _, _ in seen["mappo"])  # the ablation fails the shape check


def test_product_actors_read_out_as_their_outer_product() -> None:
    """``exact_joint_table`` on MultiAgentActors (conditionals = marginals) equals the outer product of the
    per-agent tables. Ablation: an AR agent's table is not the product of its marginals (after learning xor)."""
    env = make("matrix/xor", n_agents=2, num_envs=8, seed=0)
    mappo = make_agent("mappo", env.spec, seed=0, share_param=False, gain=1.0)
    tables = policy_tables(mappo, env)
    obs, avail = env.observation_table(), env.avail_actions_of_state(0)[None]
    joint = exact_joint_table(mappo.actors, obs, avail, (2, 2))
    assert np.abs(joint - Factorized(tables).probs()).max() <= 1e-6
    env2, agent = _trained("fixed", updates=10)
    table = joint_policy(agent, env2).probs()
    marg = Joint(table).marginals()
    assert np.abs(table - Factorized(marg).probs()).max() > 0.05


def test_configuration_errors_name_the_setting() -> None:
    env = make("matrix/xor", n_agents=2, num_envs=4)
    with pytest.raises(ValueError, match="share_param=True"):
        make_agent("ar_mappo", env.spec, share_param=False)
    with pytest.raises(ValueError, match="joint_ratio_clip"):
        make_agent("ar_mappo", env.spec, actor_update="joint_clip")
    with pytest.raises(ValueError, match="critic='centralised'"):
        make_agent("ar_mappo", env.spec, critic="decentralised")
    with pytest.raises(ValueError, match="ar_order"):
        make_agent("ar_mappo", env.spec, ar_order="sometimes")
    with pytest.raises(ValueError, match="mixed discrete/continuous"):
        AutoRegressiveActor(2, 3, [3, BoxSpace(2)])
    with pytest.raises(ValueError, match="avail"):  # action masks belong to discrete actions
        _gauss_actor().sample(torch.zeros(2, 3, 3), torch.ones(2, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(\.\.\., n_agents, d_max\)"):
        _gauss_actor().log_prob(torch.zeros(2, 3, 3), torch.zeros(2, 3))
    with pytest.raises(TypeError, match="floating"):
        _gauss_actor().log_prob(torch.zeros(2, 3, 3), torch.zeros(2, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="ar_entropy"):
        make_agent("ar_mappo", env.spec, ar_entropy="marginal")
    with pytest.raises(ValueError, match="ar_entropy"):  # the bonus of an AR policy only
        make_agent("mappo", env.spec, ar_entropy="counterfactual")
    with pytest.raises(TypeError, match="ar_token_id"):
        make_agent("ar_mappo", env.spec, ar_token_id="no")
    agent = make_agent("ar_mappo", env.spec)
    with pytest.raises(TypeError, match="joint_policy"):
        policy_tables(agent, env)
    with pytest.raises(ValueError, match="actions="):
        agent.actors.entropy(env.observation_table())
    with pytest.raises(ValueError, match="permutation"):
        agent.actors.log_prob(env.observation_table(), torch.zeros(1, 2, dtype=torch.long),
                              order=torch.tensor([[0, 0]]))


# ------------------------------------------------------------------------------------------------ learning
@pytest.mark.parametrize("n_agents", [2, 4])
def test_ar_mappo_with_shared_parameters_solves_xor(n_agents: int) -> None:
    """xor(n), ONE shared network, no agent id: AR-MAPPO reaches J >= 0.99 J* (J* = 1, oracle). Ablation: the same
    model with the previous actions hidden (and, as in the seed's example, no agent id) plays identical marginals
    and stays <= J*_share + 0.02 = 2/2^n + 0.02 after every update (ICLR22 Prop. 1) — it fails the J* assertion.
    With agent id a product policy could break the symmetry; here conditioning is the ONLY difference."""
    game = games.xor(n_agents)
    j_star, j_share = optima.joint_optimum(game).value, optima.shared_optimum(game).value
    assert j_star == 1.0 and math.isclose(j_share, 2 / 2**n_agents, rel_tol=1e-12)
    kw = dict(env_kwargs={"n_agents": n_agents}, n_updates=40, num_envs=128, seed=0)
    report = oracle_run("ar_mappo", "matrix/xor", algo_kwargs=dict(FAST, agent_id=False), **kw)
    assert report.final_return >= 0.99 * j_star, report.summary()
    assert math.isnan(report.nash_gaps[-1])  # not defined for a non-product policy
    ablation = oracle_run("ar_mappo", "matrix/xor", algo_kwargs=dict(FAST, agent_id=False, **ABLATION), **kw)
    assert max(ablation.returns) <= j_share + 0.02, ablation.returns
    assert ablation.final_return < 0.99 * j_star


def test_permutation_game_keeps_a_high_entropy_optimum() -> None:
    """permutation(4): AR-MAPPO (a random order per sample, agent id, entropy bonus 0.01 on the sum of the
    conditional entropies, 60 updates) reaches exact J >= 0.98 with exact joint entropy >= 0.8 log 4! — it keeps
    (nearly) all 24 optimal joint actions — while independent MAPPO (separate actors) ends at J >= 0.98 with joint
    entropy <= 0.1 (one permutation). Ablation: the same AR model with the previous actions hidden (an independent
    policy with agent id) fails the AR assertion — it cannot pass: J >= 0.98 forces a product policy to be nearly
    deterministic. All entropies from the exact tables. Measured over seeds 0-9
    (``python benchmarks/permutation_reliability.py --variants ar_random ar_fixed``): this setting 10/10 (joint
    entropy 3.15-3.18 of log 24 = 3.18); with the fixed order 0/10 at 80 updates (joint entropy 1.6-2.5)."""
    target = 0.8 * math.log(math.factorial(4))
    kw = dict(env_kwargs={"n_agents": 4}, n_updates=60, num_envs=128, seed=0)
    model = dict(FAST, ar_order="random", agent_id=True)
    report = oracle_run("ar_mappo", "matrix/permutation", algo_kwargs=model, **kw)
    assert report.final_return >= 0.98 and report.entropies[-1] >= target, report.summary()
    ablation = oracle_run("ar_mappo", "matrix/permutation", algo_kwargs=dict(model, **ABLATION), **kw)
    assert not (ablation.final_return >= 0.98 and ablation.entropies[-1] >= target), ablation.summary()
    kw["n_updates"] = 40
    mappo = oracle_run("mappo", "matrix/permutation", algo_kwargs=dict(FAST, share_param=False), **kw)
    assert mappo.final_return >= 0.98 and mappo.entropies[-1] <= 0.1, mappo.summary()


CLIMBING_SEEDS = range(10)


def test_climbing_reaches_the_optimum_in_nine_of_ten_seeds() -> None:
    """Climbing (J* = 11 at (a,a); the independent learners of the README table stall at (b,b)=7 or the
    (b,c)/(c,c) plateaus with these large steps): AR-MAPPO (lr 5e-3, advantages not normalised, 30 updates) ends
    within 0.05 of 11 in >= 9 of seeds 0-9 — agent 2 best-responds to agent 1's action, so agent 1 sees the
    values 11/7/5 of its actions (theory: sequential AR NPG reaches (a,a) from every start). Ablation (previous
    actions hidden): seeds 0-2 all miss, so it reaches 11 in at most 7 of 10 — it fails the same assertion."""
    kw = dict(n_updates=30, num_envs=128)
    hits = [abs(oracle_run("ar_mappo", "matrix/climbing", seed=s, algo_kwargs=LARGE_STEPS, **kw).final_return - 11)
            <= 0.05 for s in CLIMBING_SEEDS]
    assert sum(hits) >= 9, hits
    misses = [abs(oracle_run("ar_mappo", "matrix/climbing", seed=s, algo_kwargs=dict(LARGE_STEPS, **ABLATION),
                             **kw).final_return - 11) > 0.05 for s in range(3)]
    assert sum(misses) >= 2, misses  # >= 2 misses: at most 8 of 10 can reach 11


def test_penalty_reaches_the_optimum_in_nine_of_ten_seeds() -> None:
    """penalty(k = -100) (J* = 10 at (a,a) or (c,c); miscoordination costs -100, the safe (b,b) pays 2): AR-MAPPO
    with the climbing settings ends within 0.05 of 10 in >= 9 of seeds 0-9 (measured 10/10). Ablation (previous
    actions hidden): seeds 0-2 all settle at the safe (b,b) = 2 (measured 0/10), so it fails the same assertion."""
    kw = dict(n_updates=30, num_envs=128, env_kwargs={"k": -100.0})
    hits = [abs(oracle_run("ar_mappo", "matrix/penalty", seed=s, algo_kwargs=LARGE_STEPS, **kw).final_return - 10)
            <= 0.05 for s in range(10)]
    assert sum(hits) >= 9, hits
    misses = [abs(oracle_run("ar_mappo", "matrix/penalty", seed=s, algo_kwargs=dict(LARGE_STEPS, **ABLATION),
                             **kw).final_return - 10) > 0.05 for s in range(3)]
    assert sum(misses) >= 2, misses


# ------------------------------------------------------------------------------------------------ continuous
GAUSS_DIMS = (2, 3, 1)


def _gauss_obs(batch: int = 128, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _closed_form_log_prob(mean: torch.Tensor, log_std: torch.Tensor, a: torch.Tensor, d: int) -> torch.Tensor:
    """``sum_{l < d} log N(a_l; mean_l, exp(log_std_l)^2)`` written out (float64)."""
    z = (a[..., :d] - mean[..., :d]) / log_std[..., :d].exp()
    return (-0.5 * z**2 - log_std[..., :d] - 0.5 * math.log(2 * math.pi)).sum(-1)


@pytest.mark.parametrize("std_param", ["exp", "harl"])
@pytest.mark.parametrize("random", [False, True])
def test_continuous_teacher_forced_log_probs_equal_the_sequential_samples(random: bool, std_param: str) -> None:
    """Continuous, heterogeneous dimensions (2, 3, 1) padded to 3: the log-probs of sequential sampling equal
    teacher forcing of the drawn actions in the same order (float64, to 1e-12) and equal the closed-form Gaussian
    log-density over each agent's OWN dimensions; the padded dimensions of the samples are exactly 0; the std is
    ``exp(log_std_init)`` / ``sigmoid(1) * 0.5`` at init; deterministic sampling returns the conditional means.
    Ablation: teacher forcing in another order differs."""
    kw = {"log_std_init": -0.5} if std_param == "exp" else {"std_param": "harl"}
    actor = _gauss_actor(**kw)
    obs = _gauss_obs()
    g = torch.Generator().manual_seed(1)
    order = random_orders(obs.shape[0], 3, g) if random else None
    with torch.no_grad():
        actions, lp_sample = actor.sample(obs, generator=g, order=order)
        lp_forced, ent = actor.log_prob_and_entropy(obs, actions, order=order)
        dist = actor.distribution(obs, actions, order=order)
        wrong = torch.tensor([2, 1, 0]) if not random else torch.arange(3)
        lp_wrong = actor.log_prob(obs, actions, order=wrong.expand(obs.shape[0], 3))
        greedy, _ = actor.sample(obs, order=order, deterministic=True)
        greedy_dist = actor.distribution(obs, greedy, order=order)
    assert actions.shape == (128, 3, 3) and actions.dtype == torch.float64
    std0 = math.exp(-0.5) if std_param == "exp" else 0.5 / (1 + math.exp(-1))
    assert torch.allclose(dist.log_std.exp(), torch.full_like(dist.log_std, std0), atol=1e-12)
    dist = DiagGaussian(dist.mean.detach(), dist.log_std.detach())
    for i, d in enumerate(GAUSS_DIMS):
        assert bool((actions[:, i, d:] == 0).all())  # padded dimensions are 0
        closed = _closed_form_log_prob(dist.mean[:, i], dist.log_std[:, i], actions[:, i], d)
        assert float((lp_forced[:, i] - closed).abs().max()) <= 1e-12
        ent_closed = (0.5 + 0.5 * math.log(2 * math.pi) + dist.log_std[:, i, :d]).sum(-1)
        assert float((ent[:, i] - ent_closed).abs().max()) <= 1e-12
        assert torch.equal(greedy[:, i, :d], greedy_dist.mean[:, i, :d])  # deterministic = the mean
    assert float((lp_sample - lp_forced).abs().max()) <= 1e-12
    assert float((lp_sample - lp_wrong).abs().max()) > 1e-3


def test_continuous_padded_dimensions_never_enter_log_probs_entropies_or_tokens() -> None:
    """Agents 0 and 2 have padded dimensions (2 of 3 and 1 of 3 used). Writing arbitrary values into the padded
    entries of the actions leaves every agent's log-prob, entropy and every conditional's mean bit-identical;
    changing a USED entry of agent 0 changes agent 0's log-prob and the later agents' means. The entropies are
    the closed forms over the agent's own dimensions only (not over d_max)."""
    actor = _gauss_actor()
    obs = _gauss_obs(64)
    with torch.no_grad():
        actions, _ = actor.sample(obs, generator=torch.Generator().manual_seed(3))
        lp, ent = actor.log_prob_and_entropy(obs, actions)
        mean = actor.distribution(obs, actions).mean
        junk = actions.clone()
        junk[:, 0, 2] = 7.0
        junk[:, 2, 1:] = -5.0
        lp_j, ent_j = actor.log_prob_and_entropy(obs, junk)
        mean_j = actor.distribution(obs, junk).mean
        used = actions.clone()
        used[:, 0, 1] += 1.0
        lp_u = actor.log_prob(obs, used)
        mean_u = actor.distribution(obs, used).mean
    assert torch.equal(lp, lp_j) and torch.equal(ent, ent_j) and torch.equal(mean, mean_j)
    assert float((lp_u[:, 0] - lp[:, 0]).abs().min()) > 0 and float((mean_u[:, 1:] - mean[:, 1:]).abs().max()) > 1e-4
    per_dim = 0.5 + 0.5 * math.log(2 * math.pi)  # log_std 0 at init
    assert torch.allclose(ent, torch.tensor([2 * per_dim, 3 * per_dim, per_dim], dtype=torch.float64).expand(64, 3))


@pytest.mark.parametrize("non_causal", [False, True])
def test_continuous_changing_an_agents_action_changes_only_the_agents_after_it(non_causal: bool) -> None:
    """Continuous actions, random orders: moving the action vector of the agent acting k-th never changes the
    conditional (mean and std) of the agents before it — exactly — and does change those after it. Ablations: a
    non-causal mask breaks the first claim; ``condition=False`` the second (nothing after k reacts)."""
    obs = _gauss_obs(64)
    g = torch.Generator().manual_seed(2)
    order = random_orders(64, 3, g)
    results = {}
    torch.manual_seed(0)
    cls = _NonCausal if non_causal else AutoRegressiveActor
    model = cls(3, 3, [BoxSpace(d) for d in GAUSS_DIMS], hidden=(16, 16), out_gain=1.0, dtype=torch.float64)
    for name, actor in (("model", model), ("no_condition", _gauss_actor(condition=False))):
        with torch.no_grad():
            actions, _ = actor.sample(obs, generator=g, order=order)
            before = actor.distribution(obs, actions, order=order).mean
            earlier_moved, later_moved = 0.0, 0.0
            pos = torch.empty_like(order).scatter_(1, order, torch.arange(3).expand(64, 3))
            for k in range(3):
                rows, agent = torch.arange(64), order[:, k]
                changed = actions.clone()
                changed[rows, agent, 0] += 1.0  # dimension 0 exists for every agent
                after = actor.distribution(obs, changed, order=order).mean
                diff = (after - before).abs().amax(-1)  # [64, n]
                earlier_moved = max(earlier_moved, float(diff[pos < k].max()) if k > 0 else 0.0)
                later_moved = max(later_moved, float(diff[pos > k].max()) if k < 2 else later_moved)
        results[name] = (earlier_moved, later_moved)
    earlier, later = results["model"]
    if not non_causal:
        assert earlier == 0.0 and later > 1e-3, results
        assert results["no_condition"][1] == 0.0  # ablation: nothing after k reacts
    else:
        assert earlier > 1e-3, results


# the a1·a2 game: exact J and Cov(a1, a2) of a two-agent Gaussian AR policy by Gauss-Hermite quadrature
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(80)  # weight exp(-x^2/2): E[f(Z)] = sum w f(x) / sum w
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def gaussian_game_moments(actors) -> tuple[float, float]:  # noqa: ANN001
    """``(J, Cov(a1, a2))`` of a two-agent, one-dimensional Gaussian AR policy on the a1·a2 game (constant
    observation 1, order 0, 1): ``a1 ~ N(mu1, s1^2)``, ``a2 | a1 ~ N(mu2(a1), s2^2)``, so
    ``J = E[a1 a2] = E[a1 mu2(a1)]`` and ``Cov = J - mu1 E[mu2(a1)]`` — one-dimensional integrals over ``a1``
    computed by 80-node Gauss-Hermite quadrature in float64 (exact for polynomials of degree < 160; ``mu2`` is
    the network's smooth ReLU-MLP output)."""
    obs = torch.ones(1, 2, 1, dtype=torch.float64)
    actors = actors.double()
    try:
        with torch.no_grad():
            d0 = actors.distribution(obs, torch.zeros(1, 2, 1, dtype=torch.float64))
            mu1, s1 = float(d0.mean[0, 0, 0]), float(d0.log_std[0, 0, 0].exp())
            a1 = torch.tensor(mu1 + s1 * _NODES, dtype=torch.float64)
            acts = torch.zeros(len(_NODES), 2, 1, dtype=torch.float64)
            acts[:, 0, 0] = a1
            mu2 = actors.distribution(obs.expand(len(_NODES), 2, 1), acts).mean[:, 1, 0].numpy()
    finally:
        actors.float()
    j = float((_WEIGHTS * a1.numpy() * mu2).sum())
    return j, j - mu1 * float((_WEIGHTS * mu2).sum())


def _gaussian_game_run(algo: str, seed: int, updates: int, **kw) -> tuple[list[float], list[float]]:
    env = make("gaussian/a1a2", num_envs=64, seed=seed)
    agent = make_agent(algo, env.spec, seed=seed, lr=5e-3, hidden=(32, 32), **kw)
    trainer = Trainer(env, agent, TrainerConfig(total_steps=64 * updates, rollout_length=1, progress=False,
                                                tensorboard=False), seed=seed)
    js, covs = [], []
    for _ in range(updates):
        agent.update(trainer.collect())
        j, cov = gaussian_game_moments(agent.actors)
        js.append(j)
        covs.append(cov)
    return js, covs


def test_gaussian_game_quadrature_matches_the_closed_form_of_a_linear_conditional() -> None:
    """The quadrature oracle against a closed form: with ``mu2(a1) = c a1 + b`` (a linear conditional mean written
    into a policy whose attention output is replaced), ``J = c (mu1^2 + s1^2) + b mu1`` and ``Cov = c s1^2``."""
    actor = AutoRegressiveActor(2, 1, BoxSpace(1), hidden=(4,), log_std_init=math.log(1.5), dtype=torch.float64)
    c, b, mu1 = 0.7, -0.3, 0.4

    class _Linear:
        def distribution(self, obs, actions):  # noqa: ANN001, ANN202
            mean = torch.stack([torch.full_like(actions[:, 0, 0], mu1), c * actions[:, 0, 0] + b], -1)
            return DiagGaussian(mean.unsqueeze(-1), actor.head.log_std_value().detach())

        def double(self):  # noqa: ANN202
            return self

        def float(self):  # noqa: ANN202
            return self

    j, cov = gaussian_game_moments(_Linear())
    assert math.isclose(j, c * (mu1**2 + 1.5**2) + b * mu1, rel_tol=1e-12)
    assert math.isclose(cov, c * 1.5**2, rel_tol=1e-12)


@pytest.mark.parametrize("seed", [2, 3])
def test_gaussian_game_ar_mappo_learns_a_correlated_joint_policy(seed: int) -> None:
    """The continuous a1·a2 game (r = a1 a2, envs/gaussian.py). No J criterion on this game NEEDS coordination in
    principle: a product policy ``N(mu1, s1^2) x N(mu2, s2^2)`` has ``J = mu1 mu2``, unbounded (with one shared
    network and identical observations ``mu1 = mu2``, ``J = mu^2``). But the start (means ~ 0) is a saddle of the
    product policy (``dJ/dmu = 2 mu ~ 0``: only sampling noise moves it), while an AR policy gains at once through
    correlation: ``J = mu1 E[mu2(a1)] + Cov(a1, a2)``, and its first improvements are (almost) all covariance.
    Criterion (exact quadrature oracle): after 6 updates J >= 1 (from |J_0| < 0.01) AND Cov(a1, a2) >= 0.5.
    Ablation (``ar_condition=False``, previous actions hidden): Cov is 0 to 1e-6 after every update, and on these
    seeds it is still at the saddle (J < 1; measured 0.00) — it fails the assertion. Seeds 0 and 1 are NOT
    failures of the ablation's J (it escapes the saddle by noise there, J 7.2 / 7.6 after 6 updates, above
    AR-MAPPO's 6.6 / 4.0): only the covariance separates them. Measured seeds 0-3: AR-MAPPO Cov
    2.26/1.60/1.81/2.42, J 6.63/4.01/5.94/2.44 (docs/ar_mappo.md)."""
    js, covs = _gaussian_game_run("ar_mappo", seed, 6)
    assert js[-1] >= 1.0 and covs[-1] >= 0.5, (js, covs)
    assert covs[0] >= 0.5 * js[0] > 0  # the first improvement is (mostly) correlation
    js_a, covs_a = _gaussian_game_run("ar_mappo", seed, 6, ar_condition=False)
    assert max(abs(c) for c in covs_a) <= 1e-6, covs_a
    assert js_a[-1] < 1.0 and not (js_a[-1] >= 1.0 and covs_a[-1] >= 0.5), js_a


def test_cli_trains_ar_mappo_on_the_continuous_game_and_resumes(tmp_path) -> None:  # noqa: ANN001
    """``seqmarl train algo=ar_mappo env=gaussian/a1a2`` writes a checkpoint (whose actor has the Gaussian head's
    std parameter) and resumes from it to 128 env steps with finite returns; ``seqmarl validate`` refuses a
    non-tabular env with exit code 2 (its exact oracle needs a matrix game)."""
    import json

    from seqmarl.cli import main

    small = ["algo.hidden=16,16", "algo.ppo_epoch=2", "num_envs=16", "progress=false", "tensorboard=false"]
    run = tmp_path / "g"
    assert main(["train", "algo=ar_mappo", "env=gaussian/a1a2", "total_steps=64", f"run_dir={run}", *small]) == 0
    assert main(["train", f"resume={run}", "total_steps=128"]) == 0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["env_steps"] == 128 and all(math.isfinite(r["episode_return"]) for r in rows)
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert "head.log_std" in state["agent"]["actors"]  # the Gaussian head's std parameter
    assert main(["validate", "algo=ar_mappo", "env=gaussian/a1a2", "total_steps=16", f"run_dir={tmp_path / 'v'}",
                 *small]) == 2


def test_mamujoco_half_cheetah_smoke() -> None:
    """MaMuJoCo HalfCheetah-2x3 (two agents, 3 joints each — homogeneous dims; heterogeneous padding is covered
    by the unit tests above): two AR-MAPPO updates on 2 envs x 16 steps run with finite metrics, and acting
    gives ``[B, 2, 3]`` float actions with finite conditional log-probs."""
    pytest.importorskip("gymnasium_robotics")
    env = make("mamujoco/HalfCheetah-2x3", num_envs=2, seed=0)
    try:
        agent = make_agent("ar_mappo", env.spec, seed=0, hidden=(16, 16), ppo_epoch=1)
        history = Trainer(env, agent, TrainerConfig(total_steps=2 * 16 * 2, rollout_length=16, progress=False,
                                                    tensorboard=False), seed=0).train()
        assert len(history) == 2 and all(math.isfinite(history[-1][k]) for k in ("critic_loss", "entropy"))
        actions, log_probs = agent.act(env.reset(seed=1))
        assert actions.shape == (2, 2, 3) and actions.is_floating_point() and bool(torch.isfinite(log_probs).all())
    finally:
        env.close()
