"""The pretrain / fine-tune adapter method: per-level fine-tuning, its strategies, Reptile, and
the algorithm registry of ``metarena train``."""

import json

import numpy as np
import pytest
import torch

from metarena import games
from metarena.agents.checkpoint import CheckpointError
from metarena.agents.evaluate import evaluate
from metarena.agents.finetune import (AdaptConfig, AdapterNet, AdapterNetSpec, FineTuneAgent, KeepAdapted,
                                      ReptileConfig, trainable_names, train_reptile)
from metarena.agents.registry import load_agent, load_net
from metarena.agents.rollout import Hooks, play
from metarena.agents.rundir import read_metrics
from metarena.agents.train import train
from metarena.arenas.cli import main
from metarena.games.batch import BatchEnv

SPEC = AdapterNetSpec(hidden=(32,), rank=4)
TINY = {"chunk": 16, "hidden": (32,), "rank": 4, "pool_size": 32, "minibatches": 2, "torch_threads": 1,
        "progress": False}


def _net(seed=0):
    torch.manual_seed(seed)
    return AdapterNet(SPEC)


def _env(batch=6, episodes=2):
    return BatchEnv(games.get("treasure"), games.variant("treasure", "small"), batch=batch, pool_size=batch,
                    split="test", episodes=episodes, seed=0)


def _params_after_trials(agent, env, episodes):
    """Each slot's tuned weights when its last episode ended (after every fine-tuning step)."""
    kept = {}

    class Keep(Hooks):
        def on_episode_end(self, memories, slots, episode):
            last = slots[episode == episodes - 1]
            for k in agent.tuned:
                kept.setdefault(k, {}).update({int(s): memories[0]["params"][k][s].clone() for s in last})

    stats = play(env, [agent], levels=np.arange(env.batch), seed=0, hooks=Keep())
    return {k: torch.stack([v[s] for s in range(env.batch)]) for k, v in kept.items()}, stats


def test_fresh_adapter_leaves_the_backbone_policy_unchanged():
    net = _net()
    x = torch.rand(7, SPEC.inputs)
    params = dict(net.named_parameters())
    h = net.trunk(params, x)
    logits, value = net.forward_with(params, x)
    torch.testing.assert_close(logits, torch.nn.functional.linear(h, net.policy.weight, net.policy.bias))
    # per-slot copies of the weights give the same outputs as the shared ones
    per_slot = {k: v.unsqueeze(0).repeat(7, *[1] * v.dim()) for k, v in params.items()}
    logits2, value2 = net.forward_with(per_slot, x.unsqueeze(1))
    torch.testing.assert_close(logits2.squeeze(1), logits)
    torch.testing.assert_close(value2.squeeze(1), value)


@pytest.mark.parametrize("strategy", ["adapter", "discriminative", "all"])
def test_each_strategy_tunes_what_it_says(strategy):
    net = _net()
    base = {k: v.detach().clone() for k, v in net.named_parameters()}
    agent = FineTuneAgent(net, AdaptConfig(strategy=strategy, epochs=4, lr=1e-2), seed=0)
    adapted, _ = _params_after_trials(agent, _env(), 2)
    expected = [k for k in base if k.startswith("adapter.")] if strategy == "adapter" else list(base)
    assert sorted(adapted) == sorted(expected) == sorted(trainable_names(net, strategy))
    for k, v in adapted.items():
        moved = (v - base[k]).flatten(1).abs().amax(1)
        if k != "adapter.up.bias" or strategy != "adapter":
            assert (moved > 0).any(), k  # fine-tuning changed it on some level
    for k, v in net.named_parameters():  # the shared network itself is never touched
        torch.testing.assert_close(v, base[k])


def test_discriminative_moves_the_backbone_less_than_all():
    moves = {}
    for strategy in ("discriminative", "all"):
        net = _net()
        base = net.encoder[0].weight.detach().clone()
        agent = FineTuneAgent(net, AdaptConfig(strategy=strategy, epochs=4, lr=1e-2, backbone_decay=0.1), seed=0)
        adapted, _ = _params_after_trials(agent, _env(), 2)
        moves[strategy] = float((adapted["encoder.0.weight"] - base).abs().mean())
    assert 0 < moves["discriminative"] < 0.5 * moves["all"]


def test_levels_adapt_independently():
    """Slot 0 ends with the same weights whether it adapts alone or beside other levels."""
    net = _net()
    agent = FineTuneAgent(net, AdaptConfig(strategy="all", epochs=3, lr=1e-2), greedy=True)
    memory = agent.begin_trial(3)
    env = _env(batch=3, episodes=2)
    grid, scalars = env.reset(levels=np.arange(3), seed=0)
    from metarena.games.trial import TrialFeatures

    features = TrialFeatures(3, 1, 2)
    trial = features.reset()
    from metarena.agents.base import Observation

    for _ in range(12):
        action, memory = agent.act(Observation(grid[:, 0], scalars[:, 0], trial[:, 0]), memory)
        grid, scalars, rewards, term, trunc, info = env.step(action[:, None])
        trial = features.update(action[:, None], rewards, term | trunc, np.zeros(3, dtype=bool))
    log = memory["log"]
    for step in (4, 11):
        log.done[step][:] = True  # pretend every slot ended episodes there
        log.reward[step][:] = np.array([1.0, 0.0, 0.5])
    import copy

    alone, together = copy.deepcopy(memory), copy.deepcopy(memory)
    agent.adapt(alone, np.array([0]))
    agent.adapt(together, np.array([0, 1, 2]))
    for k in agent.tuned:
        torch.testing.assert_close(alone["params"][k][0], together["params"][k][0])
        assert not torch.equal(together["params"][k][0], memory["params"][k][0]) or k.endswith("bias")


def test_fine_tuning_makes_a_rewarded_episode_more_likely():
    net = _net()
    agent = FineTuneAgent(net, AdaptConfig(strategy="all", epochs=8, lr=1e-2), seed=1)
    env = _env(batch=64, episodes=2)
    logs = []
    agent_begin = agent.begin_trial
    agent.begin_trial = lambda n: logs.append(agent_begin(n)) or logs[-1]
    adapted, stats = _params_after_trials(agent, env, 2)  # the weights episode 2 was played with
    won = np.flatnonzero(stats.returns[:, 0, 0] > 0)
    assert len(won) >= 2  # a near-uniform policy finds the treasure on some small levels
    log = logs[0]["log"]
    # the episode-1 steps of the winning slots: up to their first "done"
    done = np.stack(log.done)[:, won]
    first_end = done.argmax(0)
    x = net.inputs(torch.stack([g[won] for g in log.grid], 1), torch.stack([s[won] for s in log.scalars], 1))
    action = torch.stack([a[won] for a in log.action], 1)
    mask = torch.as_tensor(np.arange(done.shape[0])[None, :] <= first_end[:, None])

    def mean_logp(params):
        logits, _ = net.forward_with(params, x)
        logp = torch.log_softmax(logits, -1).gather(2, action[..., None]).squeeze(2)
        return float((logp * mask).sum() / mask.sum())

    base = {k: v.unsqueeze(0).expand(len(won), *v.shape) for k, v in net.named_parameters()}
    tuned = dict(base) | {k: v[torch.as_tensor(won)] for k, v in adapted.items()}
    assert mean_logp(tuned) > mean_logp(base) + 0.05


def test_memory_reset_wipes_the_adaptation():
    net = _net()
    agent = FineTuneAgent(net, AdaptConfig(strategy="adapter", epochs=4, lr=1e-2), seed=0)
    memory = agent.begin_trial(4)
    for k in agent.tuned:
        memory["params"][k] += 1.0
    memory = agent.reset_memory(memory, np.array([1, 3]))
    base = dict(net.named_parameters())
    for k in agent.tuned:
        torch.testing.assert_close(memory["params"][k][[1, 3]], base[k].expand(2, *base[k].shape))
        torch.testing.assert_close(memory["params"][k][[0, 2]], base[k].expand(2, *base[k].shape) + 1.0)


def test_reptile_moves_only_the_tuned_start():
    net = _net()
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    cfg = ReptileConfig(games=("treasure",), variant="small", envs=8, episodes=2, pool_size=16,
                        hidden=(32,), rank=4, total_steps=1, seed=0, adapt_lr=1e-2, adapt_epochs=3)
    rows = []
    net, metrics = train_reptile(cfg, net=net, callback=lambda row, n, opt: rows.append(row))
    assert len(rows) == len(metrics) == 1 and rows[0]["update"] == 1
    assert len(rows[0]["return_by_episode"]) == 2 and rows[0]["steps"] > 0 and rows[0]["meta_shift"] > 0
    for k, v in net.named_parameters():
        if k.startswith("adapter.up"):
            assert not torch.equal(v, before[k]), k  # the adapter's start moved
        elif not k.startswith("adapter."):
            torch.testing.assert_close(v, before[k])  # the frozen backbone did not


def test_fomaml_takes_each_trials_last_episode_with_its_reward():
    """FOMAML's gradient of a slot is taken on its trial's last episode only, once, with the
    last step's reward (which the agent would hear of only at a next action)."""
    agent = FineTuneAgent(_net(), AdaptConfig(strategy="all", lr=1e-3, epochs=1, gamma=1.0), seed=0)
    seen = []
    take = agent.post_gradient

    def spy(memory, slots):
        _, _, _, _, ret, mask = agent._batch(memory, slots, last=True)
        seen.append((slots.copy(), ret.clone(), mask.clone()))
        return take(memory, slots)

    agent.post_gradient = spy
    env = _env(batch=8, episodes=2)
    keep = KeepAdapted(agent, env.batch, 2, "fomaml")
    stats = play(env, [agent], levels=np.arange(env.batch), seed=0, hooks=keep)
    assert sorted(np.concatenate([s for s, _, _ in seen])) == list(range(env.batch))  # each slot once
    for slots, ret, mask in seen:
        first = mask.argmax(1)  # the last episode's first step: its Monte-Carlo return is the episode's
        torch.testing.assert_close(ret[torch.arange(len(slots)), first], torch.as_tensor(stats.returns[slots, 1, 0]))
        assert mask.sum(1).tolist() == stats.lengths[slots, 1].tolist()
    assert (stats.returns[:, 1, 0] > 0).any() and keep.final is None
    assert any(float(g.abs().sum()) > 0 for g in keep.grads.values())


def test_fomaml_steps_the_start_with_adam():
    net = _net()
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    cfg = ReptileConfig(games=("treasure",), variant="small", envs=8, episodes=2, pool_size=16, hidden=(32,), rank=4,
                        total_steps=1, seed=0, adapt_epochs=2, strategy="all", outer="fomaml", outer_lr=1e-3)
    seen = []
    net, metrics = train_reptile(cfg, net=net, callback=lambda row, n, opt: seen.append(opt))
    assert isinstance(seen[0], torch.optim.Adam) and metrics[0]["meta_shift"] > 0
    moved = [k for k, v in net.named_parameters() if not torch.equal(v, before[k])]
    assert "policy.weight" in moved and "encoder.0.weight" in moved  # "all": every part of the start
    assert max(float((v - before[k]).abs().max()) for k, v in net.named_parameters()) <= 1e-3 + 1e-6  # one step
    with pytest.raises(ValueError, match="outer"):
        ReptileConfig(outer="maml").validate()


def test_finetune_and_reptile_runs_through_the_registry(tmp_path, capsys):
    ft = tmp_path / "ft"
    final = train("finetune", ["treasure"], "small", steps=3 * 32 * 16, out=str(ft), envs=32, **TINY)
    config = json.loads((ft / "config.json").read_text())
    assert config["algorithm"] == "finetune" and config["episodes"] == 1 and config["strategy"] == "adapter"
    assert [r["update"] for r in read_metrics(ft)] == [1, 2, 3]
    agent = load_agent(final, game="treasure", strategy="all")
    assert isinstance(agent, FineTuneAgent) and agent.adapt_cfg.strategy == "all"
    assert agent.adapt_cfg.lr == config["adapt_lr"]
    agent = load_agent(final, game="treasure", strategy="all", adapt_lr=3e-4)
    assert agent.adapt_cfg.strategy == "all" and agent.adapt_cfg.lr == 3e-4
    result = evaluate(agent, "treasure", "small", levels=6, episodes=2)
    assert len(result["per_episode"]["return"]) == 2

    rp = tmp_path / "rp"
    rp_tiny = {k: v for k, v in TINY.items() if k not in ("chunk", "minibatches")}
    train("reptile", ["treasure"], "small", steps=1, out=str(rp), envs=8, init=str(ft), episodes=2, **rp_tiny)
    rows = read_metrics(rp)
    assert [r["update"] for r in rows] == [1] and rows[0]["return_ep2"] is not None
    assert not (rp / "checkpoints" / "update_000001" / "optimizer.safetensors").exists()
    first = rows[0]["env_steps"]
    train("reptile", ["treasure"], "small", steps=first + 1, out=str(rp), resume=True)  # continues
    assert [r["update"] for r in read_metrics(rp)] == [1, 2]
    with pytest.raises(ValueError, match="run of --algo reptile"):
        train("finetune", ["treasure"], "small", steps=10 ** 6, out=str(rp), resume=True)
    fo = tmp_path / "fo"  # FOMAML keeps its Adam beside each checkpoint, and a resume goes on with it
    train("reptile", ["treasure"], "small", steps=1, out=str(fo), envs=8, init=str(ft), episodes=2, outer="fomaml",
          **rp_tiny)
    assert (fo / "checkpoints" / "update_000001" / "optimizer.safetensors").exists()
    train("reptile", ["treasure"], "small", steps=read_metrics(fo)[0]["env_steps"] + 1, out=str(fo), resume=True)
    assert [r["update"] for r in read_metrics(fo)] == [1, 2]

    # the CLI: eval with a strategy; a reptile checkpoint is refused where a finetune one is asked
    assert main(["eval", "--agent", str(rp), "--game", "treasure", "--variant", "small", "--levels", "4",
                 "--episodes", "2", "--strategy", "discriminative", "--json"]) == 0
    text = capsys.readouterr().out
    out = json.loads(text[text.index("{"):])  # after anything the runs above printed
    assert out["agent"].startswith("reptile-discriminative")
    with pytest.raises(CheckpointError, match="algorithm 'reptile'"):

        load_net(rp, algorithms=("finetune",))


def test_train_cli_settings(tmp_path, capsys):
    assert main(["train", "--algo", "finetune", "--game", "treasure", "--variant", "small", "--steps", "10",
                 "--envs", "8", "--set", "nonsense=3", "--out", str(tmp_path / "x")]) == 2
    assert "unknown FineTuneConfig setting 'nonsense'" in capsys.readouterr().err
    assert main(["train", "--algo", "finetune", "--game", "treasure", "--steps", "10", "--set", "lr",
                 "--out", str(tmp_path / "y")]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
