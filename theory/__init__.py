"""seqmarl.theory — exact maths on finite cooperative Markov games (numpy float64; never imports torch).

Example::

    from seqmarl.theory import games, optima, evaluate
    g = games.xor(4)
    optima.joint_optimum(g).value        # 1.0
    optima.shared_optimum(g).value       # 2 / 2**4
"""

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
