"""Adapters whose ``B`` environments are one jitted, vmapped JAX function of the real ``jaxmarl`` package (SMAX,
JaxMARL's MPE): the shared plumbing.

* :class:`JaxBatchedEnv`: the :class:`~seqmarl.envs.base.MultiAgentEnv` protocol over a compiled object with
  ``reset(root) -> (root, states, out)``, ``step(root, states, actions) -> (root, states, floats, bools)`` and
  ``pack(states) -> out`` (``out``: a dict of per-field arrays). A step of the package auto-resets inside the jitted
  function, exactly as the package's own ``MultiAgentEnv.step`` (``k_step, k_reset = split(key)``); the protocol's
  ``_reset_where`` then only checks that the episodes the protocol ended are the ones the package ended. All
  outputs of a step come back as one float32 and one bool array (two hand-overs to torch instead of one per field);
  a subclass cuts them into views in :meth:`JaxBatchedEnv._unpack`.
* Keys: :meth:`reset` draws an integer ``s`` from the env's torch generator; ``root = PRNGKey(s)``; every reset and
  step splits ``root, *keys = split(root, B + 1)`` and environment ``b`` uses ``keys[b]``.
* Checkpoints: :meth:`state_dict` holds the key and the jax states as numpy arrays, so a resume is exact.
"""

from __future__ import annotations

import os
import warnings
from abc import abstractmethod
from typing import Any

import numpy as np
import torch

from ._extras import import_extra
from .base import EnvSpec, MultiAgentEnv

__all__ = ["JaxBatchedEnv", "require_jaxmarl", "enable_compilation_cache"]


def require_jaxmarl(env: str | None = None) -> tuple[Any, Any, Any]:
    """Import ``(jax, jax.numpy, jaxmarl)`` or raise :class:`~seqmarl.envs.MissingExtraError` (an ``ImportError``)
    naming the ``smax`` extra. (jaxmarl prints "Importing submoduled environments..." when first imported.)"""
    jax = import_extra("jax", "smax", env)
    jnp = import_extra("jax.numpy", "smax", env)
    jaxmarl = import_extra("jaxmarl", "smax", env)
    return jax, jnp, jaxmarl


def enable_compilation_cache(jax: Any) -> str | None:
    """Turn on jax's persistent compilation cache (compiling a SMAX step takes 10-30 s on a small CPU; the cache
    makes later processes load it instead) in ``$SEQMARL_JAX_CACHE_DIR`` or ``~/.cache/seqmarl/jax`` — unless the
    user configured a cache directory already or set ``SEQMARL_JAX_CACHE=0``. Returns the directory in use."""
    current = getattr(jax.config, "jax_compilation_cache_dir", None)
    if current or os.environ.get("SEQMARL_JAX_CACHE", "1") == "0":
        return current or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.environ.get("SEQMARL_JAX_CACHE_DIR") or os.path.join(base, "seqmarl", "jax")
    try:
        jax.config.update("jax_compilation_cache_dir", path)
    except Exception:  # noqa: BLE001 - an older jax without the option: just compile
        return None
    return path


_READ_ONLY_WARNING = "The given NumPy array is not writable"
_WARNED = False


def _to_torch(x: Any, device: torch.device) -> torch.Tensor:
    """A torch view of the jax CPU array ``x`` (no copy: ``np.asarray`` of a CPU ``jax.Array`` is a read-only view
    of its buffer, and ``torch.from_numpy`` shares it; about 10 us against DLPack's 50 us per array). The buffer
    is immutable on the jax side: the protocol never writes into step tensors in place. On a CUDA torch device
    the view is then copied there."""
    global _WARNED
    if _WARNED:
        t = torch.from_numpy(np.asarray(x))
    else:  # torch warns once per process that the array is read-only: that one warning is swallowed here
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_READ_ONLY_WARNING, category=UserWarning)
            t = torch.from_numpy(np.asarray(x))
        _WARNED = True
    return t if device.type == "cpu" else t.to(device)


_LINE = 16  # float32 entries in 64 bytes


def _pad_to_line(x: Any) -> Any:
    """``x`` ``[B, w]`` zero-padded on the right to a multiple of 16 columns (64 bytes of float32). Every field of
    the step's float array then starts at the same offset modulo 64 bytes in its row, so the final state and the
    next state of a row are laid out alike: CPU matrix kernels (MKL/oneDNN) may round differently for differently
    aligned inputs, and the trainer reuses the critic's value of the final state as that of the next state where
    they are equal (``Trainer._collect_feedforward``), which must match the plain loop bit for bit."""
    import jax.numpy as jnp

    extra = (-x.shape[1]) % _LINE
    return jnp.pad(x, ((0, 0), (0, extra))) if extra else x


class JaxBatchedEnv(MultiAgentEnv):
    """The protocol over a compiled batch of a jaxmarl environment (module docstring). Subclasses pass the compiled
    object and implement :meth:`_unpack` (and may extend :meth:`_step_finish` with their own ``info`` entries)."""

    #: dtype of the actions handed to the jitted step (``int32`` for discrete, ``float32`` for Box actions)
    _host_action_dtype: torch.dtype = torch.int32

    def __init__(self, spec: EnvSpec, num_envs: int, device: str | torch.device | None, seed: int | None,
                 check_actions: bool, compiled: Any, jax: Any, jnp: Any) -> None:
        super().__init__(spec, num_envs, device, seed, check_actions)
        self._fns = compiled
        self._jax, self._jnp = jax, jnp
        self._root: Any = None
        self._jstate: Any = None
        self._cur: dict[str, torch.Tensor] | None = None
        self._next: dict[str, torch.Tensor] | None = None
        self._done: torch.Tensor | None = None
        self._in_step = False
        self._pending: list = []  # the dispatched step's two output arrays (_advance_start -> _advance_finish)
        #: the integer of the last full reset's ``PRNGKey`` (module docstring, "Keys")
        self.root_seed: int | None = None

    def _torch(self, out: dict) -> dict[str, torch.Tensor]:
        return {k: _to_torch(v, self.device) for k, v in out.items()}

    @abstractmethod
    def _unpack(self, floats: Any, bools: Any) -> tuple[dict, dict, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(final, next, reward [B], done [B], terminated [B])`` from a step's two arrays: ``final`` / ``next``
        are dicts with ``"obs"``, ``"state"`` (and ``"avail"`` where actions have availability) of the state the
        step reached and of the state after the automatic reset."""

    # --- protocol hooks -----------------------------------------------------------------------------
    def _reset_where(self, mask: torch.Tensor) -> None:
        if self._in_step:  # the jitted step already restarted the episodes that ended
            self._in_step = False
            assert self._done is not None and self._next is not None
            if not torch.equal(mask.to(self._done.device), self._done):
                raise RuntimeError("internal error: episodes ended by jaxmarl differ from the episodes ended by the "
                                   "protocol (the package's max_steps must be episode_limit - 1)")
            self._cur = self._next
            return
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self._generator, device=self.device).item())
        self.root_seed = seed
        # a committed key: outputs are then committed like the step's own, and step() compiles only once
        root = self._jax.device_put(self._jax.random.PRNGKey(seed), self._fns.device)
        self._root, self._jstate, out = self._fns.reset(root)
        self._cur = self._torch(out)

    def reseed_steps(self, seed: int) -> None:
        """Replace the key that drives the coming steps by ``PRNGKey(seed)``, keeping the current states: the same
        start states (``reset(seed=s)``) then play out under other draws of the package's in-step randomness
        (SMAX: weapon-cooldown jitter, the heuristic enemy's choices; automatic resets too). The env is then no longer
        a function of its reset seed alone (checkpoints stay exact: they hold the key). Used to tell a policy's
        weak start states from bad luck (``benchmarks/smax_start_states.py``)."""
        from .base import _check_int

        if self._jstate is None:
            raise RuntimeError("call reset() before reseed_steps()")
        if self._in_step or self._pending:
            raise RuntimeError("reseed_steps() between step_async() and step_wait()")
        seed = _check_int(seed, "seed", 0)
        self._root = self._jax.device_put(self._jax.random.PRNGKey(seed), self._fns.device)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._advance_start(actions)
        return self._advance_finish()

    def _advance_start(self, actions: torch.Tensor) -> None:
        """Dispatch the jitted step (JAX runs it asynchronously; :meth:`_advance_finish` waits for it)."""
        # a host array straight into the jitted call (its C++ fast path converts it; ~20x cheaper than
        # DLPack + device_put per step); always this kind of argument, so the step still compiles once
        act = actions.detach().to("cpu", self._host_action_dtype).numpy()
        self._root, self._jstate, *self._pending = self._fns.step(self._root, self._jstate, act)

    def _advance_finish(self) -> tuple[torch.Tensor, torch.Tensor]:
        (floats, bools), self._pending = self._pending, []
        final, nxt, reward, done, terminated = self._unpack(floats, bools)
        self._cur, self._next, self._done = final, nxt, done
        self._in_step = True
        return reward, terminated

    def _observe(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if self._cur is None:
            raise RuntimeError("call reset() before step()")
        return self._cur["obs"], self._cur["state"], self._cur.get("avail")

    # --- checkpoints ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: generator, counters, the jax key and the package's states."""
        jax = self._jax
        leaves, _ = jax.tree.flatten(self._jstate) if self._jstate is not None else ([], None)
        return {"generator": self._generator.get_state(), "elapsed": self._elapsed.clone(),
                "episode_return": self._episode_return.clone(), "needs_reset": self._needs_reset,
                "root": None if self._root is None else torch.from_numpy(np.asarray(self._root).astype(np.int64)),
                "leaves": [torch.from_numpy(np.asarray(x).astype(np.int64 if np.issubdtype(np.asarray(x).dtype, np.unsignedinteger)
                                                                  else np.asarray(x).dtype).copy()) for x in leaves]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        jax, jnp = self._jax, self._jnp
        self._generator.set_state(state["generator"])
        self._elapsed = state["elapsed"].to(self.device)
        self._episode_return = state["episode_return"].to(self.device)
        self._needs_reset = bool(state["needs_reset"])
        if state["root"] is None:
            return
        # rebuild the pytree structure from a reset, then put the saved leaves in
        dev = self._fns.device
        _, template, _ = self._fns.reset(jax.device_put(jax.random.PRNGKey(0), dev))
        treedef = jax.tree.structure(template)
        self._jstate = jax.device_put(jax.tree.unflatten(treedef, [jnp.asarray(t.numpy(), dtype=ref.dtype) for t, ref
                                                                   in zip(state["leaves"], jax.tree.leaves(template))]), dev)
        self._root = jax.device_put(jnp.asarray(state["root"].numpy().astype(np.uint32)), dev)
        # recompute the current observation of the restored states
        self._cur = self._torch(self._observe_states(self._jstate))
        self._in_step = False

    def _observe_states(self, jstate: Any) -> dict:
        return self._fns.pack(jstate)
