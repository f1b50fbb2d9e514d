"""PPO for RL²: a recurrent policy meta-trained over trials of K episodes.

One update:

1. **Rollout.** Every env slot plays ``chunk`` steps of its ongoing trial.
   The GRU state is carried from chunk to chunk and cleared only where a
   trial starts (in :meth:`metarena.agents.rl2.RL2Net.unroll`, one line), never at an
   episode boundary inside a trial.
2. **Advantages (GAE).** A trial is one long episode of the meta-task: an
   episode boundary inside a trial is not a ``done`` (the value there is
   what the rest of the trial will pay, adaptation included). ``done`` is set
   only where a trial ends. That end is treated as terminal, with no
   bootstrap: after K episodes the trial is truly over (a new level
   follows), even when the last episode itself ended at its step limit. The
   value of the observation after the chunk bootstraps the chunk's tail.
3. **PPO.** ``epochs`` passes over the chunk, cut into ``minibatches`` groups
   of whole env slots; each minibatch is unrolled through the GRU from the
   chunk's first hidden state (BPTT over the whole chunk), with the clipped
   surrogate, a value loss and an entropy bonus.

``train_rl2(config)`` returns the network and one metrics dict per update.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from metarena import games
from metarena.games.batch import BatchEnv
from metarena.games.engine import MAX_PLAYERS, REFERENCE_POLICIES, SCALAR_NAMES
from metarena.games.trial import EPISODE_START, TrialEnv
from metarena.games.variant import TRAIN_LEVELS, variant_list

from .config import check_games, is_torch_device, setting
from .imitation import CEILING, Imitation, ceiling_teachers, check_imitation, imitated_games
from .config import to_dict as config_to_dict
from .config import validate as validate_fields
from .league import SELF, League, Seats
from .rl2 import RL2Net, RL2NetSpec, set_map_threads


@dataclass
class RL2Config:
    """Everything an RL² run depends on; saved beside its checkpoints."""

    games: tuple[str, ...] = setting(
        ("treasure",), """Games to meta-train on. With several, the env slots are split evenly between
        them (one network for all: observations share one vocabulary).""")
    variant: str | None = setting(
        "medium", """Variant of every game (a name or a TOML path); None: each game's default. Several,
        comma-separated ("small,medium,my.toml"): every (game, variant) pair is one member of the
        mix, with an even share of the env slots, as several games are.""")
    envs: int = setting(1024, """Env slots stepped side by side (the rollout batch).""", ge=1)
    shares: str = setting(
        "", """With several games: each game's share of the env slots, ``game:weight``
        comma-separated (``drift:3,cycles:2``); a game not named weighs 1. A game that learns slowly
        (drift) can get more of the slots. Empty: an even split.""", min_len=0)
    chunk: int = setting(64, """Steps per slot and update; also the BPTT length.""", ge=1)
    episodes: int = setting(
        4, """Episodes per trial (K): the memory spans them, then a new level follows.""", ge=1)
    pool_size: int = setting(
        65536, """Training levels per game the trials draw from (the first of the train split),
        built once at the start of the run.""", ge=1, le=TRAIN_LEVELS)
    total_steps: int = setting(
        10_000_000, """Env steps (slots x steps) to train for, rounded up to whole updates.""", ge=0)
    lr: float = setting(2e-3, """Adam learning rate (constant unless ``lr_decay``).""", gt=0)
    lr_decay: float = setting(
        0.0, """The last share of the run over which the learning rate falls linearly from ``lr`` to
        zero (a cool-down: the final policy settles instead of ending mid-step). 0: constant
        throughout; 1: from the first update. The share of the run is that of ``total_steps``
        done or, under ``metarena train --minutes``, that of the minutes spent (of this call's
        minutes, as ``--resume`` counts them), whichever is larger, so the fall ends where the run
        does.""", ge=0, le=1)
    average: float = setting(
        0.0, """At the end of the run, also save as ``RUN/average`` the mean of the checkpoints of its
        last share of updates (0.2: the last fifth). Under a constant learning rate the weights
        keep moving about after the returns level off, so the last checkpoint is one draw from
        where they wander; their mean is steadier. It changes nothing in training. 0: none.""",
        ge=0, le=1)
    gamma: float = setting(0.99, """Discount per step, across the episodes of a trial.""", ge=0, le=1)
    episode_discount: float = setting(
        1.0, """A further discount where an episode ends inside a trial: what the later episodes pay
        counts this much to the steps of the episode before. 1 (the RL² default): a trial is one
        long episode. 0: each episode's steps look only at that episode's rewards. Between them,
        each episode is played more for its own score and less to explore for the next (rules:
        after a costly first kind, the exit is worth trying at once).""", ge=0, le=1)
    gae_lambda: float = setting(0.95, """GAE lambda.""", ge=0, le=1)
    clip: float = setting(0.2, """PPO ratio clip range.""", gt=0)
    epochs: int = setting(2, """Passes over each rollout.""", ge=1)
    minibatches: int = setting(
        4, """Minibatches per pass, each a group of whole env slots (envs must divide evenly).""", ge=1)
    ent_coef: float = setting(0.01, """Weight of the entropy bonus (constant unless ``ent_decay``).""", ge=0)
    ent_decay: float = setting(
        0.0, """The last share of the run over which the entropy bonus falls linearly from ``ent_coef``
        to zero, on the clock of ``lr_decay``: the policy, kept exploring while it learns, then
        sharpens towards its most likely actions, which it plays by sampling (rules: a policy
        that plays its most likely action scores more in the first episode than the same policy
        sampled). 0: constant throughout.""", ge=0, le=1)
    adv_by_game: bool = setting(
        False, """With several games: normalize the advantages within each game's slots of a
        minibatch, not over the whole minibatch, so that every game's policy gradient has the same
        scale whatever the scale of its rewards (drift pays at most 1 an episode, rules up to 4).
        One game: the same thing.""")
    scale_by_game: bool = setting(
        False, """Divide each game's rewards by a running standard deviation of its discounted returns
        (:class:`ReturnScale`) before the advantages and value targets are computed: with several
        games, one value head then fits returns of one scale in every game, where rules (up to
        4 an episode) and coinrush would otherwise set the scale and drift (at most 1) drown in
        it. Not saved with the checkpoints: a resumed run estimates the scales again. One game:
        the rewards of that game, rescaled.""")
    vf_coef: float = setting(0.5, """Weight of the value loss.""", ge=0)
    imitate: float = setting(
        0.0, """Weight of an auxiliary loss: the cross-entropy of the policy towards the action a
        ``teacher`` would take at the same step (by default the game's window-only ceiling planner),
        on the first ``imitate_episodes`` episodes of each trial in a share (``imitate_share``) of
        the slots (:mod:`metarena.agents.imitation`), on the games whose teacher can follow the agent
        (``window-recall``: every game but cycles, which trains without). The agent still plays its
        own actions. 0: plain RL². rules: the planner tries the exit after a costly first kind,
        which PPO alone does not learn.""", ge=0)
    teacher: str = setting(
        "window-recall", """With ``imitate``: the agent whose actions are the target, made for each game
        labelled: ``window-recall`` (the window-only ceiling planner), or an agent name or path that
        reads the trial features, such as ``rl2`` (the shipped agent of each game: one network
        distilled from one per game).""")
    imitate_share: float = setting(
        0.125, """With ``imitate``: the share of each (game, variant) pair's slots whose steps the
        teacher labels (at least one slot). ``window-recall`` plans in about 0.14 ms per labelled slot
        and step.""",
        gt=0, le=1)
    imitate_episodes: int = setting(
        1, """With ``imitate``: the episodes of a trial, from its first, whose steps are labelled.""", ge=1)
    imitate_games: str = setting(
        "", """With ``imitate``: the games whose steps are labelled, comma-separated (``drift``); each must
        be trained on and have a planner that follows. Empty: every game whose planner follows.""",
        min_len=0)
    max_grad_norm: float = setting(0.5, """Global gradient-norm clip.""", gt=0)
    hidden: tuple[int, ...] = setting(
        RL2NetSpec.hidden, """Sizes of the encoder MLP's layers, input first (empty: no MLP, the
        GRU reads the observation). Default: :class:`~metarena.agents.rl2.RL2NetSpec`'s.""",
        ge=1, min_len=0)
    memory: int = setting(
        RL2NetSpec.memory, """Size of the GRU state. Default: :class:`~metarena.agents.rl2.RL2NetSpec`'s.""",
        ge=1)
    map: int = setting(
        0, """Side, in cells, of an explicit spatial memory the policy reads beside the GRU
        (:class:`~metarena.agents.rl2.MapMemory`: what was seen, where the player stood and was
        paid, written at its row and column); 0: none. Maps larger than this are clipped.""",
        ge=0)
    route: bool = setting(
        False, """With ``map``: the map's targets are the nearest by the shortest walk over the cells
        seen not to block (unseen cells count as open), and each also reads the walk's first move.
        False: nearest by Manhattan distance.""")
    controls: bool = setting(
        False, """With ``map``: the map also counts what each action did (which one-cell move followed
        it) and the policy reads the shares: a game whose controls are hidden (drift) shows there.""")
    controls_decay: float = setting(
        1.0, """With ``controls``: each use of an action first multiplies its counts by this, so the
        shares follow its last 1 / (1 - decay) uses or so (a change of the controls inside a trial,
        ``drift/shift``, shows after a few moves). 1: count every step of the trial.""", gt=0, le=1)
    items: bool = setting(
        False, """With ``map``: a fourth target, the nearest item seen of any kind (a closed chest, a
        coin, an object, drift's goal), read as the others are: a route round the walls to what is
        in view before its kind has paid.""")
    steer: bool = setting(
        False, """With ``route`` and ``controls``: each target's first move is also read as the action that
        makes it, by the controls' counts (the action named for it until another is seen to make it
        more often): the route translated into the keys to press, where drift scrambles them.""")
    give_way: bool = setting(
        False, """With ``route``: a target kind that only the players in view cut off is read by the route
        through them, with a flag, instead of not at all: the policy sees that another player
        stands in its way (in company, where one of two must back off in a corridor).""")
    route_moves: bool = setting(
        True, """With ``route``: each target reads the first move of its route in the world's directions.
        False (with ``steer``): only the action to press for it, the one way to follow a route that
        holds both where the controls are as named and where they are scrambled (one network
        for every game).""")
    sample: bool = setting(
        False, """With ``route``: two more targets, the nearest item of a kind that has paid nothing yet
        and the nearest of the kind that cost least; each target also reads what its kind pays; and
        no route walks over an item of a kind that has cost (rules: try each kind once, walk round
        the costly ones, take a costly key on purpose).""")
    tally: bool = setting(
        False, """With ``map``: the map also reads two counts, the kinds of item that have paid so far
        in the trial and the kinds that have cost (rules: one of each tells that the third kind is
        the trap).""")
    per_kind: bool = setting(
        False, """With ``sample``: one more target per kind of item (chest, each coin colour, the exit
        (drift's goal too), each object kind, the boost), the nearest seen of that kind, read as the other
        targets are (with what its kind pays). The policy can then tell the exit from an object
        nobody has tried and go to either (rules: after a new kind that may be the key, try the
        exit).""")
    careful: bool = setting(
        False, """With ``sample``: no route walks over an item of a kind that has paid nothing yet either
        (only where it ends): the way to the exit or to the unseen goes round the objects nobody
        has tried, where a way round is known (rules: after a kind that may be the key, the
        exit is tried before another kind, not on the way to it).""")
    fallback: bool = setting(
        False, """With ``careful``: a target that no careful route reaches (rules: the exit behind an
        object nobody has tried, no way round it seen) reads the route over the kinds not tried yet
        instead of none, flagged, as the ``window-recall`` planner walks over an object where it
        must.""")
    spare: bool = setting(
        False, """With ``route``: each target also reads the steps it leaves to spare: the steps left in the
        episode less its route and, where an exit is known, the route on from it to the exit (rules:
        take a paying object only where the exit is still in time after it).""")
    avoid_wind: bool = setting(
        False, """With ``route``: no route crosses a wind tile while a way round it is known (drift's wind
        pushes a player standing on it, back the way it came where it walks into the wind).""")
    keys: bool = setting(
        False, """With ``map``: the map also reads what opens the exit, per kind of item: taken this
        episode, ruled out as the key by the exit in this trial, what it pays; and whether the
        exit was found locked since the last kind first taken this episode (rules: when to try
        the exit, and which kind to sample next).""")
    players: int = setting(
        1, """Players in every slot: player 0 learns, the env moves the others by the reference
        policies in ``others`` (training in company: a race for the same treasure). 1: alone.""",
        ge=1, le=MAX_PLAYERS)
    others: str = setting(
        "scripted", """Reference policies of the other players, comma-separated (oracle, uninformed,
        scripted, random, stay), or ``self``: frozen snapshots of the network in training (a
        league, :mod:`metarena.agents.league`); the slots of every (game, variant) pair are split
        evenly between them. Used only with players > 1.""")
    still_cost: float = setting(
        0.0, """Taken from player 0's reward for every step it ends on the cell where it began it (a
        stay, or a move into a wall or into another player), except the first step of an episode.
        In company, a reason to back out of a stand-off nose to nose in a corridor instead of
        pushing on. It shapes the training only: the returns logged, and every evaluation, are the
        game's own.""", ge=0)
    timeout_cost: float = setting(
        0.0, """Taken from player 0's reward on the step where an episode reaches its step limit (it ran
        out of steps). Where an object may end the episode at a cost (rules' trap), running out of
        steps is the ending that costs nothing, so a policy unsure what an object does may wander
        until the limit instead of trying it; at the trap's cost (1) the two endings weigh the
        same. It shapes the training only: the returns logged, and every evaluation, are the
        game's own.""", ge=0)
    league: int = setting(
        4, """With ``others`` including ``self``: snapshots the league keeps (the oldest goes out).""", ge=1)
    league_every: int = setting(
        20, """With ``others`` including ``self``: updates between two snapshots put into the league.""", ge=1)
    stagger: bool = setting(
        True, """Before the first update, play every slot for up to one trial's length and start a
        fresh trial in each at a different, random step, so that the slots' trials are out of
        step. Without it a game whose episodes all last the same number of steps (coinrush) keeps
        every slot in lockstep for the whole run, and each rollout sees only one phase of the trial.""")
    seed: int = setting(0, """Seeds torch, the level draws and the actions sampled.""", ge=0)
    device: str = setting(
        "auto", """Torch device: "auto" (cuda if available, else cpu), "cpu", "cuda", ...""",
        check=is_torch_device, allowed="'auto' or a torch device such as 'cpu' or 'cuda'")
    shards: int = setting(
        1, """Processes the env steps in: 1 = a plain BatchEnv in this process; 2 = a
        ShardedBatchEnv whose second half runs in a worker process (use the second core).""", ge=1)
    torch_threads: int = setting(
        1, """Torch intra-op threads while learning (the PPO epochs); 0 = one per core. The default
        is 1 by measurement on 2 cores (`metarena bench train --set torch_threads=N`): one thread
        per core is 11% faster on an idle machine (54k against 49k env-steps/s) but 2.7x slower
        while another process keeps a core busy (16k against 44k), as a second run or an
        evaluation does. A run with a machine of its own may want 0: the rules agent's command
        (map, routes) 31k against 22k, MLP 256 -> GRU 256 17k against 10k.""", ge=0)
    bf16: bool = setting(
        False, """Matrix products in bfloat16 (``torch.autocast``), in the rollouts and the PPO updates, and
        the network's features (the encoder's input) kept in bfloat16 from the rollout to the
        epochs; the weights, Adam's moments, the GRU state, the losses and the map stay float32.
        A lever on a CPU that multiplies bfloat16 in hardware (AMX, AVX-512 BF16): there the
        rules agent's command and MLP 256 -> GRU 256 train faster (docs/RESULTS.md, "Matrix
        products in bfloat16", "The epochs read the rollout's features"); elsewhere it is
        slower.""")
    rollout_threads: int = setting(
        0, """Torch threads while collecting rollouts; 0 = auto: 1 when shards > 1 (a worker
        process keeps the other core busy stepping its shard, and a second torch thread on that
        core slows both down) or with a map (the map steps its slots on as many threads as
        torch learns with, and torch's threads, spinning after each operation, would keep those
        cores busy), else the same as torch_threads. The rl2-all command with torch_threads=0
        ran at 12.1-12.6k env-steps/s so, 10.0-10.3k with two torch threads in the rollouts and
        the map on one (docs/RESULTS.md, "The map on both cores").""", ge=0)

    def threads(self) -> tuple[int, int]:
        """(rollout, learning) torch threads after resolving the automatic values."""
        learn = self.torch_threads or (os.cpu_count() or 1)
        return self.rollout_threads or (1 if self.shards > 1 or self.map else learn), learn

    def map_threads(self) -> int:
        """Threads the map memory steps its slots on (:func:`~metarena.agents.rl2.set_map_threads`):
        those torch learns with, but 1 when a worker process steps a shard or the teachers label
        on a thread of their own (:meth:`teachers_beside`)."""
        return 1 if self.shards > 1 or self.teachers_beside() else self.threads()[1]

    def teachers_beside(self) -> bool:
        """Whether ``imitate``'s teachers label each step on a thread of their own while the network
        plays on (:class:`~metarena.agents.imitation.Imitation`, ``beside``): where torch learns on
        more than one thread. The labels are the same either way. The rl2-all command collected
        an update in 3.1 s so against 4.5 with the teachers in turn and the maps on both cores
        (docs/RESULTS.md, "The teachers beside the network")."""
        return bool(self.imitate) and self.threads()[1] > 1

    def to_dict(self) -> dict:
        """The fields in JSON types (tuples as lists, enums as strings): :func:`metarena.agents.config.to_dict`."""
        return config_to_dict(self)

    def net_spec(self) -> RL2NetSpec:
        """The shape of the network this config trains."""
        return RL2NetSpec(hidden=tuple(self.hidden), memory=self.memory, episodes=self.episodes, map=self.map,
                          route=self.route, controls=self.controls, controls_decay=self.controls_decay,
                          items=self.items, steer=self.steer, give_way=self.give_way,
                          route_moves=self.route_moves, sample=self.sample,
                          tally=self.tally, per_kind=self.per_kind, careful=self.careful,
                          avoid_wind=self.avoid_wind, keys=self.keys, fallback=self.fallback,
                          spare=self.spare)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that cannot work: each field against its
        type and range (:func:`metarena.agents.config.validate`), then the fields together."""
        validate_fields(self)
        if self.envs % self.minibatches:
            raise ValueError(f"envs ({self.envs}) must be a multiple of minibatches ({self.minibatches})")
        mix = members(self)
        weights = game_weights(self)
        if self.shares:
            total = sum(weights[name] for name, _ in mix)
            if any(self.envs * weights[name] % total for name, _ in mix):
                raise ValueError(f"envs ({self.envs}) must split over the {len(mix)} (game, variant) pairs in the "
                                 f"shares {self.shares!r} (weights adding up to {total}): give envs a multiple "
                                 f"of {total}")
        elif self.envs % len(mix) and len(mix) == len(self.games):
            raise ValueError(f"envs ({self.envs}) must split evenly over the games {self.games}")
        elif self.envs % len(mix):
            raise ValueError(f"envs ({self.envs}) must split evenly over the {len(mix)} (game, variant) pairs of "
                             f"games {self.games} and variants {self.variant!r}")
        check_games(self)
        for flag in ("route", "controls", "items", "tally", "keys"):
            if getattr(self, flag) and not self.map:
                raise ValueError(f"{flag} = true needs a map: give map a side too (e.g. --set map=13)")
        if self.steer and not (self.route and self.controls):
            raise ValueError("steer = true reads the routes through the controls' counts: add --set route=true "
                             "--set controls=true")
        if not self.route_moves and not self.steer:
            raise ValueError("route_moves = false leaves the routes without a move: add --set steer=true")
        if self.per_kind and not self.sample:
            raise ValueError("per_kind = true reads its targets as sample's are: add --set sample=true")
        if self.careful and not self.sample:
            raise ValueError("careful = true walks round the kinds sample has not tried: add --set sample=true")
        if self.fallback and not self.careful:
            raise ValueError("fallback = true reads the routes careful finds none for: add --set careful=true")
        if self.spare and not self.route:
            raise ValueError("spare = true reads the steps left less the routes' lengths: add --set route=true")
        if self.avoid_wind and not self.route:
            raise ValueError("avoid_wind = true is a way of finding routes: add --set route=true")
        if self.give_way and not self.route:
            raise ValueError("give_way = true reads the routes other players cut off: add --set route=true")
        if self.sample and not self.route:
            raise ValueError("sample = true reads its targets by route: add --set route=true")
        if self.imitate:
            check_imitation(self.games, self.imitate_games, self.teacher)
            if self.shards > 1:
                raise ValueError("imitate plans in this process beside the env: use shards = 1")
        if self.controls_decay != 1 and not self.controls:
            raise ValueError(f"controls_decay = {self.controls_decay} needs the controls' counts: add --set controls=true")
        if self.players > 1:
            others = company(self)
            known = REFERENCE_POLICIES + (SELF,)
            for policy in others:
                if policy not in known:
                    raise ValueError(f"others = {self.others!r}: unknown policy {policy!r}; choose from "
                                     f"{', '.join(known)}")
            if any(n % len(others) for n in pair_slots(self)):
                raise ValueError(f"envs ({self.envs}) must split evenly over the {len(mix)} (game, variant) pairs "
                                 f"times the {len(others)} policies of others {self.others!r}")
            for name in self.games:
                spec = games.get(name).spec
                if not spec.min_players <= self.players <= spec.max_players:
                    raise ValueError(f"players = {self.players}: {name} takes {spec.min_players}-"
                                     f"{spec.max_players} players")


def members(cfg) -> list[tuple[str, str | None]]:
    """The (game, variant spec) pairs a config trains on, each game with each of its variants
    (:func:`metarena.games.variant.variant_list`), game by game: with one variant, the games."""
    variants = variant_list(cfg.variant)
    return [(name, v) for name in cfg.games for v in variants]


def game_weights(cfg) -> dict[str, int]:
    """Each game's weight in the split of the env slots (``shares``; 1 where not named).
    ``ValueError`` for a game not trained on, a repeated game or a weight that is not a
    positive whole number."""
    weights = {name: 1 for name in cfg.games}
    named = set()
    for item in (p.strip() for p in getattr(cfg, "shares", "").split(",")):
        if not item:
            continue
        name, sep, value = item.partition(":")
        name = name.strip()
        if not sep or not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"shares = {cfg.shares!r}: {item!r} is not game:weight with a whole weight of 1 or "
                             "more (e.g. drift:3)")
        if name not in weights:
            raise ValueError(f"shares = {cfg.shares!r}: {name!r} is not one of the games trained on "
                             f"({', '.join(cfg.games)})")
        if name in named:
            raise ValueError(f"shares = {cfg.shares!r}: {name!r} is named twice")
        named.add(name)
        weights[name] = int(value)
    return weights


def pair_slots(cfg) -> list[int]:
    """The env slots of each (game, variant) pair of :func:`members`, in order: ``envs`` split
    by the games' weights (:func:`game_weights`), each game's evenly over its variants."""
    mix, weights = members(cfg), game_weights(cfg)
    total = sum(weights[name] for name, _ in mix)
    return [cfg.envs * weights[name] // total for name, _ in mix]


def company(cfg) -> list[str | None]:
    """The reference policies the other players follow ([None] where the config plays alone)."""
    if getattr(cfg, "players", 1) <= 1:
        return [None]
    return [p.strip() for p in cfg.others.split(",") if p.strip()] or ["scripted"]


PLACE = [SCALAR_NAMES.index("row"), SCALAR_NAMES.index("col")]  #: where a player stands, in its scalars


class RL2Envs:
    """One TrialEnv per (game, variant) pair (:func:`members`) and policy of the other players
    (:func:`company`), their slots side by side. Where the company is ``self``, the ``league``'s
    snapshots move the other players (:mod:`metarena.agents.league`)."""

    def __init__(self, cfg: RL2Config, league: League | None = None):
        policies = company(cfg)
        mix = [(name, spec, others, n // len(policies))
               for (name, spec), n in zip(members(cfg), pair_slots(cfg)) for others in policies]
        if league is None and any(others == SELF for _, _, others, _ in mix):
            raise ValueError(f"others = {cfg.others!r} plays against the agent itself: pass the league")
        self.envs: list[TrialEnv] = []
        self.names: list[str] = []  #: per env: its game
        #: per env: the other players the league moves (None: the env moves them)
        self.seats: list[Seats | None] = []
        for i, (name, spec, others, n) in enumerate(mix):
            v = games.variant(name, spec)
            kw = dict(episodes=cfg.episodes, pool_size=cfg.pool_size, split="train", seed=cfg.seed + 1000 * i)
            if others == SELF:
                kw.update(players=cfg.players, learners=cfg.players)
            elif others is not None:
                kw.update(players=cfg.players, learners=1, others=others)
            if cfg.shards > 1:
                from metarena.games.shards import ShardedBatchEnv

                env = TrialEnv(ShardedBatchEnv(name, v, batch=n, shards=cfg.shards, **kw), cfg.episodes)
            else:
                env = TrialEnv(BatchEnv(games.get(name), v, batch=n, **kw))
            self.envs.append(env)
            self.names.append(name)
            self.seats.append(league.seats(n, cfg.players - 1) if others == SELF else None)

        #: the reward taken for a step that ends where it began, and player 0's (row, col) scalars
        self.still_cost, self._at = cfg.still_cost, None
        #: the reward taken where an episode runs out of steps
        self.timeout_cost = cfg.timeout_cost
        #: (B,) the index in ``cfg.games`` of each slot's game
        self.game_of_slot = np.repeat([cfg.games.index(name) for name, *_ in mix], [n for *_, n in mix])
        #: the longest a trial can last: episodes x the longest step limit of the members
        self.trial_steps = cfg.episodes * max(games.get(g).step_limit(games.variant(g, spec)) for g, spec, _, _ in mix)

    def _cat(self, parts):
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _player0(self, outs, n: int) -> tuple:
        """The first ``n`` arrays of each env's output, player 0's, side by side."""
        return tuple(self._cat([o[i][:, 0] for o in outs]) for i in range(n))

    def reset(self):
        outs = [e.reset() for e in self.envs]
        for seats, out, e in zip(self.seats, outs, self.envs):
            if seats is not None:
                seats.see(*out[:3], np.ones(e.batch, dtype=bool))
        return self._placed(self._player0(outs, 3))

    def _placed(self, obs: tuple) -> tuple:
        """``obs`` (player 0's, ``grid, scalars, ...``), having noted where player 0 stands."""
        self._at = obs[1][:, PLACE]
        return obs

    def new_trials(self, slots: np.ndarray):
        """Start new trials in ``slots`` (cutting short the ones there); returns player 0's
        ``grid, scalars, trial`` of all slots."""
        outs, lo = [], 0
        for seats, e in zip(self.seats, self.envs):
            mine = slots[(slots >= lo) & (slots < lo + e.batch)] - lo
            outs.append(e.new_trials(mine))
            if seats is not None:
                first = np.zeros(e.batch, dtype=bool)
                first[mine] = True
                seats.see(*outs[-1][:3], first)
            lo += e.batch
        return self._placed(self._player0(outs, 3))

    def step(self, actions: np.ndarray):
        """Player 0's ``grid, scalars, trial, rewards, trial_done`` and the finished episodes'
        ``(episode index, return)``."""
        outs, lo = [], 0
        for seats, e in zip(self.seats, self.envs):
            act = actions[lo:lo + e.batch, None]
            if seats is not None:
                act = np.concatenate([act, seats.play()], axis=1)
            outs.append(e.step(act))
            if seats is not None:
                seats.see(*outs[-1][:3], outs[-1].trial_done)
            lo += e.batch
        grid, scalars, trial, reward = self._player0(outs, 4)
        if self.still_cost:  # training-only shaping; the returns logged below are the game's own
            still = (scalars[:, PLACE] == self._at).all(1) & (trial[:, EPISODE_START] == 0)
            reward = reward - np.float32(self.still_cost) * still
        if self.timeout_cost:
            reward = reward - np.float32(self.timeout_cost) * self._cat([o.truncated for o in outs])
        obs = self._placed((grid, scalars, trial, reward))
        done = self._cat([o.trial_done for o in outs])
        finals = [o.info["final"] for o in outs if "final" in o.info]
        ep = np.concatenate([f["episode"] for f in finals]) if finals else np.zeros(0, dtype=np.int64)
        ret = np.concatenate([f["score"][:, 0] for f in finals]) if finals else np.zeros(0, dtype=np.float32)
        return (*obs, done, ep, ret)

    def close(self) -> None:
        for e in self.envs:
            e.close()


def imitation_for(cfg: RL2Config, envs: RL2Envs,
                  make_teacher: Callable[..., Any] | None = None) -> Imitation:
    """The teacher's labels for ``envs``: in each env of a game labelled, its first
    ``imitate_share`` of the slots. ``make_teacher(name, game, seed=)`` makes a teacher other than
    the ceiling planner (:func:`metarena.agents.registry.make_agent`)."""
    names, engines, slots, lo = [], [], [], 0
    chosen = imitated_games(cfg.games, cfg.imitate_games, cfg.teacher)
    for name, e in zip(envs.names, envs.envs):
        if name in chosen:
            names.append(name)
            engines.append(e.env.engine)
            slots.append(lo + np.arange(max(1, round(cfg.imitate_share * e.batch))))
        lo += e.batch
    if cfg.teacher == CEILING:
        teachers = ceiling_teachers(names)
    elif make_teacher is None:
        raise ValueError(f"teacher = {cfg.teacher!r}: this trainer can only be taught by {CEILING}; train "
                         "with `metarena train`, which makes any agent a teacher")
    else:
        teachers = [make_teacher(cfg.teacher, name, seed=cfg.seed) for name in names]
    return Imitation(teachers, engines, slots, cfg.imitate_episodes, cfg.episodes, beside=cfg.teachers_beside())


def _device(name: str) -> torch.device:
    """``"auto"`` -> cuda if available, else cpu; a CUDA device where there is none is a ValueError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' was asked for, but this torch ({torch.__version__}) sees no CUDA GPU; "
                         "use --device cpu (or auto, which picks cuda when there is one)")
    return dev


@dataclass
class Chunk:
    """One rollout: ``T`` steps of ``B`` slots (tensors shaped (T, B, ...))."""

    grid: torch.Tensor  # (T, B, V, V, C) uint8
    scalars: torch.Tensor  # (T, B, S)
    trial: torch.Tensor  # (T, B, E)
    first: torch.Tensor  # (T, B) 1 where the observation is the first of a trial
    action: torch.Tensor  # (T, B) int64
    logp: torch.Tensor  # (T, B) log-probability of the action when it was sampled
    value: torch.Tensor  # (T, B)
    reward: torch.Tensor  # (T, B)
    done: torch.Tensor  # (T, B) 1 where the step ended a trial
    h0: torch.Tensor  # (B, H) GRU state before the chunk's first step
    next_value: torch.Tensor  # (B,) value of the observation after the chunk
    episode_returns: tuple[np.ndarray, np.ndarray]  # (episode index, return) of the episodes that ended
    features: torch.Tensor | None = None  # (T, B, F) what the encoder read at each step, the map's reading included
    episode_end: torch.Tensor | None = None  # (T, B) 1 where the step ended an episode but not its trial
    expert: torch.Tensor | None = None  # (T, B) int64 the planner's action where it labels the step, else -1


class Carry:
    """What goes on from one chunk to the next: the current observation, whether it is the
    first of a trial, and the GRU state."""

    def __init__(self, envs: RL2Envs, net: RL2Net, dev: torch.device):
        self.device = dev
        self.see(*envs.reset())
        self.first = torch.ones(len(self.grid), device=dev)
        self.h = net.initial_state(len(self.grid), dev)

    def see(self, grid: np.ndarray, scalars: np.ndarray, trial: np.ndarray) -> None:
        """Take the env's current observation (copies: the env overwrites its buffers)."""
        self.grid, self.scalars, self.trial = (torch.tensor(x, device=self.device) for x in (grid, scalars, trial))


def play_step(net: RL2Net, envs: RL2Envs, carry: Carry, sampler: torch.Generator,
              dtype: torch.dtype = torch.float32):
    """One step of every slot with the sampled policy, advancing ``carry``. Returns what the
    step saw and did: ``(grid, scalars, trial, first)`` before it, the action, its
    log-probability, the value, the reward, the ended episodes' ``(index, return)`` and the
    network's features of the step (:meth:`RL2Net.features`, in ``dtype``)."""
    seen = carry.grid, carry.scalars, carry.trial, carry.first
    new = torch.nonzero(carry.first > 0.5).squeeze(1)
    if len(new):
        carry.h[new] = net.initial_state(len(new), carry.h.device)  # a new trial: forget the last level
    extra = None
    if getattr(net, "map", None) is not None:  # a map's state is large: step it where it is
        extra = net.memory_inputs(*(x[None] for x in seen[:3]), torch.zeros_like(carry.first)[None], carry.h,
                                  inplace=True)[0][0]
    x = net.features(*seen[:3], extra, dtype=dtype)
    logits, value, carry.h = net.advance(x, carry.h)
    logp_all = torch.log_softmax(logits, -1)
    action = torch.multinomial(logp_all.exp(), 1, generator=sampler).squeeze(-1)
    grid, scalars, trial, reward, trial_done, ep, ret = envs.step(action.cpu().numpy())
    carry.see(grid, scalars, trial)
    carry.first = torch.tensor(trial_done, dtype=torch.float32, device=carry.device)  # the next one starts a trial
    logp = logp_all.gather(1, action[:, None]).squeeze(1)
    return seen, action, logp, value, torch.tensor(reward, device=carry.device), (ep, ret), x


@torch.no_grad()
def stagger(net: RL2Net, envs: RL2Envs, carry: Carry, sampler: torch.Generator, rng: np.random.Generator,
            dtype: torch.dtype = torch.float32) -> None:
    """Put the slots' trials out of step: play the policy for ``envs.trial_steps`` steps,
    starting a new trial in each slot at its own random step, and keep nothing but where each
    slot then is (observation, memory)."""
    start_at = rng.integers(0, envs.trial_steps, size=len(carry.first))
    for t in range(envs.trial_steps):
        slots = np.flatnonzero(start_at == t)
        if len(slots):
            carry.see(*envs.new_trials(slots))
            carry.first[torch.as_tensor(slots, device=carry.device)] = 1.0
        play_step(net, envs, carry, sampler, dtype)


@torch.no_grad()
def collect(net: RL2Net, envs: RL2Envs, carry: Carry, steps: int, sampler: torch.Generator,
            imitation: Imitation | None = None, dtype: torch.dtype = torch.float32) -> Chunk:
    """Play ``steps`` steps of every slot with the sampled policy, continuing from ``carry``;
    with ``imitation``, the planner labels the steps it follows (``Chunk.expert``). The
    network's features are kept in ``dtype`` (the precision its first product runs in)."""
    h0, obs, rows, episode_end = carry.h.clone(), [], [], []
    ends_k, ends_r, labels, features = [], [], [], None
    for t in range(steps):
        if imitation is not None:  # the teachers label what the slots see, beside the network where they can
            labels.append(imitation.submit(*(x.cpu().numpy() for x in (carry.grid, carry.scalars, carry.trial,
                                                                        carry.first > 0.5))))
        seen, action, logp, value, reward, (ep, ret), x = play_step(net, envs, carry, sampler, dtype)
        if features is None:
            features = x.new_empty((steps,) + x.shape)
        features[t] = x
        obs.append(seen)
        rows.append((action, logp, value, reward, carry.first))
        episode_end.append((carry.trial[:, EPISODE_START] > 0.5).float() * (1.0 - carry.first))
        ends_k.append(ep)
        ends_r.append(ret)
    next_value = net.unroll(carry.grid[None], carry.scalars[None], carry.trial[None], carry.first[None],
                            carry.h)[1][0]
    g, s, tr, first = (torch.stack(x) for x in zip(*obs))
    action, logp, value, reward, done = (torch.stack(x) for x in zip(*rows))
    expert = [torch.as_tensor(label.result(), device=carry.device) for label in labels]
    return Chunk(g, s, tr, first, action, logp, value, reward, done, h0, next_value,
                 (np.concatenate(ends_k), np.concatenate(ends_r)), features, torch.stack(episode_end),
                 torch.stack(expert) if expert else None)


class ReturnScale:
    """Per group of slots (a game), a running standard deviation of the discounted return of
    its trials, and the rewards divided by it (the reward scaling of PPO implementations, one
    scale per game). The return of each slot runs on across chunks and starts again after a
    trial's end; the statistics pool every step of every slot of a group (Chan et al.'s
    parallel update of mean and variance)."""

    def __init__(self, groups: np.ndarray, gamma: float, eps: float = 1e-8):
        self.groups = torch.as_tensor(groups)
        self.n = int(self.groups.max()) + 1
        self.gamma, self.eps = gamma, eps
        self.ret = torch.zeros(len(groups), dtype=torch.float64)
        self.count = torch.full((self.n,), 1e-4, dtype=torch.float64)
        self.mean = torch.zeros(self.n, dtype=torch.float64)
        self.var = torch.ones(self.n, dtype=torch.float64)

    def __call__(self, reward: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        """``reward`` (T, B) scaled by each slot's group's standard deviation, after the
        statistics take in this chunk's returns (``done`` (T, B): 1 where a step ended a trial)."""
        seen = torch.empty(reward.shape, dtype=torch.float64)
        for t in range(reward.shape[0]):
            self.ret = self.ret * self.gamma + reward[t].double().cpu()
            seen[t] = self.ret
            self.ret = self.ret * (1.0 - done[t].double().cpu())
        for g in range(self.n):
            x = seen[:, self.groups == g].reshape(-1)
            n, mean, var = float(len(x)), x.mean(), x.var(unbiased=False)
            total = self.count[g] + n
            delta = mean - self.mean[g]
            self.mean[g] = self.mean[g] + delta * n / total
            self.var[g] = (self.var[g] * self.count[g] + var * n + delta ** 2 * self.count[g] * n / total) / total
            self.count[g] = total
        std = (self.var.sqrt() + self.eps)[self.groups].to(reward.device, reward.dtype)
        return reward / std


def gae(chunk: Chunk, gamma: float, lam: float, episode_discount: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and value targets (T, B). Only a trial's end stops the bootstrap; where an
    episode ends inside a trial (``chunk.episode_end``) it is further discounted by
    ``episode_discount`` (1: not at all)."""
    T = chunk.reward.shape[0]
    adv = torch.zeros_like(chunk.reward)
    last = torch.zeros_like(chunk.next_value)
    for t in reversed(range(T)):
        not_done = 1.0 - chunk.done[t]
        if episode_discount != 1.0:
            not_done = not_done * (1.0 - (1.0 - episode_discount) * chunk.episode_end[t])
        next_v = chunk.next_value if t == T - 1 else chunk.value[t + 1]
        delta = chunk.reward[t] + gamma * next_v * not_done - chunk.value[t]
        last = delta + gamma * lam * not_done * last
        adv[t] = last
    return adv, adv + chunk.value


def ppo_terms(logits: torch.Tensor, action: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor,
              value: torch.Tensor, returns: torch.Tensor, clip: float):
    """The PPO loss of every step, elementwise (no reduction: each caller takes its own means).

    ``logits`` (..., A) of the policy being trained; ``action``, ``logp_old`` (its
    log-probability when it was sampled), ``adv``, ``value`` and ``returns`` (...). Returns
    ``(surrogate, value_loss, entropy, ratio, log_ratio)``, each (...), with
    ``ratio = exp(logp - logp_old)``:

    - ``surrogate = max(-adv * ratio, -adv * clamp(ratio, 1 - clip, 1 + clip))``, the clipped
      surrogate to minimise: no gradient once the ratio is past the clip in the direction the
      advantage pushes it;
    - ``value_loss = 0.5 * (value - returns) ** 2`` (the value is not clipped);
    - ``entropy`` of the policy's action distribution.
    """
    logp_all = torch.log_softmax(logits, -1)
    logp = logp_all.gather(-1, action.unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    log_ratio = logp - logp_old
    ratio = log_ratio.exp()
    surrogate = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip))
    value_loss = 0.5 * (value - returns).pow(2)
    return surrogate, value_loss, entropy, ratio, log_ratio


def imitation_terms(logits: torch.Tensor, expert: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The mean cross-entropy of ``logits`` (..., A) towards the labelled actions ``expert`` (...;
    -1: no label), and the share of labelled steps whose most likely action is the label (a
    zero loss and agreement where none is labelled)."""
    mask = expert >= 0
    if not bool(mask.any()):
        return logits.sum() * 0.0, 0.0
    picked, label = logits[mask], expert[mask]
    agreement = (picked.argmax(-1) == label).float().mean().item()
    return nn.functional.cross_entropy(picked, label), agreement


def normalize(adv: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
    """``adv`` (T, n) to mean 0 and standard deviation 1, over all of it, or within each group
    of slots (``groups`` (n,): a group index per slot)."""
    if groups is None:
        return (adv - adv.mean()) / (adv.std() + 1e-8)
    out = torch.empty_like(adv)
    for g in torch.unique(groups):
        cols = groups == g
        out[:, cols] = normalize(adv[:, cols])
    return out


def ppo_update(net: RL2Net, opt: torch.optim.Optimizer, chunk: Chunk, adv: torch.Tensor,
               returns: torch.Tensor, cfg: RL2Config, sampler: torch.Generator,
               groups: torch.Tensor | None = None, ent_coef: float | None = None) -> dict:
    """``epochs`` passes of clipped PPO over minibatches of whole slots, each unrolled through
    the GRU over the whole chunk from the chunk's first state; the advantages normalized over
    each minibatch, or within each of its ``groups`` of slots ((B,) a group index per slot);
    the entropy bonus weighed by ``ent_coef`` (None: ``cfg.ent_coef``). Returns mean losses."""
    ent = cfg.ent_coef if ent_coef is None else ent_coef
    B = chunk.reward.shape[1]
    per = B // cfg.minibatches
    x = chunk.features  # what the encoder read in the rollout, the map's reading included: the same in every pass
    stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clipfrac": 0.0}
    n = 0
    for _ in range(cfg.epochs):
        order = torch.randperm(B, generator=sampler, device=sampler.device)
        for m in range(cfg.minibatches):
            mb = order[m * per:(m + 1) * per]
            with precision(cfg, chunk.h0.device):
                logits, value, _ = net.unroll_features(x.index_select(1, mb), chunk.first[:, mb], chunk.h0[mb])
            a = normalize(adv[:, mb], None if groups is None else groups[mb])
            surrogate, value_loss, entropy, ratio, log_ratio = ppo_terms(
                logits, chunk.action[:, mb], chunk.logp[:, mb], a, value, returns[:, mb], cfg.clip)
            policy_loss, value_loss, entropy = surrogate.mean(), value_loss.mean(), entropy.mean()
            loss = policy_loss - ent * entropy + cfg.vf_coef * value_loss
            if chunk.expert is not None:
                imitation, agreement = imitation_terms(logits, chunk.expert[:, mb])
                loss = loss + cfg.imitate * imitation
                stats["imitation"] = stats.get("imitation", 0.0) + imitation.item()
                stats["agreement"] = stats.get("agreement", 0.0) + agreement

            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
            opt.step()
            with torch.no_grad():
                stats["policy_loss"] += policy_loss.item()
                stats["value_loss"] += value_loss.item()
                stats["entropy"] += entropy.item()
                stats["approx_kl"] += ((ratio - 1) - log_ratio).mean().item()
                stats["clipfrac"] += ((ratio - 1).abs() > cfg.clip).float().mean().item()
            n += 1
    return {k: v / n for k, v in stats.items()}


def mean_returns(total, count) -> list[float | None]:
    """Mean return by episode index k of the trial, ``total[k] / count[k]``; None where no
    episode with that index ended."""
    return [float(s / c) if c else None for s, c in zip(total, count)]


def metrics_row(update: int, steps: int, time_s: float, run_steps: int, rollout_s: float, update_s: float,
                return_by_episode: list[float | None], episodes_ended: int, stats: dict) -> dict:
    """One update's metrics row, the same for every training loop (:func:`train_rl2`,
    :func:`metarena.agents.finetune.train_reptile`, :func:`metarena.agents.baselines.train_sb3`):
    ``update``, ``steps`` (env steps so far, earlier runs included), ``time_s`` (seconds since
    this call's first update began), ``steps_per_s`` (``run_steps``, the env steps of this call,
    per ``time_s``), ``rollout_s`` and ``update_s`` of this update, ``return_by_episode``,
    ``episodes_ended``, then ``stats`` (the loss statistics
    :data:`~metarena.agents.rundir.STAT_COLUMNS`, and any the loop adds)."""
    return {"update": update, "steps": steps, "time_s": time_s, "steps_per_s": run_steps / time_s,
            "rollout_s": rollout_s, "update_s": update_s, "return_by_episode": return_by_episode,
            "episodes_ended": int(episodes_ended), **stats}


def precision(cfg: RL2Config, dev: torch.device):
    """The context the network runs in: its matrix products in bfloat16 with ``cfg.bf16``."""
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.bf16)


def features_dtype(cfg: RL2Config) -> torch.dtype:
    """The dtype a rollout keeps the network's features in: that of the first product reading them."""
    return torch.bfloat16 if cfg.bf16 else torch.float32


def setup_torch(cfg: RL2Config) -> torch.device:
    """Threads (torch's as for rollouts, the map's) and seed as the config says; returns the device."""
    torch.set_num_threads(cfg.threads()[0])
    set_map_threads(cfg.map_threads())
    torch.manual_seed(cfg.seed)
    return _device(cfg.device)


def run_seed(seed: int, update: int) -> int:
    """The seed of a run (re)started after ``update`` updates: ``seed`` itself at the start,
    else a value derived deterministically from both (so a resumed run draws fresh levels
    and actions, and the same resume draws the same ones)."""
    if update == 0:
        return int(seed)
    digest = hashlib.sha256(f"metarena-rl2:{int(seed)}:{int(update)}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def cooled(value: float, decay: float, spent: float) -> float:
    """A weight (the learning rate, the entropy bonus) once ``spent`` (0-1) of the run is done:
    ``value`` until the last ``decay`` of the run, then linearly down to 0 at its end (``decay``
    0: ``value`` throughout)."""
    if decay <= 0:
        return value
    return value * min(1.0, max(0.0, (1.0 - spent) / decay))


def train_rl2(config: RL2Config, log: Callable[[dict], None] | None = None,
              net: RL2Net | None = None, *, optimizer_state: dict | None = None, start_update: int = 0,
              start_steps: int | None = None,
              callback: Callable[[dict, RL2Net, torch.optim.Optimizer], None] | None = None,
              make_teacher: Callable[..., Any] | None = None,
              deadline: float | None = None) -> tuple[RL2Net, list[dict]]:
    """Meta-train an :class:`RL2Net` with PPO; returns it and one metrics dict per update.

    ``log`` is called with each update's metrics. ``net`` continues training a given network.
    Resuming: ``optimizer_state`` (``opt.state_dict()``) restores Adam; ``start_update`` and
    ``start_steps`` (default ``start_update * envs * chunk``) are the counters already done: the
    run continues with update ``start_update + 1`` until ``total_steps`` env steps in all, and
    torch, the level draws and the action sampler are seeded with
    ``run_seed(seed, start_update)``. A fresh trial starts in every slot. ``callback(row, net,
    optimizer)`` is called after each update (after ``log``), e.g. to save checkpoints.
    ``make_teacher``: how a ``teacher`` other than the ceiling planner is made (:func:`imitation_for`).
    ``deadline``: the ``time.perf_counter()`` by which the run is to end (``--minutes``); with
    ``lr_decay`` the learning rate (with ``ent_decay`` the entropy bonus) then falls with the share of
    that time spent too (:func:`cooled`).
    Metrics: ``update``, ``steps`` (env steps so far), ``time_s``, ``steps_per_s`` (env steps per
    second of the whole run so far, rollouts and updates included), ``rollout_s`` and
    ``update_s`` of this update, ``return_by_episode`` (mean return of the episodes that
    ended during this rollout, by index k in the trial; None where none ended),
    ``episodes_ended``, ``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl``,
    ``clipfrac``. ``steps_per_s`` counts the steps of this call only.
    """
    called = time.perf_counter()
    cfg = config
    cfg.validate()
    if start_update:
        cfg = dataclasses.replace(cfg, seed=run_seed(cfg.seed, start_update))
    dev = setup_torch(cfg)
    rollout_threads, learn_threads = cfg.threads()
    if net is None:
        net = RL2Net(cfg.net_spec())
    net = net.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, eps=1e-5)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    sampler = torch.Generator(device=dev)
    sampler.manual_seed(cfg.seed)
    B, T, K = cfg.envs, cfg.chunk, cfg.episodes
    done_steps = start_update * B * T if start_steps is None else start_steps
    updates = math.ceil(max(0, cfg.total_steps - done_steps) / (B * T))
    if not start_update:
        updates = max(1, updates)
    metrics: list[dict] = []
    league = League(net, cfg.league, cfg.seed) if SELF in company(cfg) else None
    envs = RL2Envs(cfg, league)
    imitation = imitation_for(cfg, envs, make_teacher) if cfg.imitate else None
    groups = torch.as_tensor(envs.game_of_slot, device=dev) if cfg.adv_by_game else None
    scale = ReturnScale(envs.game_of_slot, cfg.gamma) if cfg.scale_by_game else None
    try:
        carry = Carry(envs, net, dev)
        if cfg.stagger:
            torch.set_num_threads(rollout_threads)
            net.eval()
            with precision(cfg, dev):
                stagger(net, envs, carry, sampler, np.random.default_rng([cfg.seed, 1]), features_dtype(cfg))
        start = time.perf_counter()
        for update in range(start_update + 1, start_update + updates + 1):
            t0 = time.perf_counter()
            spent = (done_steps + (update - start_update - 1) * B * T) / max(cfg.total_steps, 1)
            if deadline is not None:
                spent = max(spent, (t0 - called) / max(deadline - called, 1e-9))
            for group in opt.param_groups:  # also where a resumed Adam state carries another lr
                group["lr"] = cooled(cfg.lr, cfg.lr_decay, spent)
            ent = cooled(cfg.ent_coef, cfg.ent_decay, spent)
            torch.set_num_threads(rollout_threads)
            net.eval()
            with precision(cfg, dev):
                chunk = collect(net, envs, carry, T, sampler, imitation, features_dtype(cfg))
            t1 = time.perf_counter()
            if scale is not None:
                chunk = dataclasses.replace(chunk, reward=scale(chunk.reward, chunk.done))
            adv, returns = gae(chunk, cfg.gamma, cfg.gae_lambda, cfg.episode_discount)
            torch.set_num_threads(learn_threads)
            net.train()
            stats = ppo_update(net, opt, chunk, adv, returns, cfg, sampler, groups, ent)
            if cfg.ent_decay:
                stats["ent_coef"] = ent  # the metrics show the fall
            t2 = time.perf_counter()
            k, r = chunk.episode_returns
            count = np.bincount(k, minlength=K)[:K]
            total = np.bincount(k, weights=r, minlength=K)[:K]
            run = (update - start_update) * B * T
            row = metrics_row(update, done_steps + run, t2 - start, run, t1 - t0, t2 - t1,
                              mean_returns(total, count), count.sum(), stats)
            metrics.append(row)
            if league is not None and update % cfg.league_every == 0:
                league.add(net)
            if log is not None:
                log(row)
            if callback is not None:
                callback(row, net, opt)
    finally:
        if imitation is not None:
            imitation.close()
        envs.close()
    net.eval()
    return net, metrics
