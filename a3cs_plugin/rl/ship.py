"""Ship a training run's latest checkpoint as a teacher: ``a3cs teacher ship RUN_DIR --game Pong``
(or ``python -m a3cs_plugin.rl.ship RUN_DIR --game Pong``); replacing a teacher that ships
with a3cs needs ``--force``, ``--out DIR`` writes elsewhere.

Writes ``a3cs_plugin/teachers/<rom>.pt`` (an ``a3cs-agent`` file: weights -- fp16 when that keeps
the policy -- plus game, num_actions, agent, frames and the 30-episode evaluation),
``<rom>_curve.png`` (training curve from the run's ``metrics.csv``) and regenerates ``README.md``
from the metadata of every shipped teacher.
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
from pathlib import Path

import torch

from a3cs_plugin.errors import CheckpointError
from a3cs_plugin.rl.checkpoint import agent_file, load_agent, load_checkpoint, save_atomic
from a3cs_plugin.rl.envs import game_label, make_eval_env, rom_id
from a3cs_plugin.rl.evaluate import evaluate, random_agent
from a3cs_plugin.rl.teacher import TEACHER_DIR     # the package's teachers/ data folder


@torch.no_grad()
def fp16_fidelity(model: torch.nn.Module, game: str, steps: int = 64) -> dict:
    """Compare the fp32 model with its fp16-rounded copy on real frames of ``game``
    (random-action frames): max |d logits|, max |d value|, arg-max agreement."""
    import copy

    import numpy as np
    env = make_eval_env(game, 4)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(steps):
        frames.append(torch.from_numpy(np.ascontiguousarray(obs)))
        obs, *_ = env.step(rng.integers(0, env.single_action_space.n, 4))
    env.close()
    x = torch.cat(frames)
    half = copy.deepcopy(model)
    for p in half.parameters():
        p.copy_(p.half().float())
    (l32, v32), (l16, v16) = model(x), half(x)
    return {"max_abs_logit_diff": float((l32 - l16).abs().max()),
            "max_abs_value_diff": float((v32 - v16).abs().max()),
            "argmax_agreement": float((l32.argmax(-1) == l16.argmax(-1)).float().mean())}


def _curve(run_dir: Path, png: Path, title: str, max_frames: int | None = None) -> int | None:
    """Plot episode return vs frames from metrics.csv (rows up to ``max_frames``: the shipped
    checkpoint); returns the number of episodes plotted."""
    path = run_dir / "metrics.csv"
    if not path.exists():
        return None
    xs, ys, ws = [], [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if max_frames is not None and int(float(row["frames"])) > max_frames:
                continue
            if row.get("episode_return") not in (None, ""):
                xs.append(int(float(row["frames"])))
                ys.append(float(row["episode_return"]))
                ws.append(int(float(row["episodes"])))
    if not xs:
        return 0
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    k = max(1, min(20, len(ys) // 5))
    smooth = np.convolve(ys, np.ones(k) / k, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(np.array(xs) / 1e6, ys, ".", alpha=0.3, label="per-update mean")
    ax.plot(np.array(xs[k - 1:]) / 1e6, smooth, "-", label=f"moving mean ({k})")
    ax.set_xlabel("emulator frames (M)")
    ax.set_ylabel("training episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return int(sum(ws))


def _command(cfg: dict) -> str:
    """The ``a3cs train`` command line of a run's config (what the README records)."""
    if not cfg:
        return ""
    parts = ["a3cs train", f"--agent {cfg.get('agent')}", f"--game {cfg.get('game')}",
             f"--frames {cfg.get('frames')}", f"--seed {cfg.get('seed')}"]
    if cfg.get("init"):
        parts.append(f"--init {Path(cfg['init']).stem.capitalize() if Path(cfg['init']).parent.name == 'teachers' else Path(cfg['init']).name}")
    hp = dict(cfg.get("hp") or {})
    if "precision" in hp:
        parts.append(f"--precision {hp.pop('precision')}")
    parts += [f"--hp {k}={v}" for k, v in hp.items()]
    if cfg.get("checkpoint_every"):
        parts.append(f"--checkpoint-every {cfg['checkpoint_every']}")
    return " ".join(parts)


def check_target(out_dir: str | Path, game: str, force: bool = False) -> Path:
    """``out_dir/<rom>.pt``; a teacher that ships with a3cs (in the package) is only replaced with
    ``force`` (raises CheckpointError before any work otherwise)."""
    out_dir = Path(out_dir)
    target = out_dir / f"{rom_id(game_label(game))}.pt"
    if out_dir.exists() and not out_dir.is_dir():
        raise CheckpointError("--out is a file", file=str(out_dir), expected="a directory")
    packaged = out_dir.resolve() == TEACHER_DIR.resolve()
    if packaged and target.exists() and not force:
        raise CheckpointError("refusing to replace the shipped teacher", file=str(target),
                              expected="--force to replace it, or --out DIR to write elsewhere")
    return target


def ship(run_dir: str | Path, game: str, *, episodes: int = 30, fp16: bool = True,
         skip_eval: bool = False, out_dir: str | Path = TEACHER_DIR, seed: int = 12345,
         force: bool = False) -> dict:
    """Copy ``run_dir``'s latest checkpoint into ``out_dir/<rom>.pt``; returns its metadata.

    A shipped teacher (``out_dir`` the package's ``teachers/``) is replaced only with ``force``."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    label = game_label(game)
    check_target(out_dir, label, force)
    ckpt = load_checkpoint(run_dir)
    model, meta = load_agent(ckpt, game=label)
    fid = fp16_fidelity(model, label) if fp16 else None
    use_fp16 = bool(fp16 and fid["argmax_agreement"] == 1.0 and fid["max_abs_logit_diff"] < 0.05)
    if use_fp16:                        # evaluate exactly what is shipped
        for p in model.parameters():
            p.data.copy_(p.data.half().float())
    ev = greedy = rand = None
    if not skip_eval:
        r = evaluate(model, label, episodes, seed=seed)
        ev = {"mean": r.mean, "std": r.std, "episodes": r.episodes, "scores": r.scores,
              "seed": seed, "protocol": "sampled actions, unclipped score, 30 no-op starts, "
                                        "no sticky actions, full games"}
        g = evaluate(model, label, episodes, seed=seed, greedy=True)
        greedy = {"mean": g.mean, "std": g.std, "episodes": g.episodes, "scores": g.scores, "seed": seed,
                  "protocol": "arg-max actions, otherwise as eval"}
        u = evaluate(random_agent(int(meta["num_actions"])), label, episodes, seed=seed)
        rand = {"mean": u.mean, "std": u.std, "episodes": u.episodes, "seed": seed,
                "protocol": "uniform-random actions, otherwise as eval"}
    rid = rom_id(label)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{rid}_curve.png"
    n_eps = _curve(run_dir, png, f"{label}: {meta['agent']} {meta.get('config', {}).get('algo', '')}",
                   max_frames=int(meta["frames"]))
    cfg = meta.get("config", {}) or {}
    init_frames = int(cfg.get("init_frames") or 0)
    extra = {"eval": ev, "eval_greedy": greedy, "eval_random": rand, "fp16_fidelity": fid,
             "init": Path(cfg["init"]).name if cfg.get("init") else None, "init_frames": init_frames,
             "run_frames": int(meta["frames"]), "command": _command(cfg),
             "precision": (meta.get("config", {}).get("hp") or {}).get("precision", "fp32"),
             "algo": meta.get("config", {}).get("algo"), "seed": meta.get("config", {}).get("seed"),
             "source_run": run_dir.resolve().name, "training_episodes": n_eps,
             "shipped_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    target = out_dir / f"{rid}.pt"
    save_atomic(agent_file(model, agent=meta["agent"], game=label,
                           num_actions=int(meta["num_actions"]), frames=init_frames + int(meta["frames"]),
                           fp16=use_fp16, **extra), target)
    write_readme(out_dir)
    info = {k: v for k, v in extra.items() if k != "eval"}
    info.update({"fp16": use_fp16, "file": str(target), "bytes": target.stat().st_size, "agent": meta["agent"],
                 "game": label, "frames": int(meta["frames"]),
                 "eval_mean": ev["mean"] if ev else None, "eval_std": ev["std"] if ev else None})
    return info


_HEADER = """# Shipped teachers

Teachers for A3C-S distillation, loaded with `a3cs_plugin.rl.load_teacher("Pong")` (a frozen
`obs_uint8 -> (logits, value)` module) or `--teacher Pong` on the command line.  Files are
`a3cs-agent` dicts: weights (fp16 when the fp16 copy picks the same actions as fp32 on real
frames, logits within 0.05), plus `game`, `num_actions`, `agent`, `frames` and `eval`.
This file is regenerated by `a3cs teacher ship RUN_DIR --game GAME --force` (e.g.
`a3cs teacher ship runs/pong-ft --game Pong --force` while the Pong run goes on); replacing a
shipped teacher needs `--force`, and `--out DIR` writes the teacher elsewhere.

## Protocol

* Training: `a3cs train --agent nature_cnn --game Pong --frames 10M --seed 1
  --checkpoint-every 100k` (Breakout: the same with `--game Breakout --precision bf16`; PPO, CleanRL /
  Schulman et al. 2017 Atari hyper-parameters: 8 envs x 128 steps, 4 epochs, lr 2.5e-4 annealed,
  clip 0.1), ale-py `AtariVectorEnv`: frame-skip 4 (max-pool), 84x84 grey, 4-frame stack, up to
  30 no-op starts, no sticky actions (classic `NoFrameskip-v4` protocol), rewards clipped and a
  life loss ending the training episode.  Frames are emulator frames (4 per agent step).
* Evaluation: 30 full games, unclipped game score, same preprocessing, actions sampled from the
  policy; `a3cs evaluate --teacher Pong --game Pong --episodes 30 --json` reproduces it.  Each
  teacher is also evaluated with arg-max actions (`--greedy`); both are in its table.
* Continued runs: a run that starts from shipped weights (`a3cs train --init GAME`, a fresh
  optimiser) records it; "training frames" counts the start weights' frames plus the run's.

## Sampled or greedy actions: measured

Sampled actions are the evaluation default, decided on these measurements (30 games each, seed
12345, `a3cs evaluate --teacher GAME --game GAME --episodes 30 --json`, with `--greedy` for the
arg-max column; "distinct" counts the different final scores among the 30 games):

| agent | frames | sampled | greedy | greedy: distinct scores, games cut at 108k frames |
|---|---:|---:|---:|---|
| `pong.pt` (shipped) | 15,994,880 | 16.17 ± 5.94 (10 distinct) | 18.07 ± 3.86 | 2 distinct |
| Pong continuation (run `pong-ft2`, not shipped) | 25,993,216 | 16.73 ± 5.69 (10 distinct) | 18.63 ± 3.12 | 3 distinct, 0 cut |
| Breakout, first teacher (shipped until 2026-12-01) | 7,471,104 | 31.80 ± 10.75 (21 distinct) | 42.27 ± 13.45 | 3 distinct (16, 36, 52), 5 of 30 cut |
| `breakout.pt` (shipped; that teacher + 12.0M frames) | 19,468,288 | 103.80 ± 60.84 (27 distinct) | 191.27 ± 96.87 | 6 distinct (112–344) |
| `qbert.pt` (shipped) | 3,497,984 | 722.50 ± 155.10 (14 distinct) | 713.33 ± 194.48 | 3 distinct (500, 650, 1050), 0 cut |
| `space_invaders.pt` (shipped) | 4,497,408 | 413.67 ± 183.46 (26 distinct) | 494.00 ± 49.13 | 4 distinct (405–540) |

Greedy scores higher on Pong, Breakout and SpaceInvaders (+1.9 on Pong, +10.5 and +87 on the two
Breakout teachers, +80 on SpaceInvaders) and the same on Qbert (−9, well inside one std), and
still is not the default:

* **Greedy play hangs.** 5 of 30 greedy games of the first Breakout teacher never served the ball again after a lost
  life and ran to the 30-minute cap (108,000 frames) at 16 points; a sampled policy always
  presses FIRE eventually.
* **Greedy play is nearly deterministic,** so its 30 games are not 30 samples: up to 30 no-op
  starts leave 2-3 distinct final scores on each game, and its std understates the spread of the
  agent's play.
* **Sampling is the policy that is trained and distilled:** the PPO objective and the
  distillation loss (KL to the teacher's full distribution) both read the sampled policy, and the
  co-search scores its agents with it, so teacher and student are compared under one protocol.

Both numbers stay in every teacher's table.  On Breakout the two protocols fall on either side of
the issue's target of 150: greedy reaches it with 6 distinct games out of 30, sampling does not;
the target is judged under the default (sampled) protocol.

## The two more games: Qbert and SpaceInvaders

The issue leaves two games to us, "learnable on CPU budgets".  Both are chosen for dense,
frequent rewards that PPO's clipped-reward training sees from the first minutes: every cube Q*bert
changes scores 25 points, every invader shot scores 5 to 30, so the training return climbs within
the first million frames, unlike sparse-reward games (Montezuma's Revenge, Pitfall, Private Eye)
that PPO barely leaves on CPU budgets.  Both keep the score scale of the other two (hundreds, not
the hundreds of thousands of Atlantis or VideoPinball).  Neither needs FIRE to start a life, so
greedy play cannot stall there as it does on Breakout (0 of 30 greedy Qbert games cut).

Measured, 30 games each, seed 12345, beside a random agent under the same protocol
(`a3cs evaluate --random --game GAME --episodes 30`); both trained in fp32 on a 2-core AVX2
machine with `--update-threads 2`:

| game | frames | wall | training return (clipped, a life per episode): start → end | teacher (sampled) | random | teacher / random |
|---|---:|---:|---|---:|---:|---:|
| Qbert | 3,497,984 | 70 min (833 frames/s) | 4 → 13 at 0.3M → 21.6 | 722.5 ± 155.1 | 170.0 ± 149.6 | 4.2x |
| SpaceInvaders | 4,497,408 | 89 min (846 frames/s) | 11.0 → 13.5 at 1M → 18.2 at 2M → 21.5 | 413.7 ± 183.5 | 124.7 ± 82.1 | 3.3x |

Both are CPU-budget teachers, sized to finish inside one working session: PPO in the
literature goes on climbing well past 10M frames on both games (the PPO paper reports 14,293 on
Qbert and 943 on SpaceInvaders after 40M frames), and the training return was still rising at
the end of both runs.  `tools/paper_runs.sh`
continues them (`--init Qbert`, 6.5M more frames; `--init SpaceInvaders`, 5.5M more) after the
figures.

## Why Nature-CNN and not ResNet-14

The issue asks for ResNet-14 unless another agent is shown better for the job.  Measured on this
machine (2 CPU cores, torch 2.13 CPU, 1 thread, batch 256): forward + backward costs 1.09 ms per
sample for `nature_cnn` (9.3 M MACs) and 3.20 ms for `resnet14` (35.7 M MACs); the forward alone
0.60 vs 1.01 ms.  PPO spends one forward and four forward+backward passes per sample, so
`nature_cnn` trains about 2.8x more frames per CPU-second, and the teacher's quality here is
bounded by frames, not by capacity (Nature-CNN reaches +20 on Pong in the literature).  The
runs were cut into several sessions (`--resume`) on a machine shared with other jobs; each table
says how many frames a teacher got and in which arithmetic it was trained (`--precision`: fp32,
or bf16 autocast with fp32 master weights, ~1.5x the frames per CPU-second here).

## Teachers
"""


def write_readme(out_dir: str | Path = TEACHER_DIR) -> Path:
    out_dir = Path(out_dir)
    lines = [_HEADER]
    for pt in sorted(out_dir.glob("*.pt")):
        try:
            ck = load_checkpoint(pt)
        except CheckpointError:
            continue
        ev = ck.get("eval") or {}
        score = (f"{ev['mean']:.2f} +- {ev['std']:.2f} over {ev['episodes']} episodes"
                 if ev else "not evaluated")
        lines.append(f"### {ck['game']} (`{pt.name}`)\n")
        lines.append("| field | value |\n|---|---|")
        lines.append(f"| agent | `{ck['agent']}` ({ck.get('algo') or 'ppo'}, seed "
                     f"{ck.get('seed')}) |")
        lines.append(f"| training frames | {ck['frames']:,} |")
        if ck.get("init"):
            lines.append(f"| continued from | `{ck['init']}` ({ck.get('init_frames', 0):,} frames), fresh "
                         f"optimiser, then {ck.get('run_frames', 0):,} frames |")
        if ck.get("command"):
            lines.append(f"| last run | `{ck['command']}` |")
        lines.append(f"| training arithmetic | {ck.get('precision') or 'fp32'} |")
        lines.append(f"| training episodes | {ck.get('training_episodes')} |")
        lines.append(f"| evaluation | {score} |")
        if ev:
            lines.append(f"| scores | {', '.join(f'{s:g}' for s in ev['scores'])} |")
        gr = ck.get("eval_greedy")
        if gr:
            lines.append(f"| evaluation, greedy actions | {gr['mean']:.2f} +- {gr['std']:.2f} over "
                         f"{gr['episodes']} episodes |")
        rd = ck.get("eval_random")
        if rd:
            lines.append(f"| random agent, same protocol | {rd['mean']:.2f} +- {rd['std']:.2f} over "
                         f"{rd['episodes']} episodes |")
        lines.append(f"| weights | {'fp16' if ck.get('fp16') else 'fp32'} "
                     f"({pt.stat().st_size / 1e6:.1f} MB); fp16 check: "
                     f"{json.dumps(ck.get('fp16_fidelity'))} |")
        src = Path(str(ck.get("source_run"))).name   # older teachers recorded a full path
        lines.append(f"| shipped | {ck.get('shipped_at')} from `{src}` |\n")
        png = pt.with_name(f"{pt.stem}_curve.png")
        if png.exists():
            lines.append(f"![training curve]({png.name})\n")
        target = {"Pong": 19, "Breakout": 150}.get(ck["game"])
        if target is not None and ev:
            status = "reached" if ev["mean"] >= target else "NOT reached"
            lines.append(f"Target mean score >= {target}: **{status}** "
                         f"({ev['mean']:.2f} after {ck['frames']:,} frames).\n")
    path = out_dir / "README.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--game", required=True)
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--fp32", action="store_true")
    ap.add_argument("--no-eval", action="store_true")
    ap.add_argument("--out", default=str(TEACHER_DIR))
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args(argv)
    print(json.dumps(ship(a.run_dir, a.game, episodes=a.episodes, fp16=not a.fp32,
                          skip_eval=a.no_eval, out_dir=a.out, force=a.force)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
