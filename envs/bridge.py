"""The Bridge grid of Fu et al. (theory.md §3.1), a "temporal XOR": one agent must wait while the other
crosses a one-cell-wide bridge. Fully vectorised over environments (no Python loop over environments).

Map (rows top to bottom, ``B`` = block, ``1``/``2`` = start cells, everything else open)::

    row 0:  1 A B B A A
    row 1:  A A A A A A      <- the bridge is row 1, columns 2-3
    row 2:  A A B B A 2

Agent 0 starts at ``(0, 0)`` with goal ``(2, 5)``; agent 1 starts at ``(2, 5)`` with goal ``(0, 0)``.

Actions (both agents): ``0 stay, 1 left (col - 1), 2 right (col + 1), 3 up (row - 1), 4 down (row + 1)``.

Movement, resolved simultaneously in this order (precise rules; tests cover each):

1. A *done* agent (one that has reached its goal) ignores its action, may only ``stay``
   (``avail_actions`` = stay only) and has left the board: it blocks nobody.
2. A move off the grid or into a block is replaced by ``stay``.
3. A move onto the agent's **own goal** always succeeds: the agent arrives, is done and leaves the board,
   so it cannot collide (this follows the goal priority of the original code [SOURCE: Fu-code bridge.py]).
4. Otherwise, when both agents are active:
   * if both target the same cell, every agent that *moves* is sent back (a mover never enters the cell of
     an agent that stays; two movers into one empty cell both fail, with no tie-break by index);
   * if they try to swap cells, both are sent back;
   * following is allowed: an agent may enter the cell the other is leaving.
   These rules keep active agents on distinct cells.

Reward (shared, theory.md §3.1): after the move, ``r_t = -0.01 * mean_i ||goal_i - pos_i||_2`` (Euclidean
distance in cells; a done agent contributes 0). The episode is ``terminated`` once both agents are done
and ``truncated`` after ``episode_limit = 30`` steps otherwise. (The original code also zeroes the reward of
the 30th step; here every step, the last included, pays the same formula.)

Observation of agent i (coordinates normalised by ``(row/2, col/5)`` into ``[0, 1]``):
``[own row, own col, other row, other col, own goal row, own goal col]`` (+ one-hot agent id if
``agent_id=True``). State: ``[pos_0, pos_1, goal_0, goal_1]`` normalised (8 numbers).
The environment is deterministic; its generator is kept for protocol uniformity. Internally the whole
dynamics is tabulated over the 18 x 18 agent-cell pairs (see ``_build_tables``), so a step is a few gathers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .base import AgentSpace, EnvSpec, MultiAgentEnv, Step, _check_int

__all__ = ["BridgeEnv", "BRIDGE_MAP", "ACTION_NAMES", "BRIDGE_COLS", "crossing_order", "record_episodes",
           "EgocentricBridgeEnv"]

BRIDGE_MAP = ("1ABBAA", "AAAAAA", "AABBA2")
ACTION_NAMES = ("stay", "left", "right", "up", "down")
_DELTAS = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0))  # (d_row, d_col) per action
BRIDGE_COLS = (2, 3)  # the bridge: row 1, columns 2-3 (rows 0 and 2 are blocks there)


def crossing_order(positions: torch.Tensor) -> torch.Tensor:
    """Which agent crossed the bridge first, from a trajectory of positions.

    ``positions``: integer ``[..., T, 2, 2]`` — time ``t``, agent ``i``, ``(row, col)`` (e.g. ``BridgeEnv.positions``
    recorded after every step, the start included or not). Agent 0 starts left of the bridge (column < 2) and its
    goal is on the right; agent 1 the reverse. Agent ``i`` *has crossed* at the first time index ``t_i`` at which
    it stands on its goal side, i.e. ``col > 3`` for agent 0 and ``col < 2`` for agent 1 (it has left the bridge
    cells, row 1 columns 2-3, towards its goal; the only way between the sides is the bridge). Returns int64
    ``[...]``: ``0`` if ``t_0 < t_1`` (agent 0 first; an agent that never crosses has ``t = inf``), ``1`` if
    ``t_1 < t_0``, ``-1`` if neither crosses. Both crossing at the same index is impossible under the Bridge's
    movement rules (two active agents cannot pass each other on the one-cell-wide bridge, and a done agent is on
    its goal, off the bridge) and raises ``ValueError``."""
    if not isinstance(positions, torch.Tensor) or positions.dtype not in (torch.int64, torch.int32):
        raise TypeError("positions must be an integer tensor of shape [..., T, 2, 2] (time, agent, (row, col))")
    if positions.dim() < 3 or tuple(positions.shape[-2:]) != (2, 2) or positions.shape[-3] == 0:
        raise ValueError(f"positions must have shape [..., T, 2, 2] with T >= 1, got {tuple(positions.shape)}")
    col = positions[..., 1].long()  # [..., T, 2]
    crossed = torch.stack([col[..., 0] > BRIDGE_COLS[1], col[..., 1] < BRIDGE_COLS[0]], dim=-1)  # [..., T, 2]
    T = positions.shape[-3]
    index = torch.arange(T, device=positions.device).view(T, 1)
    first = torch.where(crossed, index, torch.full_like(index, T)).amin(dim=-2)  # [..., 2]; T = never
    t0, t1 = first[..., 0], first[..., 1]
    if bool(((t0 == t1) & (t0 < T)).any()):
        raise ValueError("positions: both agents reach their goal side at the same time index, which the Bridge's "
                         "one-cell-wide bridge makes impossible (is the trajectory from BridgeEnv?)")
    return torch.where(t0 < t1, 0, torch.where(t1 < t0, 1, -1)).to(torch.int64)


class BridgeEnv(MultiAgentEnv):
    """The 2-agent Bridge grid (module docstring for the exact rules).

    Args:
        num_envs: number of parallel copies.
        device: torch device.
        episode_limit: steps before truncation (30 in Fu et al.).
        agent_id: append the one-hot agent index to each observation.
        seed: generator seed (the dynamics are deterministic).
        check_actions: validate actions every step.
    """

    N_AGENTS = 2
    N_ACTIONS = 5

    def __init__(self, num_envs: int = 1, device: str | torch.device | None = "cpu", episode_limit: int = 30,
                 agent_id: bool = False, seed: int | None = None, check_actions: bool = True) -> None:
        if not isinstance(agent_id, bool):
            raise TypeError(f"agent_id must be a bool, got {type(agent_id).__name__}")
        limit = _check_int(episode_limit, "episode_limit", 1)
        self._agent_id = agent_id
        spec = EnvSpec(
            n_agents=self.N_AGENTS,
            obs_dim=6 + (self.N_AGENTS if agent_id else 0),
            state_dim=8,
            agent_spaces=(AgentSpace.discrete(self.N_ACTIONS),) * self.N_AGENTS,
            episode_limit=limit,
        )
        super().__init__(spec, num_envs, device, seed, check_actions)
        rows, cols = len(BRIDGE_MAP), len(BRIDGE_MAP[0])
        self._shape = (rows, cols)
        self._n_cells = rows * cols
        self._build_tables()
        self._joint = torch.full((self.num_envs,), self._start_joint, dtype=torch.int64, device=self.device)

    # --- the dynamics as lookup tables ---------------------------------------------------------------
    # Cells are numbered ``cell = row * 6 + col``; the pair of agent cells is ``joint = cell_0 * 18 + cell_1``.
    # Doneness is a function of the pair (an agent is done iff it stands on its goal: it stops there), so
    # observations, masks, rewards and the successor of every (joint, a_0, a_1) are tabulated once, with
    # the vectorised rules of :meth:`resolve_moves`, and a step is three gathers.
    def _build_tables(self) -> None:
        rows, cols = self._shape
        n_cells = self._n_cells
        self._blocked = torch.tensor([[ch == "B" for ch in line] for line in BRIDGE_MAP])
        start = {ch: r * cols + c for r, line in enumerate(BRIDGE_MAP) for c, ch in enumerate(line) if ch in "12"}
        self._start_cells = torch.tensor([start["1"], start["2"]])
        self._goal_cells = torch.tensor([start["2"], start["1"]])
        self._start_joint = start["1"] * n_cells + start["2"]
        # successor cell of every (cell, action), walls and edges already turned into 'stay' (rule 2)
        step_to = torch.empty(n_cells, self.N_ACTIONS, dtype=torch.int64)
        for cell in range(n_cells):
            r, c = divmod(cell, cols)
            for a, (dr, dc) in enumerate(_DELTAS):
                step_to[cell, a] = (r + dr) * cols + (c + dc) if self.is_open(r + dr, c + dc) else cell
        self._step_to = step_to
        joint = torch.arange(n_cells * n_cells)
        cells = torch.stack([joint // n_cells, joint % n_cells], dim=-1)  # [J, 2]
        acts = torch.cartesian_prod(torch.arange(self.N_ACTIONS), torch.arange(self.N_ACTIONS))  # [25, 2]
        nxt = self.resolve_moves(cells[:, None, :].expand(-1, acts.shape[0], -1), acts[None].expand(joint.numel(), -1, -1))
        next_joint = (nxt[..., 0] * n_cells + nxt[..., 1]).reshape(-1, self.N_ACTIONS, self.N_ACTIONS)
        done = cells == self._goal_cells  # [J, 2]
        coords = torch.tensor([divmod(c, cols) for c in range(n_cells)], dtype=torch.float32)
        coords = coords / torch.tensor([rows - 1, cols - 1], dtype=torch.float32)  # normalised (row, col)
        pos = coords[cells]  # [J, 2, 2]
        goal = coords[self._goal_cells].expand(joint.numel(), -1, -1)
        parts = [pos, pos.flip(1), goal]
        if self._agent_id:
            parts.append(torch.eye(self.N_AGENTS).expand(joint.numel(), -1, -1))
        goal_rc = torch.tensor([divmod(int(g), cols) for g in self._goal_cells], dtype=torch.float32)
        cell_rc = torch.tensor([divmod(c, cols) for c in range(n_cells)], dtype=torch.float32)
        dist = (cell_rc[cells] - goal_rc).norm(dim=-1)  # [J, 2], 0 for a done agent
        avail = torch.ones(joint.numel(), self.N_AGENTS, self.N_ACTIONS, dtype=torch.bool)
        avail[done] = torch.arange(self.N_ACTIONS) == 0
        dev = self.device
        self._next_joint = next_joint.to(dev)
        self._obs_table = torch.cat(parts, dim=-1).to(dev)
        self._state_table = torch.cat([pos.reshape(-1, 4), goal.reshape(-1, 4)], dim=-1).to(dev)
        self._avail_table = avail.to(dev)
        self._done_table = done.to(dev)
        self._reward_table = (-0.01 * dist.mean(dim=-1)).to(dev)

    def resolve_moves(self, cells: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The movement rules of the module docstring, vectorised: agent cells ``[..., 2]`` and actions
        ``[..., 2]`` -> the agents' new cells ``[..., 2]`` (CPU tensors; used to build the step table)."""
        done = cells == self._goal_cells
        act = torch.where(done, torch.zeros_like(actions), actions)  # rule 1
        target = self._step_to[cells, act]  # rule 2
        moving = target != cells
        to_goal = (target == self._goal_cells) & ~done  # rule 3
        contest = ~(done | to_goal).any(-1, keepdim=True)  # rule 4 applies
        same = (target[..., 0] == target[..., 1]).unsqueeze(-1)
        swap = ((target[..., 0] == cells[..., 1]) & (target[..., 1] == cells[..., 0])).unsqueeze(-1)
        back = contest & ((same & moving) | swap)
        return torch.where(back, cells, target)

    # --- public helpers --------------------------------------------------------------------------
    @property
    def positions(self) -> torch.Tensor:
        """Current ``(row, col)`` of both agents, int64 ``[B, 2, 2]``."""
        cells = torch.stack([self._joint // self._n_cells, self._joint % self._n_cells], dim=-1)
        cols = self._shape[1]
        return torch.stack([cells // cols, cells % cols], dim=-1)

    @property
    def agents_done(self) -> torch.Tensor:
        """Which agents have reached their goal, bool ``[B, 2]``."""
        return self._done_table[self._joint].clone()

    @property
    def goals(self) -> torch.Tensor:
        """Goal cells ``[2, 2]`` as (row, col): agent 0 -> (2, 5), agent 1 -> (0, 0)."""
        cols = self._shape[1]
        return torch.stack([self._goal_cells // cols, self._goal_cells % cols], dim=-1).to(self.device)

    def is_open(self, row: int, col: int) -> bool:
        """True iff ``(row, col)`` lies on the grid and is not a block."""
        rows, cols = self._shape
        return 0 <= row < rows and 0 <= col < cols and not bool(self._blocked[row, col])

    def set_positions(self, positions: torch.Tensor) -> Step:
        """Place the agents at ``positions`` (int ``[B, 2, 2]`` of (row, col), open cells; agents not on their
        goal on distinct cells) without touching the step counters; an agent placed on its goal is done.
        Returns a reward-free Step. Meant for tests and scripted evaluations."""
        if self._needs_reset:
            raise RuntimeError("call reset() before set_positions()")
        if not isinstance(positions, torch.Tensor) or positions.dtype not in (torch.int64, torch.int32):
            raise TypeError("positions must be an integer tensor of shape [num_envs, 2, 2]")
        if tuple(positions.shape) != (self.num_envs, 2, 2):
            raise ValueError(f"positions must have shape [num_envs, 2, 2] = ({self.num_envs}, 2, 2), got {tuple(positions.shape)}")
        pos = positions.to(device="cpu", dtype=torch.int64)
        rows, cols = self._shape
        if not all(self.is_open(int(r), int(c)) for r, c in pos.reshape(-1, 2).tolist()):
            raise ValueError("positions must be open cells of the 3x6 bridge map")
        cells = pos[..., 0] * cols + pos[..., 1]
        done = cells == self._goal_cells
        if bool(((cells[:, 0] == cells[:, 1]) & ~done.any(-1)).any()):
            raise ValueError("positions must put the two (not done) agents on different cells")
        self._joint = (cells[:, 0] * self._n_cells + cells[:, 1]).to(self.device)
        obs, state, avail = self._observe()
        zeros = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return Step(obs, state, avail, torch.zeros(self.num_envs, dtype=torch.float32, device=self.device),
                    zeros, zeros.clone(), {})

    # --- hooks -------------------------------------------------------------------------------------
    def _reset_where(self, mask: torch.Tensor) -> None:
        self._joint = torch.where(mask, self._start_joint, self._joint)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._joint = self._next_joint[self._joint, actions[:, 0], actions[:, 1]]
        return self._reward_table[self._joint], self._done_table[self._joint].all(-1)

    def _observe(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        j = self._joint
        return self._obs_table[j], self._state_table[j], self._avail_table[j]

    def _current_avail(self) -> torch.Tensor:
        return self._avail_table[self._joint]


def record_episodes(env: BridgeEnv, act: Callable[[Step], torch.Tensor], seed: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Play one episode in each of ``env``'s environments from ``reset(seed)``, actions from ``act(step)`` (a joint
    action ``[B, 2]``). Returns ``(positions, success)``: int64 ``[B, T + 1, 2, 2]`` (the start, then the cells after
    each of the ``T = episode_limit`` steps, frozen once the environment's episode has ended — the auto-reset is not
    recorded) and bool ``[B]`` (both agents reached their goals before the step limit). Feed ``positions`` to
    :func:`crossing_order`."""
    if not isinstance(env, BridgeEnv):
        raise TypeError(f"env must be a BridgeEnv, got {type(env).__name__}")
    step = env.reset(seed=seed)
    rows, cols = env._shape
    scale = torch.tensor([rows - 1, cols - 1], dtype=torch.float32, device=env.device)
    positions = [env.positions]
    running = torch.ones(env.num_envs, dtype=torch.bool, device=env.device)
    success = torch.zeros_like(running)
    for _ in range(env.spec.episode_limit):
        step = env.step(act(step))
        # the state's first four numbers are both agents' normalised (row, col), taken before any auto-reset
        after = torch.round(step.info["final_state"][..., :4].reshape(-1, 2, 2) * scale).long()
        positions.append(torch.where(running[:, None, None], after, positions[-1]))
        success |= running & step.terminated
        running &= ~(step.terminated | step.truncated)
    return torch.stack(positions, dim=1), success


class EgocentricBridgeEnv(BridgeEnv):
    """The Bridge with agent 1 seeing (and acting in) the map turned by 180 degrees, so both agents see the same
    thing in swapped situations.

    The map and the dynamics are invariant under the turn ``(row, col) -> (2 - row, 5 - col)`` with the agents
    swapped. Here agent 1's observation is turned (it sees what agent 0 would see in the turned placement with the
    agents swapped: each of its six normalised coordinates ``x -> 1 - x``; the one-hot id, if any, is kept) and its actions are turned back before the move (``left <-> right``, ``up <-> down``,
    ``stay`` kept). Agent 0 is unchanged; the state, rewards, positions and :attr:`goals` stay in world coordinates.
    Consequence: a policy shared by both agents without their id (MAPPO ``share_param``, AR-MAPPO) treats agent 0
    in a situation exactly as agent 1 in the turned situation; the start is its own turn, so (with a random order
    for an auto-regressive policy) the two crossing orders have EXACTLY the same probability. In :class:`BridgeEnv`
    the absolute coordinates (each agent's own goal) tell a shared network which agent it is acting for.
    """

    _TURN = (0, 2, 1, 4, 3)  # stay, left -> right, right -> left, up -> down, down -> up

    def _build_tables(self) -> None:
        super()._build_tables()
        # agent 1 at cells (c0, c1) sees what agent 0 sees at the turned, swapped cells (17 - c1, 17 - c0): the
        # turn maps cell r * 6 + c to (2 - r) * 6 + (5 - c) = 17 - cell (copied from the table: exact floats)
        n = self._n_cells
        joint = torch.arange(n * n, device=self.device)
        turned = (n - 1 - joint % n) * n + (n - 1 - joint // n)
        self._obs_table[:, 1, :6] = self._obs_table[turned, 0, :6]
        self._turn = torch.tensor(self._TURN, dtype=torch.int64, device=self.device)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        actions = torch.stack([actions[:, 0], self._turn[actions[:, 1]]], dim=-1)
        return super()._advance(actions)
