"""seqmarl.theory — exact maths on finite cooperative Markov games (numpy float64; never imports torch).

Example::

    from seqmarl.theory import games, optima, evaluate
    g = games.xor(4)
    optima.joint_optimum(g).value        # 1.0
    optima.shared_optimum(g).value       # 2 / 2**4
"""

import importlib

from . import evaluate, games, multiagent, policies
from .games import ProductGaussianGame, climbing, penalty, permutation, qtran, random_game, xor
from .markov_game import MarkovGame, matrix_game
from .policies import AutoRegressive, Factorized, Joint, Policy, Shared

__all__ = [
    "MarkovGame",
    "matrix_game",
    "games",
    "policies",
    "evaluate",
    "multiagent",
    "xor",
    "permutation",
    "climbing",
    "penalty",
    "qtran",
    "random_game",
    "ProductGaussianGame",
    "Factorized",
    "Shared",
    "AutoRegressive",
    "Joint",
    "Policy",
]

# Submodules that need cvxpy / extra work are imported on first use (PEP 562), so ``import seqmarl.theory``
# stays light: ``seqmarl.theory.optima``, ``.factorization``, ``.bounds``, ``.iteration``, ``.transform``,
# ``.npg``, ``.counterexamples``.
_LAZY = ("optima", "factorization", "bounds", "iteration", "transform", "npg", "counterexamples", "trust_region")


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
