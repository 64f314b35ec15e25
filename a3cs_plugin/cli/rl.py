"""``a3cs train``, ``a3cs evaluate`` and ``a3cs teacher ship``."""
from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

from a3cs_plugin.cli import checks
from a3cs_plugin.errors import CheckpointError, ConfigError

_FRAMES_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*$")
_SUFFIX = {"": 1, "k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9}


def parse_frames(text: str) -> int:
    """``10M`` -> 10_000_000, ``500k`` -> 500_000, ``1e6`` -> 1_000_000 (emulator frames)."""
    m = _FRAMES_RE.match(str(text))
    if not m:
        raise ConfigError(f"cannot read frame count '{text}'", key="frames",
                          expected="a number with optional k/M/G suffix, e.g. 10M, 500k, 1e6")
    value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if not math.isfinite(value) or value < 1:
        raise ConfigError(f"frame count '{text}' must be >= 1", key="frames")
    return int(round(value))


def _parse_hp(items: list[str] | None) -> dict:
    out: dict = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"cannot read --hp '{item}'", key="hp", expected="KEY=VALUE")
        low = raw.strip().lower()
        if low in ("true", "false"):
            val: object = low == "true"
        else:
            try:
                val = int(raw)
            except ValueError:
                try:
                    val = float(raw)
                except ValueError:
                    if key.strip() != "precision":
                        raise ConfigError(f"--hp {key} needs a number or true/false", key=key,
                                          got=raw) from None
                    val = raw.strip()
        out[key.strip()] = val
    return out


def cmd_train(args) -> int:
    from a3cs_plugin.rl.config import DistillConfig, TrainConfig
    from a3cs_plugin.rl.envs import game_label
    from a3cs_plugin.agents.zoo import build_agent

    from a3cs_plugin.rl.teacher import teacher_path
    build_agent(args.agent, 2)          # validate names before any env/tensorboard work
    checks.at_least("--num-envs", args.num_envs)
    checks.at_least("--threads", args.threads, 0)
    checks.at_least("--update-threads", args.update_threads, 0)
    checks.at_least("--env-threads", args.env_threads)
    checks.weight("--distill-actor", args.distill_actor)
    checks.weight("--distill-critic", args.distill_critic)
    checks.out_dir("--out", args.out)
    if args.resume:
        checks.resume_dir("--out", args.out, "")
    device = checks.device("--device", args.device)
    hp = _parse_hp(args.hp)
    if args.num_envs is not None:
        hp["num_envs"] = args.num_envs
    if args.precision is not None:
        hp["precision"] = args.precision
    distill = DistillConfig(actor=args.distill_actor or 0.0, critic=args.distill_critic or 0.0)
    if args.teacher and not distill.enabled:
        distill = DistillConfig(actor=1.0, critic=0.5)
    cfg = TrainConfig(agent=args.agent, game=game_label(args.game),
                      frames=parse_frames(args.frames), algo=args.algo, seed=args.seed, hp=hp,
                      distill=distill, teacher=args.teacher,
                      checkpoint_every=parse_frames(args.checkpoint_every),
                      env_threads=args.env_threads, torch_threads=args.threads,
                      update_threads=args.update_threads,
                      init=str(teacher_path(args.init)) if args.init else None, device=str(device))
    cfg.algo_config()                   # validate hyper-parameters early
    if cfg.init and not (args.resume and (Path(args.out) / "checkpoints" / "last.pt").exists()):
        _check_init(cfg)
    from a3cs_plugin.rl.trainer import train
    summary = train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    print(json.dumps(summary))
    return 0


def _check_init(cfg) -> None:
    """``--init`` must be an agent file of the same agent and game (checked before any env starts)."""
    from a3cs_plugin.rl.checkpoint import load_checkpoint
    from a3cs_plugin.rl.envs import env_spec
    init = load_checkpoint(cfg.init)
    n = env_spec(cfg.game).num_actions
    if int(init["num_actions"]) != n or init["agent"] != cfg.agent:
        raise ConfigError("--init weights are for another agent or game", file=cfg.init, key="--init",
                          expected=f"{cfg.agent} with {n} actions",
                          got=f"{init['agent']} with {init['num_actions']} actions")


def _search_checkpoint_hint(path: str) -> None:
    """A search run directory or its Lightning ``last.ckpt`` is not an agent file: say what it is."""
    p = Path(path)
    run = p if p.is_dir() else (p.parent.parent if p.name == "last.ckpt" else None)
    is_search = run is not None and ((run / "arch.json").is_file() or
                                     ((run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()))
    if not is_search:
        return
    if not (p.is_dir() and (p / "checkpoints" / "last.pt").is_file()):
        agents = [q for q in (run / "retrain" / "agent.pt", run / "finetune" / "agent.pt") if q.is_file()]
        if agents:
            where = f"--checkpoint {agents[0]}"
        elif (run / "arch.json").is_file():
            where = "the fine-tuned agent, which this run does not have (--no-retrain or finetune.frames: 0)"
        else:
            where = f"--checkpoint {run / 'finetune' / 'agent.pt'} (written when the search finishes)"
        raise CheckpointError("this is an `a3cs search` run (its last.ckpt is the supernet's search "
                              "state, not an agent)", file=str(path),
                              expected=f"{where}, or `a3cs retrain {run}` to train the derived agent")


def cmd_evaluate(args) -> int:
    import torch
    from a3cs_plugin.rl.envs import env_spec
    from a3cs_plugin.rl.evaluate import evaluate

    if sum(map(bool, (args.teacher, args.checkpoint, args.random))) != 1:
        raise ConfigError("give exactly one of --teacher GAME|PATH, --checkpoint PATH or --random",
                          key="teacher/checkpoint/random")
    checks.at_least("--episodes", args.episodes)
    checks.at_least("--threads", args.threads)
    device = checks.device("--device", args.device)
    if args.checkpoint:
        _search_checkpoint_hint(args.checkpoint)
    torch.set_num_threads(args.threads)
    spec = env_spec(args.game)
    if args.random:
        from a3cs_plugin.rl.evaluate import random_agent
        model, meta = random_agent(spec.num_actions), {"agent": "random"}
    elif args.teacher:
        from a3cs_plugin.rl.teacher import load_teacher
        model = load_teacher(args.teacher, game=spec.game, num_actions=spec.num_actions)
        meta = model.teacher_meta
    else:
        from a3cs_plugin.rl.checkpoint import load_agent
        model, meta = load_agent(args.checkpoint, game=spec.game, num_actions=spec.num_actions)
    res = evaluate(model, spec.game, args.episodes, seed=args.seed, greedy=args.greedy, device=device)
    out = res.to_dict()
    out.update({"agent": meta.get("agent"), "source": meta.get("path"),
                "trained_frames": meta.get("frames")})
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{spec.game}: {res.mean:.2f} +- {res.std:.2f} over {res.episodes} episodes "
              f"({meta.get('agent')}, {meta.get('frames')} training frames)")
    return 0


def cmd_teacher_ship(args) -> int:
    from a3cs_plugin.rl.ship import ship
    from a3cs_plugin.rl.ship import TEACHER_DIR
    checks.at_least("--episodes", args.episodes)
    info = ship(args.run_dir, args.game, episodes=args.episodes, fp16=not args.fp32,
                skip_eval=args.no_eval, out_dir=args.out or TEACHER_DIR, force=args.force)
    print(json.dumps(info))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a zoo agent on an Atari game (PPO/A2C)",
                              description="Train a zoo agent with PPO or A2C, optionally "
                                          "distilling from a teacher. Checkpoints to OUT.")
    p.add_argument("--agent", required=True, help="zoo agent: nature_cnn, resnet14/20/38/74")
    p.add_argument("--game", required=True, help="Atari game, e.g. Pong, Breakout")
    p.add_argument("--frames", required=True, help="emulator frames, e.g. 10M, 500k, 1e6")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--algo", default="ppo", choices=["ppo", "a2c"])
    p.add_argument("--seed", type=checks.seed, default=1)
    p.add_argument("--resume", action="store_true", help="continue from OUT's last checkpoint")
    p.add_argument("--teacher", help="teacher: a game with a shipped teacher, or a checkpoint")
    p.add_argument("--distill-actor", type=float, default=None, help="weight of KL(pi_T||pi_S)")
    p.add_argument("--distill-critic", type=float, default=None, help="weight of MSE(V_T,V_S)")
    p.add_argument("--init", help="start from these weights (a game with a shipped teacher, or a "
                                  "checkpoint) with a fresh optimiser; recorded in the run's config")
    p.add_argument("--num-envs", type=int, default=None)
    p.add_argument("--precision", choices=["fp32", "bf16", "auto"], default=None,
                   help="network arithmetic: fp32 (default) or bf16 autocast (~1.8x faster on "
                        "CPUs with native bf16); auto picks bf16 where the CPU has it")
    p.add_argument("--checkpoint-every", default="500k", help="frames between checkpoints")
    p.add_argument("--hp", action="append", metavar="KEY=VALUE",
                   help="algorithm hyper-parameter override (repeatable), e.g. num_steps=64")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: default, 1; more only on an idle machine)")
    p.add_argument("--update-threads", type=int, default=0,
                   help="torch threads of the PPO/A2C update only (0: as --threads); on an idle "
                        "CPU, its core count: the rollout stays on --threads beside the emulator")
    p.add_argument("--env-threads", type=int, default=1, help="ALE worker threads")
    checks.add_device_flag(p)
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.set_defaults(func=cmd_train)

    e = subparsers.add_parser("evaluate", help="score an agent over N full games",
                              description="Evaluate a teacher or checkpoint: unclipped game "
                                          "score over N episodes.")
    e.add_argument("--teacher", help="game with a shipped teacher (Pong) or a teacher file")
    e.add_argument("--checkpoint", help="checkpoint file or run directory")
    e.add_argument("--random", action="store_true",
                   help="a uniform-random agent (the reference beside every reported score)")
    e.add_argument("--game", required=True)
    e.add_argument("--episodes", type=int, default=30)
    e.add_argument("--seed", type=checks.seed, default=12345)
    e.add_argument("--greedy", action="store_true", help="arg-max actions instead of sampling")
    e.add_argument("--threads", type=int, default=1)
    checks.add_device_flag(e)
    e.add_argument("--json", action="store_true", help="print one JSON line")
    e.set_defaults(func=cmd_evaluate)

    t = subparsers.add_parser("teacher", help="teacher utilities")
    tsub = t.add_subparsers(dest="teacher_command", metavar="ACTION",
                            parser_class=subparsers._parser_class)
    s = tsub.add_parser("ship", help="copy a run's last checkpoint into a3cs_plugin/teachers/ "
                                     "(--out DIR: elsewhere)")
    s.add_argument("run_dir")
    s.add_argument("--game", required=True)
    s.add_argument("--episodes", type=int, default=30)
    s.add_argument("--fp32", action="store_true", help="keep fp32 weights (default fp16)")
    s.add_argument("--no-eval", action="store_true", help="skip the 30-episode evaluation")
    s.add_argument("--out", metavar="DIR", default=None,
                   help="write the teacher here (default: the package's a3cs_plugin/teachers/)")
    s.add_argument("--force", action="store_true",
                   help="replace a teacher that ships with a3cs (refused without it)")
    s.set_defaults(func=cmd_teacher_ship)
    t.set_defaults(func=lambda a: (t.print_help(sys.stderr), 2)[1])
