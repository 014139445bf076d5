"""smax/* with ``pad_units``: the padded observation, state and action mask restricted to the real units' slots
equal the unpadded adapter's for the same seed and actions (episode ends included), the pad slots are exactly 0,
maps with the same padding share their sizes, and bad values are rejected by name. The slot positions below are
written out here independently of the adapter, so a block placed at the wrong offset fails the comparison."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("jaxmarl")

from seqmarl import envs  # noqa: E402
from seqmarl.config import parse_overrides, resolve  # noqa: E402

F, G, MOVES = 13, 10, 5  # jaxmarl 0.2.0: len(unit_features), len(own_features), num_movement_actions
B, LIMIT, STEPS = 2, 12, 40
PAD = (8, 8)


def obs_slots(na: int, ne: int, pa: int, pe: int) -> np.ndarray:
    """Indices in the padded observation of the unpadded observation's entries (other allies, enemies, own)."""
    idx = [k * F + f for k in range(na - 1) for f in range(F)]
    idx += [(pa - 1) * F + j * F + f for j in range(ne) for f in range(F)]
    idx += [(pa - 1 + pe) * F + g for g in range(G)]
    return np.array(idx)


def state_slots(na: int, ne: int, pa: int, pe: int) -> np.ndarray:
    """Indices in the padded state of the unpadded state's entries (unit blocks, teams, types)."""
    idx = [i * G + g for i in range(na) for g in range(G)] + [(pa + j) * G + g for j in range(ne) for g in range(G)]
    t = (pa + pe) * G
    for base in (t, t + pa + pe):
        idx += [base + i for i in range(na)] + [base + pa + j for j in range(ne)]
    return np.array(idx)


def _pad_mask(size: int, real: np.ndarray) -> np.ndarray:
    mask = np.ones(size, dtype=bool)
    mask[real] = False
    return mask


@pytest.fixture(scope="module")
def pair():
    """The padded and the unpadded 3m adapter with the same seed, stepped with the same random available actions;
    yields the list of (padded step, plain step, padded enemy health in the package state)."""
    padded = envs.make("smax/3m", num_envs=B, seed=3, episode_limit=LIMIT, pad_units=PAD)
    plain = envs.make("smax/3m", num_envs=B, seed=3, episode_limit=LIMIT)
    gen = torch.Generator().manual_seed(0)
    sp, su = padded.reset(), plain.reset()
    records = [(sp, su, np.asarray(padded._jstate.state.unit_health))]
    ends = 0
    for _ in range(STEPS):
        avail = su.avail_actions
        logits = torch.rand(avail.shape, generator=gen).masked_fill(~avail, -1.0)
        actions = logits.argmax(-1)  # a uniformly random available action; the same index in the padded env
        sp, su = padded.step(actions), plain.step(actions)
        ends += int((su.terminated | su.truncated).sum())
        records.append((sp, su, np.asarray(padded._jstate.state.unit_health)))
    assert ends >= 2, "the comparison must cross episode ends"
    return padded, plain, records


@pytest.mark.slow
def test_padded_obs_equals_plain_obs_on_real_slots(pair):
    padded, plain, records = pair
    real = obs_slots(3, 3, *PAD)
    pad = _pad_mask(padded.spec.obs_dim, real)
    for sp, su, _ in records:
        o = sp.obs.numpy()
        np.testing.assert_array_equal(o[..., real], su.obs.numpy())
        assert np.all(o[..., pad] == 0.0)
        if "final_obs" in sp.info:
            np.testing.assert_array_equal(sp.info["final_obs"].numpy()[..., real], su.info["final_obs"].numpy())
            np.testing.assert_array_equal(sp.info["final_state"].numpy()[..., state_slots(3, 3, *PAD)],
                                          su.info["final_state"].numpy())
    # the own block's health (first entry of the last G) is the agent's normalised health, by slot
    health = records[-1][2]
    own = records[-1][0].obs.numpy()[..., (PAD[0] - 1 + PAD[1]) * F]
    np.testing.assert_allclose(own, health[:, :3] / 45.0, rtol=1e-6)


@pytest.mark.slow
def test_padded_state_equals_plain_state_on_real_slots(pair):
    padded, plain, records = pair
    real = state_slots(3, 3, *PAD)
    pad = _pad_mask(padded.spec.state_dim, real)
    seen_damage = False
    for sp, su, health in records:
        s = sp.state.numpy()
        np.testing.assert_array_equal(s[..., real], su.state.numpy())
        assert np.all(s[..., pad] == 0.0)
        # enemy j's health feature sits in padded unit slot max_allies + j (marines: 45 hit points)
        for j in range(3):
            np.testing.assert_allclose(s[:, (PAD[0] + j) * G], health[:, 3 + j] / 45.0, rtol=1e-6)
        seen_damage |= bool(np.any((health[:, 3:] > 0) & (health[:, 3:] < 45)))
        # team bits: allies 0, the 3 real enemies 1, padded enemies 0
        t = (PAD[0] + PAD[1]) * G
        assert np.all(s[:, t + PAD[0]: t + PAD[0] + 3] == 1.0) and np.all(s[:, t: t + PAD[0]] == 0.0)
    assert seen_damage, "some enemy must have been hit, or the health check proves little"


@pytest.mark.slow
def test_padded_avail(pair):
    padded, plain, records = pair
    n_plain = MOVES + 3
    assert padded.spec.agent_spaces[0].n == MOVES + PAD[1]
    for sp, su, _ in records:
        np.testing.assert_array_equal(sp.avail_actions.numpy()[..., :n_plain], su.avail_actions.numpy())
        assert not sp.avail_actions[..., n_plain:].any()
    assert any(bool(sp.avail_actions[..., MOVES:n_plain].any()) for sp, _, _ in records), "no attack was available"


def test_same_pad_same_sizes() -> None:
    a = envs.make("smax/3m", num_envs=1, pad_units=PAD)
    b = envs.make("smax/8m", num_envs=1, pad_units=PAD)
    c = envs.make("smax/5m_vs_6m", num_envs=1, pad_units=PAD)
    for e in (b, c):
        assert (e.spec.obs_dim, e.spec.state_dim, e.spec.agent_spaces[0].n) == (
            a.spec.obs_dim, a.spec.state_dim, a.spec.agent_spaces[0].n)
    assert a.spec.obs_dim == (PAD[0] - 1 + PAD[1]) * F + G and a.spec.state_dim == (PAD[0] + PAD[1]) * (G + 2)
    assert (a.spec.n_agents, b.spec.n_agents, c.spec.n_agents) == (3, 8, 5)
    # 8m padded to (8, 8) is the package's own layout
    plain = envs.make("smax/8m", num_envs=1)
    assert (plain.spec.obs_dim, plain.spec.state_dim) == (b.spec.obs_dim, b.spec.state_dim)


@pytest.mark.parametrize("bad", [(2, 8), (8, 2), (8,), (8, 8, 8), ("a", 8), (8.0, 8), 8, True])
def test_bad_pad_units_named(bad) -> None:
    with pytest.raises(ValueError, match=r"pad_units.*'3m'.*3 allies, 3 enemies"):
        envs.make("smax/3m", num_envs=1, pad_units=bad)


def test_pad_units_needs_unit_list() -> None:
    with pytest.raises(ValueError, match="pad_units needs observation_type='unit_list'"):
        envs.make("smax/3m", num_envs=1, pad_units=PAD, observation_type="conic")


def test_cli_spelling() -> None:
    cfg = resolve(parse_overrides(["algo=mat", "env=smax/3m", "env.pad_units=8,8"]))
    assert cfg.env_kwargs == {"pad_units": (8, 8)}
    cfg = resolve(parse_overrides(["algo=mat", "env=smax/3m", "env.pad_units=none"]))
    assert cfg.env_kwargs == {"pad_units": None}
