"""seqmarl — sequential (auto-regressive) policy updates for cooperative MARL.

Areas: :mod:`seqmarl.theory` (exact oracles), :mod:`seqmarl.proofs_checks` (theorem checks walked by
``seqmarl verify``), :mod:`seqmarl.envs` (batched environments), :mod:`seqmarl.algos` (PyTorch algorithms),
:mod:`seqmarl.testing` (hypothesis strategies and assertion helpers for users).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
