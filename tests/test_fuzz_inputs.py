"""Property-based fuzz suite over malformed inputs (issue 13): every public constructor and command either
succeeds or raises the documented error type (``ValueError``/``TypeError``; ``ConfigError`` is a
``ValueError``) naming the argument — never a deep exception, never a silent acceptance of a bad value."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqmarl.algos import TrainerConfig, make_agent
from seqmarl.algos.configs import HAPPOConfig, OnPolicyConfig
from seqmarl.config import ConfigError, parse_overrides, resolve
from seqmarl.envs import make
from seqmarl.theory import AutoRegressive, Factorized, MarkovGame, Shared, games

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

junk = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(allow_nan=False, allow_infinity=False, max_magnitude=10), st.text(max_size=6),
    st.lists(st.integers(-3, 5), max_size=3), st.tuples(st.floats(-2, 2), st.floats(-2, 2)),
)


def _named(exc: BaseException, *names: str) -> bool:
    text = str(exc)
    return any(name in text for name in names)


def _call(fn, *names: str):  # noqa: ANN001, ANN202
    """``fn()``; a raised error must be ValueError/TypeError naming one of ``names``."""
    try:
        return fn()
    except (ValueError, TypeError) as exc:
        assert _named(exc, *names), f"{type(exc).__name__} does not name {names}: {exc}"
        return None


# ---------------------------------------------------------------------------------------------- games
@FUZZ
@given(n=junk)
def test_named_games(n: object) -> None:
    for factory in (games.xor, games.permutation):
        game = _call(lambda: factory(n), "n")
        if game is not None:
            assert isinstance(n, int) and n >= 2
    game = _call(lambda: games.penalty(n), "k")
    if game is not None:
        assert math.isfinite(float(n)) and float(n) <= 0 and not isinstance(n, (complex, str))  # type: ignore[arg-type]


@FUZZ
@given(n_agents=junk, n_actions=junk, n_states=junk, gamma=junk, alpha=junk)
def test_random_game(n_agents: object, n_actions: object, n_states: object, gamma: object, alpha: object) -> None:
    rng = np.random.default_rng(0)
    kwargs = dict(n_agents=n_agents, n_actions=n_actions, n_states=n_states, gamma=gamma, dirichlet_alpha=alpha)
    _call(lambda: games.random_game(rng, **kwargs), "n_agents", "n_actions", "n_states", "gamma", "dirichlet_alpha",
          "random_game")


@FUZZ
@given(reward=st.one_of(junk, st.lists(st.lists(junk, max_size=3), max_size=3)), gamma=junk, horizon=junk,
       bad_initial=st.booleans())
def test_markov_game(reward: object, gamma: object, horizon: object, bad_initial: bool) -> None:
    initial = np.array([0.7, 0.7]) if bad_initial else np.array([1.0])
    game = _call(lambda: MarkovGame(reward, np.ones((1, 2, 2, 1)), gamma, initial, horizon=horizon),
                 "reward", "transition", "gamma", "initial", "horizon")
    if game is not None:
        assert np.isrealobj(game.reward) and np.all(np.isfinite(game.reward)) and not bad_initial


# ---------------------------------------------------------------------------------------------- policies
tables = st.one_of(junk, st.lists(st.lists(st.floats(-1, 2), min_size=1, max_size=3), max_size=3))


@FUZZ
@given(tables=st.lists(tables, max_size=3), order=junk, n_states=junk, n_actions=junk)
def test_policies(tables: list, order: object, n_states: object, n_actions: object) -> None:
    pol = _call(lambda: Factorized(tables), "tables")
    if pol is not None:
        for t in pol.tables:
            assert np.allclose(t.sum(axis=-1), 1.0)
    _call(lambda: Shared(tables[0] if tables else None, 2), "table", "n_agents")
    conditionals = [np.full((1, 2), 0.5), np.full((1, 2, 2), 0.5)]
    ar = _call(lambda: AutoRegressive(order, conditionals), "order", "conditionals")
    if ar is not None:
        assert sorted(ar.order) == [0, 1] and tuple(order) == ar.order  # type: ignore[arg-type]
    pol = _call(lambda: Factorized.uniform(n_states, n_actions), "n_states", "n_actions")
    if pol is not None:
        assert pol.n_states >= 1


# ---------------------------------------------------------------------------------------------- configs
_FIELDS = [f for f in OnPolicyConfig.__dataclass_fields__ if not f.startswith("_")]


@FUZZ
@given(name=st.sampled_from(_FIELDS), value=junk)
def test_algorithm_config_fields(name: str, value: object) -> None:
    cfg = _call(lambda: HAPPOConfig(**{name: value}), name, "share_param", "std_param", "agent_id", "log_std_init",
                "std_x_coef")
    if cfg is not None:
        default = getattr(HAPPOConfig(), name)
        kind = type(default)
        got = getattr(cfg, name)
        if kind is bool:
            assert isinstance(got, bool)
        elif kind in (int, float):
            assert isinstance(got, (int, float)) and not isinstance(got, bool) and math.isfinite(got)
            if kind is int:
                assert isinstance(got, int)
        elif kind is tuple:
            assert isinstance(got, tuple) and all(isinstance(h, int) and h >= 1 for h in got)


@FUZZ
@given(name=st.sampled_from(["total_steps", "rollout_length", "eval_interval", "eval_episodes", "checkpoint_interval",
                             "log_interval", "progress", "tensorboard"]), value=junk)
def test_trainer_config(name: str, value: object) -> None:
    cfg = _call(lambda: TrainerConfig(**{name: value}), name)
    if cfg is not None:
        assert type(getattr(cfg, name)) is type(getattr(TrainerConfig(), name))


def test_make_agent_and_env_arguments() -> None:
    env = make("matrix/xor", num_envs=2)
    for spec, kwargs, name in [("not a spec", {}, "spec"), (env.spec, {"simultaneous": "false"}, "simultaneous"),
                               (env.spec, {"hidden": "64,64"}, "hidden"), (env.spec, {"ppo_epoch": 2.5}, "ppo_epoch"),
                               (env.spec, {"lr": float("inf")}, "lr"), (env.spec, {"entropy_coef": float("nan")}, "entropy_coef")]:
        with pytest.raises((TypeError, ValueError), match=name):
            make_agent("happo", spec, **kwargs)
    with pytest.raises(ValueError, match="num_envs=10,000,000,000 would need about .* GiB"):
        make("matrix/xor", num_envs=10**10)
    with pytest.raises(ValueError, match=r"xor\(n=40\) .* would need 16,384.0 GiB"):
        make("matrix/xor", n_agents=40)
    with pytest.raises(ValueError, match=r"permutation\(n=12\) .* GiB"):
        games.permutation(12)
    with pytest.raises(TypeError, match="reward must be an array of real numbers, got complex"):
        MarkovGame(np.ones((1, 2)) * 1j, np.ones((1, 2, 1)), 0.0, np.ones(1))
    with pytest.raises(TypeError, match="order must hold integer agent indices"):
        AutoRegressive((0.7, 1.2), [np.full((1, 2), 0.5), np.full((1, 2, 2), 0.5)])
    with pytest.raises(ValueError, match="n_states must be an integer >= 1"):
        Factorized.uniform(0, [2, 2])
    with pytest.raises(TypeError, match="eval_interval must be an integer"):
        TrainerConfig(eval_interval=float("nan"))


# ---------------------------------------------------------------------------------------------- overrides / CLI
_TOP = ["algo", "env", "seed", "device", "num_envs", "total_steps", "rollout_length", "eval_interval",
        "eval_episodes", "checkpoint_interval", "log_interval", "run_dir", "progress", "tensorboard", "preset",
        "algo.hidden", "algo.lr", "algo.ppo_epoch", "algo.simultaneous", "algo.granularity", "env.n_agents",
        "env.obs", "bogus", "algo.bogus", "env.bogus"]
values = st.one_of(st.sampled_from(["", "0", "-1", "2.5", "inf", "nan", "none", "true", "false", "64,,64", ",", "3",
                                    "cuda", "tpu", "cpu", "matrix/xor", "happo", "1e400", "(4,)", "abc"]),
                   st.text(max_size=5))


@FUZZ
@given(key=st.sampled_from(_TOP), value=values)
def test_overrides_succeed_or_name_the_key(key: str, value: str) -> None:
    try:
        cfg = resolve(parse_overrides([f"{key}={value}"]))
    except ConfigError as exc:
        short = key.split(".")[-1]
        assert _named(exc, key, short, "algo config", "env="), f"{exc} does not name {key}"
        return
    cfg.validate()
    for name in ("num_envs", "total_steps", "checkpoint_interval", "log_interval"):
        assert getattr(cfg, name) >= 1


_counter = itertools.count()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["train", "validate"]), key=st.sampled_from(_TOP), value=values)
def test_cli_exits_0_or_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str,
                                            key: str, value: str) -> None:
    from seqmarl.cli import main

    base = [f"run_dir={tmp_path / str(next(_counter))}", "total_steps=8", "num_envs=4", "rollout_length=1",
            "progress=false", "tensorboard=false", "algo.hidden=4", "algo.ppo_epoch=1", "algo.critic_epoch=1"]
    if key in ("num_envs", "total_steps") and value.strip().isdigit() and int(value) > 64:
        value = "64"
    if key == "run_dir" and value.strip():
        value = str(tmp_path / f"r{next(_counter)}" / value.strip().replace("/", "_").replace("\x00", "_"))
    try:
        rc = main([command, *base, f"{key}={value}"])
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code
    out = capsys.readouterr()
    assert rc in (0, 2), (rc, out.out, out.err)
    assert "Traceback" not in out.out + out.err
    if rc == 2:
        assert "error" in (out.out + out.err).lower()


def test_a_raw_policy_array_without_the_state_axis_says_so() -> None:
    """Issue 13: a policy array of the wrong shape is not silently read as a table of another game."""
    import numpy as np

    from seqmarl.theory import evaluate, games

    with pytest.raises(ValueError, match=r"lacks the state axis.*array\[None\]"):
        evaluate.expected_return(games.xor(2), np.full((2, 2), 0.25))
    with pytest.raises(ValueError, match=r"policy \(a raw array.*\(1, 2, 2\).*got \(2, 2, 2\)"):
        evaluate.expected_return(games.xor(2), np.full((2, 2, 2), 0.125))
    assert evaluate.expected_return(games.xor(2), np.full((2, 2), 0.25)[None]) == pytest.approx(0.5)
