"""``a3cs search``, ``a3cs retrain`` and ``a3cs run-example``."""
from __future__ import annotations

import sys
from pathlib import Path

from a3cs_plugin.cli import checks
from a3cs_plugin.errors import CheckpointError, ConfigError

EXAMPLE = "quick_pong"

#: The quick example, embedded so that an installed package runs it without the source tree
#: (kept equal to examples/quick_pong.yaml by the tests).
QUICK_PONG_YAML = """\
# Default co-search example (`make run` / `a3cs run-example`): about 13 minutes on 2 idle CPU cores,
# fine-tune, evaluation and re-costing with the mapper included.
game: Pong
teacher: Pong              # shipped teacher (a3cs_plugin/teachers/pong.pt): distillation source
frames: 65536              # emulator frames of the search (32 updates of 8 envs x 64 steps x 4)
mode: one-level            # one-level | bi-level | direct-nas (= one-level without distillation)
algo: ppo                  # the real PPO update inside the search: 4 epochs x 4 minibatches, clipping
hp: {num_envs: 8, num_steps: 64, num_minibatches: 4, update_epochs: 4, lr: 0.00025, precision: fp32}
seed: 1
threads: 1                 # torch threads (1 is fastest on a busy 2-core machine)
hardware:
  template: eyeriss_like   # clock pinned at 1 GHz by the template (no voltage-frequency model)
  cost_model: surrogate
  metric: edp              # latency | energy | edp of one inference of the whole agent
  lambda: 0.5              # hardware / task alpha-gradient ratio (search.balance: normalize)
  fps_target: null         # e.g. 60000 (band +-10%) or [50000, 70000]: adapts lambda
  area_budget_mm2: 9.62    # the area of the hand-designed arch_specs/eyeriss_like.yaml
  recost_time_limit: 1.0   # mapper seconds per distinct layer
  baselines: [eyeriss_like]  # also cost derived agent and teacher on the hand-designed spec
search:
  num_cells: 14
  supernet: single-path    # one Gumbel-sampled op per cell per forward
  arc_lr: 0.01
  tau_init: 5.0
  tau_min: 0.5
  distill_actor: 1.0
  distill_critic: 0.5
  warmup_frac: 0.2         # weight-only updates before alpha and beta move
  epochs: 8                # checkpoints: one per epoch (--resume continues from the last)
finetune:
  frames: 1179648          # fine-tune of the derived agent (supernet weights) with distillation
eval:
  episodes: 10             # fewer than the 30 of the protocol to fit the quick budget; said in the report
  teacher: true
  random: true
"""


def _example_path(name: str) -> Path:
    """``examples/<name>.yaml`` of the source tree, or the copy shipped inside the package."""
    root = Path(__file__).resolve().parents[2]
    for cand in (root / "examples" / f"{name}.yaml",
                 Path(__file__).resolve().parents[1] / "data" / "examples" / f"{name}.yaml"):
        if cand.is_file():
            return cand
    raise ConfigError(f"example '{name}' not found", file=str(root / "examples" / f"{name}.yaml"),
                      expected="the examples/ folder of the a3cs source tree")


def cmd_search(args) -> int:
    from a3cs_plugin.cosearch.config import load_config
    from a3cs_plugin.cosearch.driver import run_seeds

    from a3cs_plugin.cli import checks
    checks.out_dir("--out", args.out)
    if args.resume:
        checks.resume_dir("--out", args.out, "config.yaml")
    cfg = load_config(args.config)
    if args.device is not None:         # the flag over the config's device: key
        checks.device("--device", args.device)
        cfg.device = args.device.strip().lower()
    if args.frames is not None:
        from a3cs_plugin.cli.rl import parse_frames
        cfg.frames = parse_frames(args.frames)
    report = run_seeds(cfg, args.out, resume=args.resume, recost=not args.no_recost,
                       finetune=not args.no_retrain)
    print_table(report)
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0


def print_table(report: dict) -> None:
    """The outcome table: score +- std, normalized score, FPS, energy, area per agent."""
    from a3cs_plugin.cosearch.report import outcome_rows
    for line in outcome_rows(report):
        print(line)


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def cmd_retrain(args) -> int:
    from a3cs_plugin.cli.rl import parse_frames
    from a3cs_plugin.cosearch.retrain import retrain

    from a3cs_plugin.cli import checks
    checks.at_least("--episodes", args.episodes)
    device = str(checks.device("--device", args.device)) if args.device is not None else None
    report = retrain(args.run_dir, parse_frames(args.frames), episodes=args.episodes, resume=args.resume,
                     device=device)
    print(f"retrained {report['frames']} frames: score {report['score']:.2f} +- {report['score_std']:.2f} "
          f"over {report['episodes']} episodes -> {Path(args.run_dir) / 'retrain' / 'report.json'}")
    return 0


def cmd_run_example(args) -> int:
    import yaml

    from a3cs_plugin.cosearch.config import load_config, parse_config
    from a3cs_plugin.cosearch.driver import run_search

    out = Path(args.out or f"runs/{args.example}")
    if args.example == EXAMPLE:
        path = "<embedded quick_pong.yaml>"
        cfg = parse_config(yaml.safe_load(QUICK_PONG_YAML), path)
    else:
        path = _example_path(args.example)
        cfg = load_config(path)
    print(f"a3cs run-example: {path} -> {out}", file=sys.stderr, flush=True)
    resume = (out / "checkpoints" / "last.ckpt").exists()
    try:
        report = run_search(cfg, out, resume=resume)
    except CheckpointError as exc:
        if not resume:
            raise
        # the example changed since that run, or another a3cs version (another surrogate, say)
        # made it: keep it under a new name and start a new run
        import time
        old = out.with_name(f"{out.name}.prev-{time.strftime('%Y%m%d-%H%M%S')}")
        out.rename(old)
        print(f"a3cs run-example: cannot resume {out} ({exc}); moved it to {old}",
              file=sys.stderr, flush=True)
        report = run_search(cfg, out, resume=False)
    print_table(report)
    print(f"report: {(out / 'report.md').resolve()}")
    return 0


def cmd_reproduce(args) -> int:
    from a3cs_plugin.cosearch.driver import _quiet_nni
    from a3cs_plugin.cosearch.reproduce import reproduce
    _quiet_nni()
    reproduce(args.figure, args.out, budget_name=args.budget, games=args.games, resume=args.resume,
              device=args.device, jobs=args.jobs)
    return 0


def register(sub) -> None:
    p = sub.add_parser("search", help="co-search a DRL agent and its accelerator (A3C-S)")
    p.add_argument("config", help="run configuration YAML (see examples/quick_pong.yaml)")
    p.add_argument("--out", required=True, help="run directory (arch.json, accelerator.yaml, report.*)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--frames", help="override the frame budget (e.g. 200k)")
    p.add_argument("--no-recost", action="store_true", help="skip the mapper re-costing")
    p.add_argument("--no-retrain", action="store_true",
                   help="skip the fine-tune of the derived agent (config finetune.frames)")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help=checks.DEVICE_HELP + "; default: the config's device: key (auto)")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("retrain", help="train a searched agent from scratch and evaluate it")
    p.add_argument("run_dir", help="directory of a finished `a3cs search`")
    p.add_argument("--frames", required=True, help="training frames (e.g. 2M)")
    p.add_argument("--episodes", type=int, default=30, help="evaluation episodes (default 30)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted retraining")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help=checks.DEVICE_HELP + "; default: the search config's device: key")
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("reproduce", help="run and draw one of the A3C-S paper's figures (fig1, fig2, fig3)")
    p.add_argument("figure", choices=("fig1", "fig2", "fig3"),
                   help="fig1: zoo training curves; fig2: Direct-NAS vs A3C-S one-/bi-level search curves; "
                        "fig3: score vs FPS (A3C-S pairs, DAS, DNNBuilder-like and Eyeriss-like baselines)")
    p.add_argument("--budget", default="cpu", choices=("tiny", "cpu", "full"),
                   help="tiny: seconds (tests); cpu: a few hours per game on 2 cores; full: the paper's "
                        "scale (10M frames, 4 games, 3 seeds; GPU)")
    p.add_argument("--games", nargs="+", help="games (default: the budget's; each needs a shipped teacher); "
                   "with --resume they are added to the games already in --out, and the figure shows all")
    p.add_argument("--out", required=True, help="directory of the runs and of figN.png/.md/.json")
    p.add_argument("--resume", action="store_true", help="continue an interrupted reproduce run in --out")
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda or cuda:N")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="independent runs at once, each in its own process logging to RUN/reproduce.log "
                        "(default 1: in order, in this process; 0: one per CPU core on a CPU, 1 on a GPU)")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("run-example", help="run the default quick co-search example")
    p.add_argument("--example", default=EXAMPLE, help=f"example name in examples/ (default {EXAMPLE})")
    p.add_argument("--out", help="run directory (default runs/<example>)")
    p.set_defaults(func=cmd_run_example)
