"""The small interface every seqmarl algorithm implements (DESIGN.md §3), as a structural protocol.

An algorithm acts on a batched :class:`seqmarl.envs.Step`, learns from a filled rollout buffer, and can be
saved and restored. The trainer loop (:mod:`seqmarl.algos.trainer`) needs nothing else.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Algorithm(Protocol):
    """``act(step, deterministic) -> (actions, log_probs)``; ``update(buffer) -> metrics``;
    ``state_dict()`` / ``load_state_dict(state)``; ``device`` and ``config`` attributes."""

    device: torch.device
    config: Any

    def act(self, step: Any, deterministic: bool = False) -> Any: ...

    def update(self, buffer: Any) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
