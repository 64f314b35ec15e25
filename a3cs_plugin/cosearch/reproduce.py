"""``a3cs reproduce fig1|fig2|fig3``: the A3C-S paper's three figures, one command each.

Every figure is a set of ordinary runs (``a3cs train``, ``a3cs search``, DAS, ``hw net``) in
``OUT/figN/<game>/<run>/``; each run checkpoints and resumes exactly (``--resume``), and a
finished run is read back instead of redone.  The figure is then drawn from the runs:
``OUT/figN.png``, ``OUT/figN.md`` (table, budget, commands) and ``OUT/figN.json``.
``--jobs N`` runs up to N of a figure's independent runs at once, each in its own process
(:mod:`a3cs_plugin.cosearch.jobs`); the evaluations and the baselines' costing stay in this one.

* Fig. 1 -- test score during the training of the zoo agents (Nature-CNN, ResNet-14/20/38/74),
  PPO from scratch, a test score (unclipped, sampled actions) at every checkpoint.
* Fig. 2 -- test score of the derived agent during the search for Direct-NAS (no distillation),
  A3C-S one-level and A3C-S bi-level, at matched frames, mean +- std over seeds.
* Fig. 3 -- score vs FPS: A3C-S pairs over a lambda sweep (Pareto front marked), Nature-CNN
  (the teacher's weights) and ResNet-14 (distilled from the teacher) on DAS-searched
  accelerators, and the same agents on the DNNBuilder-style pipeline and on Eyeriss-like, all at
  the same technology (65 nm, 1 GHz) and area / PE budget.

Budgets: ``tiny`` (the tests: seconds of frames, 1 episode), ``cpu`` (what 2 cores do in a few
hours per game; stated in every table), ``full`` (the paper's scale: 10M frames, 4 games, 3
seeds; for a GPU machine).
"""
from __future__ import annotations

import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

from a3cs_plugin.errors import ConfigError

FIGURES = ("fig1", "fig2", "fig3")
ZOO_AGENTS = ("nature_cnn", "resnet14", "resnet20", "resnet38", "resnet74")

# The search config every figure starts from (the quick example's settings, 14 cells).
_BASE_SEARCH = {
    "mode": "one-level", "algo": "ppo", "seed": 1, "threads": 1,
    "hp": {"num_envs": 8, "num_steps": 64, "num_minibatches": 4, "update_epochs": 4, "lr": 0.00025,
           "precision": "fp32"},
    "hardware": {"template": "eyeriss_like", "cost_model": "surrogate", "metric": "edp", "lambda": 0.5,
                 "area_budget_mm2": 9.62, "recost_evaluations": 3000, "baselines": []},
    "search": {"num_cells": 14, "supernet": "single-path", "arc_lr": 0.01, "warmup_frac": 0.2, "epochs": 8},
    "finetune": {"frames": 0},
    "eval": {"episodes": 30, "teacher": True, "random": True},
}
_TINY_HP = {"num_envs": 2, "num_steps": 64, "num_minibatches": 2, "update_epochs": 1}

BUDGETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "games": ["Pong"],
        "fig1": {"agents": ["nature_cnn", "resnet14"], "frames": 1024, "checkpoints": 2, "episodes": 1,
                 "seeds": [1], "hp": _TINY_HP},
        "fig2": {"frames": 2048, "seeds": [1, 2], "epochs": 2, "episodes": 1, "num_cells": 3, "hp": _TINY_HP},
        "fig3": {"lambdas": [0.1, 2.0], "frames": 2048, "finetune": 512, "episodes": 1, "num_cells": 3,
                 "epochs": 2, "das_steps": 20, "student_frames": 512, "hp": _TINY_HP},
    },
    "cpu": {
        "games": ["Pong", "Breakout"],
        "fig1": {"agents": list(ZOO_AGENTS), "frames": 1_000_000, "checkpoints": 5, "episodes": 10,
                 "seeds": [1], "hp": {"precision": "auto"}},
        # 131k search frames left every scheme at the random agent's score (-20 on Pong, measured):
        # the derived agent needs about 1M frames of distillation to play well (so at 524k the
        # curves show the start of learning, not the teacher's level).  6 cells, not
        # the paper's 14: a 14-cell single-path search trains 217 frames per CPU-second here
        # (random paths of MBConv ops, memory-bound), 6 cells 652 (benchmarks/supernet_cost.py,
        # fp32).  524,288 frames a search (8 epochs of 65,536, the same test points as the first
        # half of a 1M-frame search): two searches side by side train about 290 + 340 frames/s, so
        # the six searches of a game take about 1.5 h and fit one session; 1M frames (2.7 h) did
        # not, and a half-done search is lost when its machine is
        "fig2": {"frames": 524_288, "seeds": [1, 2], "epochs": 8, "episodes": 10, "num_cells": 6, "hp": {}},
        # the outcome benchmark's derived agent reached 0.84 of the teacher's normalized score
        # after 4M fine-tune frames (0.94 after 8M)
        "fig3": {"lambdas": [0.05, 0.5, 2.0], "frames": 262_144, "finetune": 4_194_304, "episodes": 30,
                 "num_cells": 14, "epochs": 8, "das_steps": 400, "student_frames": 1_048_576, "hp": {}},
    },
    "full": {
        "games": ["Pong", "Breakout", "SpaceInvaders", "Qbert"],
        "fig1": {"agents": list(ZOO_AGENTS), "frames": 10_000_000, "checkpoints": 20, "episodes": 30,
                 "seeds": [1, 2, 3], "hp": {}},
        "fig2": {"frames": 4_000_000, "seeds": [1, 2, 3], "epochs": 20, "episodes": 30, "num_cells": 14,
                 "hp": {}},
        "fig3": {"lambdas": [0.02, 0.1, 0.5, 1.0, 2.0, 5.0], "frames": 4_000_000, "finetune": 10_000_000,
                 "episodes": 30, "num_cells": 14, "epochs": 20, "das_steps": 800,
                 "student_frames": 10_000_000, "hp": {}},
    },
}

SCHEMES = {"direct-nas": {"mode": "direct-nas"}, "a3cs-one-level": {"mode": "one-level"},
           "a3cs-bi-level": {"mode": "bi-level"}}
BASELINE_SPECS = ("dnnbuilder_like", "eyeriss_like")


def budget(name: str, games: list[str] | None = None) -> dict[str, Any]:
    if name not in BUDGETS:
        raise ConfigError(f"unknown budget '{name}'", key="--budget", expected="tiny, cpu or full")
    b = copy.deepcopy(BUDGETS[name])
    b["name"] = name
    b["device"] = "auto"
    if games:
        from a3cs_plugin.rl.envs import env_spec
        b["games"] = [env_spec(g).game for g in games]     # unknown game: one-line error now
    return b


def _log_default(s: str) -> None:
    print(s, file=sys.stderr, flush=True)


def _merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _teacher_name(game: str) -> str:
    from a3cs_plugin.rl.teacher import load_teacher
    load_teacher(game)       # a clean error now when the game has no shipped teacher
    return game


# ------------------------------------------------------------------------------------ Fig. 1
def _fig1_cfg(b: dict, game: str, agent: str, seed: int):
    from a3cs_plugin.rl.config import TrainConfig
    f = b["fig1"]
    return TrainConfig(agent=agent, game=game, frames=f["frames"], seed=seed, hp=dict(f["hp"]),
                       checkpoint_every=max(1, f["frames"] // f["checkpoints"]), torch_threads=1,
                       device=b["device"])


def fig1_run(b: dict, game: str, agent: str, seed: int, run: str, *, progress: bool,
             log: Callable[[str], None]) -> None:
    """One Fig. 1 run: ``agent`` trained with PPO on ``game``, a test score at every checkpoint
    (``RUN/curve.jsonl``); resumed, and a point killed before its score was written scored."""
    from a3cs_plugin.rl.checkpoint import load_agent
    from a3cs_plugin.rl.evaluate import evaluate
    from a3cs_plugin.rl.trainer import train
    f = b["fig1"]
    run = Path(run)
    curve_file = run / "curve.jsonl"
    done = {p["frames"] for p in _read_jsonl(curve_file)}
    cfg = _fig1_cfg(b, game, agent, seed)

    def score(frames, model):
        if frames in done:
            return
        r = evaluate(model, game, f["episodes"], seed=10_000 + seed)
        _append_jsonl(curve_file, {"frames": frames, "score": r.mean, "std": r.std, "episodes": r.episodes})
        done.add(frames)

    ckpt = run / "checkpoints" / "last.pt"
    if ckpt.exists():
        model, meta = load_agent(run)
        score(int(meta["frames"]), model)
    if not (ckpt.exists() and _ckpt_frames(ckpt) >= _planned(cfg)):
        log(f"a3cs reproduce fig1: {game} {agent} seed {seed}, {f['frames']:,} frames -> {run}")
        train(cfg, run, resume=ckpt.exists(), progress=progress, log=log, on_checkpoint=score)


def _fig1_dir(out: Path, game: str, agent: str, seed: int) -> Path:
    return out / "fig1" / game / f"{agent}_s{seed}"


def run_fig1(out: Path, b: dict, *, resume: bool, progress: bool, log: Callable[[str], None],
             jobs: int = 1) -> dict:
    """Train each zoo agent on each game with PPO, a test score at every checkpoint."""
    from a3cs_plugin.cosearch.jobs import Task, run_tasks
    f = b["fig1"]
    runs = [(game, agent, seed) for game in b["games"] for agent in f["agents"] for seed in f["seeds"]]
    run_tasks([Task(f"fig1/{g}/{a}_s{s}", f"{__name__}:fig1_run", _fig1_dir(out, g, a, s),
                    {"b": b, "game": g, "agent": a, "seed": s})
               for g, a, s in runs], jobs, progress=progress, log=log)
    curves: dict[str, dict[str, list]] = {}
    for game, agent, seed in runs:
        pts = sorted(_read_jsonl(_fig1_dir(out, game, agent, seed) / "curve.jsonl"), key=lambda p: p["frames"])
        curves.setdefault(game, {}).setdefault(agent, []).append(pts)
    result = {"figure": "fig1", "budget": _budget_note(b, "fig1"), "curves": curves}
    _plot_fig1(out, result)
    rows = ["| game | agent | frames | test score (last point) | episodes |", "|---|---|---:|---:|---:|"]
    for game, per in curves.items():
        for agent, agent_runs in per.items():
            last = [r[-1] for r in agent_runs if r]
            if last:
                m = sum(p["score"] for p in last) / len(last)
                rows.append(f"| {game} | {agent} | {int(last[0]['frames']):,} | {m:.2f} ± {last[0]['std']:.2f} | "
                            f"{last[0]['episodes']} |")
    _write(out, "fig1", result, "Fig. 1: test score during the training of the zoo agents", rows, b)
    return result


def _planned(cfg) -> int:
    per = cfg.algo_config().batch_size * 4
    return max(1, cfg.frames // per) * per


def _ckpt_frames(path: Path) -> int:
    import torch
    return int(torch.load(path, map_location="cpu", weights_only=True).get("frames", 0))


# ------------------------------------------------------------------------------------ Fig. 2
def _search_cfg(b: dict, fig: str, game: str, **over: Any):
    from a3cs_plugin.cosearch.config import parse_config
    f = b[fig]
    doc = _merge(_BASE_SEARCH, {"game": game, "teacher": _teacher_name(game), "frames": f["frames"],
                                "hp": f["hp"], "search": {"num_cells": f["num_cells"], "epochs": f["epochs"]},
                                "eval": {"episodes": f["episodes"]}, "device": b["device"]})
    if b["name"] == "tiny":
        doc["search"]["arc_lr"] = 0.05
        doc["hardware"]["recost_evaluations"] = 300
    return parse_config(_merge(doc, over), f"reproduce {fig} ({b['name']} budget)")


def _search(cfg, run: Path, *, log, finetune: bool = True, recost: bool = True, scores: bool = True,
            progress: bool = False) -> dict:
    from a3cs_plugin.cosearch.driver import run_search
    if (run / "report.json").is_file():
        return json.loads((run / "report.json").read_text())
    resume = (run / "config.yaml").is_file()
    return run_search(cfg, run, resume=resume, recost=recost, evaluate_scores=scores, finetune=finetune,
                      progress=progress or None, log=log)   # None: a bar on a terminal, else lines


def _fig2_dir(out: Path, game: str, scheme: str, seed: int) -> Path:
    return out / "fig2" / game / f"{scheme}_s{seed}"


def fig2_run(b: dict, game: str, scheme: str, seed: int, run: str, *, progress: bool,
             log: Callable[[str], None]) -> None:
    """One Fig. 2 run: the ``scheme`` search on ``game`` with ``seed``, the derived agent's test
    score at every epoch (``RUN/history.json``); no fine-tune, re-costing or final scores."""
    f = b["fig2"]
    cfg = _search_cfg(b, "fig2", game, seed=seed, search={"score_episodes": f["episodes"]},
                      eval={"teacher": False, "random": False}, **SCHEMES[scheme])
    log(f"a3cs reproduce fig2: {game} {scheme} seed {seed}, {cfg.plan()['frames']:,} frames -> {run}")
    _search(cfg, Path(run), log=log, finetune=False, recost=False, scores=False, progress=progress)


def run_fig2(out: Path, b: dict, *, resume: bool, progress: bool, log: Callable[[str], None],
             jobs: int = 1) -> dict:
    """Direct-NAS vs A3C-S one-level vs bi-level: the derived agent's test score per search epoch."""
    from a3cs_plugin.cosearch.jobs import Task, run_tasks
    f = b["fig2"]
    runs = [(game, scheme, seed) for game in b["games"] for scheme in SCHEMES for seed in f["seeds"]]
    run_tasks([Task(f"fig2/{g}/{sc}_s{s}", f"{__name__}:fig2_run", _fig2_dir(out, g, sc, s),
                    {"b": b, "game": g, "scheme": sc, "seed": s})
               for g, sc, s in runs], jobs, progress=progress, log=log)
    curves: dict[str, dict[str, list]] = {}
    for game, scheme, seed in runs:
        hist = json.loads((_fig2_dir(out, game, scheme, seed) / "history.json").read_text())
        pts = [{"frames": h["frames"], "score": h["test_score"], "std": h["test_score_std"]}
               for h in hist if "test_score" in h]
        curves.setdefault(game, {}).setdefault(scheme, []).append(pts)
    refs = {game: _references(game, f["episodes"], out / "fig2" / game / "scores.json") for game in b["games"]}
    result = {"figure": "fig2", "budget": _budget_note(b, "fig2"), "curves": curves, "references": refs}
    _plot_fig2(out, result)
    rows = ["| game | scheme | frames | final test score (mean ± std over seeds) | seeds |", "|---|---|---:|---:|---:|"]
    for game, per in curves.items():
        for scheme, scheme_runs in per.items():
            finals = [r[-1]["score"] for r in scheme_runs if r]
            if finals:
                m, s = _mean_std(finals)
                rows.append(f"| {game} | {scheme} | {int(scheme_runs[0][-1]['frames']):,} | {m:.2f} ± {s:.2f} | "
                            f"{len(finals)} |")
        r = refs[game]
        rows.append(f"| {game} | teacher / random | | {r['teacher']:.2f} / {r['random']:.2f} | |")
    _write(out, "fig2", result, "Fig. 2: test score during the search, three schemes", rows, b)
    return result


def _references(game: str, episodes: int, cache: Path) -> dict[str, float]:
    """Teacher and uniform-random scores under the figure's protocol (kept in ``cache``)."""
    from a3cs_plugin.rl.envs import env_spec
    from a3cs_plugin.rl.evaluate import evaluate, random_agent
    from a3cs_plugin.rl.teacher import load_teacher, teacher_path
    t = _scored(cache, f"teacher {game}", teacher_path(_teacher_name(game)), episodes,
                lambda: evaluate(load_teacher(game), game, episodes, seed=20_000))
    r = _scored(cache, f"random {game}", None, episodes,
                lambda: evaluate(random_agent(env_spec(game).num_actions), game, episodes, seed=20_000))
    return {"teacher": t[0], "teacher_std": t[1], "random": r[0], "random_std": r[1], "episodes": episodes}


# ------------------------------------------------------------------------------------ Fig. 3
def _fig3_pair_cfg(b: dict, game: str, lam: float):
    return _search_cfg(b, "fig3", game, hardware={"lambda": lam}, finetune={"frames": b["fig3"]["finetune"]},
                       eval={"teacher": False, "random": False})


def _fig3_student_cfg(b: dict, game: str):
    from a3cs_plugin.rl.config import DistillConfig, TrainConfig
    f = b["fig3"]
    return TrainConfig(agent="resnet14", game=game, frames=f["student_frames"], seed=1, hp=dict(f["hp"]),
                       distill=DistillConfig(actor=1.0, critic=0.5), teacher=_teacher_name(game),
                       checkpoint_every=max(1, f["student_frames"] // 4), torch_threads=1, device=b["device"])


def _fig3_das_cfg(b: dict, game: str, src: str):
    return _search_cfg(b, "fig3", game, agent=src, search={"das_steps": b["fig3"]["das_steps"]},
                       eval={"teacher": False, "random": False})


def fig3_pair(b: dict, game: str, lam: float, run: str, *, progress: bool, log: Callable[[str], None]) -> None:
    """One A3C-S pair of Fig. 3: the co-search at ``lam``, its fine-tune, re-costing and scores."""
    log(f"a3cs reproduce fig3: {game} A3C-S lambda {lam:g} -> {run}")
    _search(_fig3_pair_cfg(b, game, lam), Path(run), log=log, progress=progress)


def fig3_student(b: dict, game: str, run: str, *, progress: bool, log: Callable[[str], None]) -> None:
    """ResNet-14 distilled from the teacher (Fig. 3's second fixed agent)."""
    from a3cs_plugin.rl.trainer import train
    scfg = _fig3_student_cfg(b, game)
    ck = Path(run) / "checkpoints" / "last.pt"
    if not (ck.exists() and _ckpt_frames(ck) >= _planned(scfg)):
        log(f"a3cs reproduce fig3: {game} ResNet-14 distilled from the teacher, "
            f"{b['fig3']['student_frames']:,} frames -> {run}")
        train(scfg, Path(run), resume=ck.exists(), progress=progress, log=log)


def fig3_das(b: dict, game: str, name: str, src: str, run: str, *, progress: bool,
             log: Callable[[str], None]) -> None:
    """The hardware-only search (DAS) for the fixed agent ``src`` (``teacher`` or a checkpoint)."""
    log(f"a3cs reproduce fig3: {game} DAS for {name} -> {run}")
    _search(_fig3_das_cfg(b, game, src), Path(run), log=log, scores=False, progress=progress)


def run_fig3(out: Path, b: dict, *, resume: bool, progress: bool, log: Callable[[str], None],
             jobs: int = 1) -> dict:
    """Score vs FPS: A3C-S pairs (lambda sweep), DAS for fixed agents, hand-designed baselines."""
    from a3cs_plugin.cosearch.jobs import Task, run_tasks
    from a3cs_plugin.hardware.dnn_cost import evaluate_network
    from a3cs_plugin.hardware.pipeline import evaluate_pipeline, load_pipeline
    from a3cs_plugin.paths import arch_spec
    from a3cs_plugin.rl.checkpoint import load_agent
    from a3cs_plugin.rl.evaluate import evaluate
    from a3cs_plugin.rl.teacher import load_teacher, teacher_path

    f = b["fig3"]
    me = __name__
    pair_dir = {(g, lam): out / "fig3" / g / f"a3cs_lambda{lam:g}" for g in b["games"] for lam in f["lambdas"]}
    student_dir = {g: out / "fig3" / g / "resnet14_student" for g in b["games"]}
    # the lambda sweep and the ResNet-14 students first (independent), then the DAS runs (the
    # student's DAS needs its weights)
    stage = [Task(f"fig3/{g}/a3cs_lambda{lam:g}", f"{me}:fig3_pair", d, {"b": b, "game": g, "lam": lam})
             for (g, lam), d in pair_dir.items()]
    stage += [Task(f"fig3/{g}/resnet14_student", f"{me}:fig3_student", d, {"b": b, "game": g})
              for g, d in student_dir.items()]
    run_tasks(stage, jobs, progress=progress, log=log)
    das_src = {g: {"nature_cnn": "teacher", "resnet14": str(student_dir[g] / "checkpoints" / "last.pt")}
               for g in b["games"]}
    run_tasks([Task(f"fig3/{g}/das_{name}", f"{me}:fig3_das", out / "fig3" / g / f"das_{name}",
                    {"b": b, "game": g, "name": name, "src": src})
               for g in b["games"] for name, src in das_src[g].items()], jobs, progress=progress, log=log)
    points: dict[str, list[dict]] = {}
    for game in b["games"]:
        pts: list[dict] = []
        base = out / "fig3" / game
        for lam in f["lambdas"]:
            run = pair_dir[(game, lam)]
            rep = _search(_fig3_pair_cfg(b, game, lam), run, log=log, progress=progress)   # read back
            d = rep["derived"]
            acc = rep.get("accelerator") or {}
            pts.append({"kind": "A3C-S", "label": f"A3C-S λ={lam:g}", "agent": "searched", "score": d["score"],
                        "std": d["score_std"], "fps": d["fps"], "energy_mJ": d.get("energy_mJ"),
                        "area_mm2": d.get("area_mm2"), "accelerator": "searched",
                        "pes": (int(acc["pe_x"]) * int(acc["pe_y"])) if "pe_x" in acc and "pe_y" in acc else None,
                        "run": str(run.relative_to(out))})
        # the fixed agents: Nature-CNN = the teacher's weights; ResNet-14 distilled from the teacher
        ck = student_dir[game] / "checkpoints" / "last.pt"
        agents = {"nature_cnn": load_teacher(game), "resnet14": load_agent(student_dir[game])[0]}
        files = {"nature_cnn": teacher_path(_teacher_name(game)), "resnet14": ck}
        # zoo agents trained by fig1 in the same --out: on the hand-designed baselines too
        zoo = {}
        for name in ZOO_AGENTS:
            run1 = out / "fig1" / game / f"{name}_s1"
            if (run1 / "checkpoints" / "last.pt").is_file():
                zoo[f"{name} (fig1 PPO)"] = load_agent(run1)[0]
                files[f"{name} (fig1 PPO)"] = run1 / "checkpoints" / "last.pt"
        ev = {}
        for name, model in [*agents.items(), *zoo.items()]:
            ev[name] = _scored(base / "scores.json", name, files[name], f["episodes"],
                               lambda m=model: evaluate(m, game, f["episodes"], seed=30_000))
        def on_baselines(name, model):
            """``name`` (scored ``ev[name]``) costed on each hand-designed baseline."""
            probs = _problems(model)
            for spec in BASELINE_SPECS:
                res = evaluate_network([arch_spec(spec)], probs, metric="edp", time_limit=1.0,
                                       max_evaluations=300 if b["name"] == "tiny" else 3000,
                                       cache=base / "baseline_cache.json")
                pts.append({"kind": spec, "label": f"{name} on {spec}", "agent": name, "score": ev[name][0],
                            "std": ev[name][1], "fps": res.fps, "energy_mJ": res.energy_pJ * 1e-9,
                            "area_mm2": (res.area_um2 / 1e6) if res.area_um2 else None, "accelerator": spec})

        for name, model in zoo.items():
            on_baselines(name, model)
        # DNNBuilder-like with the PE count of each searched accelerator (the spec's own budget is
        # eyeriss_like's 168 PEs): the teacher's FPS there, for a same-PE reading of the claim
        teacher_probs = _problems(agents["nature_cnn"])
        same_pe: dict[int, float] = {}
        for p in pts:
            n = p.get("pes") if p["kind"] == "A3C-S" else None
            if n:
                if n not in same_pe:
                    cfg = load_pipeline(arch_spec("dnnbuilder_like"), pe_budget=n)
                    same_pe[n] = evaluate_pipeline(cfg, teacher_probs, metric="edp", time_limit=1.0,
                                                   max_evaluations=300 if b["name"] == "tiny" else 3000).fps
                p["teacher_fps_dnnbuilder_same_pes"] = same_pe[n]
        for name, model in agents.items():
            run = base / f"das_{name}"
            rep = _search(_fig3_das_cfg(b, game, das_src[game][name]), run, log=log, scores=False)   # read back
            d = rep["derived"]
            pts.append({"kind": "DAS", "label": f"{name} on DAS accelerator", "agent": name, "score": ev[name][0],
                        "std": ev[name][1], "fps": d["fps"], "energy_mJ": d.get("energy_mJ"),
                        "area_mm2": d.get("area_mm2"), "accelerator": "DAS"})
            on_baselines(name, model)
        _mark_pareto(pts)
        points[game] = pts
    teacher_fps = {g: _teacher_on_dnnbuilder(ps)["fps"] for g, ps in points.items()}
    result = {"figure": "fig3", "budget": _budget_note(b, "fig3"), "points": points,
              "hardware_budget": "65 nm, 1 GHz, area <= 9.62 mm^2 (searched: template budget); "
                                 "DNNBuilder-like: 168 MACs, 128 KiB on-chip; Eyeriss-like: 14x12 PEs, 9.62 mm^2",
              "teacher_fps_on_dnnbuilder": teacher_fps}
    _plot_fig3(out, result)
    rows = ["| game | point | score | FPS | × teacher FPS on DNNBuilder | energy (mJ) | area (mm²) | Pareto |",
            "|---|---|---:|---:|---:|---:|---:|:---:|"]
    for game, ps in points.items():
        for p in sorted(ps, key=lambda p: -p["fps"]):
            rows.append(f"| {game} | {p['label']} | {p['score']:.2f} ± {p['std']:.2f} | {p['fps']:,.0f} | "
                        f"{p['fps'] / teacher_fps[game]:.2f} | {_f(p.get('energy_mJ'), 4)} | "
                        f"{_f(p.get('area_mm2'), 2)} | {'★' if p.get('pareto') else ''} |")
    rows += ["", f"Hardware: {result['hardware_budget']}.", "", "## The paper's claim", ""]
    result["claim"] = {}
    for game, ps in points.items():
        c = result["claim"][game] = _claim(ps, teacher_fps[game])
        rows.append(f"- {game}: {c['text']}")
    _write(out, "fig3", result, "Fig. 3: test score vs FPS", rows, b)
    return result


def _problems(model) -> list:
    """The Timeloop layer problems of an agent (one 84x84x4 frame)."""
    import torch

    from a3cs_plugin.hardware.workload import problems_from_module
    return problems_from_module(model, torch.zeros((1, 4, 84, 84), dtype=torch.uint8), prefix="agent")


def _teacher_on_dnnbuilder(pts: list[dict]) -> dict | None:
    """The point of the teacher (Nature-CNN) on the DNNBuilder-like baseline: the claim's reference."""
    return next((p for p in pts if p["kind"] == "dnnbuilder_like" and p["agent"] == "nature_cnn"), None)


def _claim(pts: list[dict], teacher_fps: float, fps_goal: float = 3.0) -> dict:
    """The Fig. 3 acceptance for one game: the fastest A3C-S pair that plays at the teacher's
    level (score >= the teacher's mean minus its std over the same episodes), and its FPS against
    the teacher on the DNNBuilder-like baseline (goal >= ``fps_goal`` x)."""
    t = _teacher_on_dnnbuilder(pts)
    floor = t["score"] - t["std"]
    pairs = [p for p in pts if p["kind"] == "A3C-S"]
    ok = [p for p in pairs if p["score"] >= floor]
    if ok:
        best = max(ok, key=lambda p: (p["fps"], p["score"]))     # equal FPS: the better player
        ratio = best["fps"] / teacher_fps
        met = ratio >= fps_goal
        text = (f"{best['label']} scores {best['score']:.2f} ± {best['std']:.2f} (teacher {t['score']:.2f} ± "
                f"{t['std']:.2f}: within one std) at {ratio:.2f}× the teacher's FPS on DNNBuilder-like "
                f"(goal ≥ {fps_goal:g}×): **{'met' if met else 'not met'}**")
    else:
        best = max(pairs, key=lambda p: p["score"]) if pairs else None
        ratio, met = (best["fps"] / teacher_fps if best else None), False
        text = ("no A3C-S pair within one std of the teacher "
                f"({t['score']:.2f} ± {t['std']:.2f}, floor {floor:.2f})"
                + (f"; the best, {best['label']}, scores {best['score']:.2f} ± {best['std']:.2f} at "
                   f"{ratio:.2f}× the teacher's FPS on DNNBuilder-like" if best else "") + ": **not met**")
    same = None
    if best and best.get("teacher_fps_dnnbuilder_same_pes"):
        same = best["fps"] / best["teacher_fps_dnnbuilder_same_pes"]
        text += (f"; against DNNBuilder-like given that pair's own {best['pes']} PEs (teacher "
                 f"{best['teacher_fps_dnnbuilder_same_pes']:,.0f} FPS there): {same:.2f}×")
    return {"met": met, "pair": best["label"] if best else None, "fps_ratio": ratio, "fps_ratio_same_pes": same,
            "teacher": [t["score"], t["std"]], "text": text}


def _scored(cache: Path, name: str, weights: Path | None, episodes: int, run: Callable) -> tuple[float, float]:
    """``(mean, std)`` of ``run()`` (an evaluation), kept in ``cache`` under the agent's name,
    weight file (path, size, mtime; ``None`` for the random agent) and episode count, so a
    resumed or re-drawn figure does not replay the games of unchanged agents; changed weights
    are scored again."""
    key = f"{name}|{episodes}"
    if weights is not None:
        st = Path(weights).stat()
        key += f"|{Path(weights).resolve()}|{st.st_size}|{st.st_mtime_ns}"
    done = json.loads(cache.read_text()) if cache.is_file() else {}
    if key not in done:
        r = run()
        done[key] = [r.mean, r.std]
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(done, indent=1))
        tmp.replace(cache)
    return tuple(done[key])


def _mark_pareto(pts: list[dict]) -> None:
    """A point is on the front when no other point has >= score and >= FPS with one strictly better."""
    for p in pts:
        p["pareto"] = not any((q["score"] >= p["score"] and q["fps"] >= p["fps"]) and
                              (q["score"] > p["score"] or q["fps"] > p["fps"]) for q in pts)


# ------------------------------------------------------------------------------------ output
def _budget_note(b: dict, fig: str) -> dict:
    return {"name": b["name"], "games": b["games"], **b[fig]}


def _f(v, nd: int) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def _mean_std(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / len(xs))


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:      # a line cut by a kill
            continue
    return out


def _append_jsonl(path: Path, rec: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(rec) + "\n")


def _write(out: Path, fig: str, result: dict, title: str, rows: list[str], b: dict) -> None:
    result["command"] = f"a3cs reproduce {fig} --budget {b['name']} --games {' '.join(b['games'])} --out OUT"
    (out / f"{fig}.json").write_text(json.dumps(result, indent=1, default=str))
    note = _budget_note(b, fig)
    md = [f"# {title}", "", f"Budget `{b['name']}`: " + ", ".join(f"{k} {v}" for k, v in note.items() if k != "name")
          + ".", "", "Scores: unclipped game score, sampled actions, mean ± std over the stated episodes; "
          "frames are emulator frames.", "", *rows, "", f"![{fig}]({fig}.png)", "",
          f"Made by `{result['command']}`.", ""]
    (out / f"{fig}.md").write_text("\n".join(md))


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _plot_curves(out: Path, result: dict, fig_name: str, *, xlabel: str, ylabel: str, title: str) -> None:
    """One panel per game, one line per agent / scheme: mean over its runs (seeds) with a +- std
    band; the teacher and random references as horizontal lines when the result has them."""
    plt = _plt()
    games = list(result["curves"])
    fig, axes = plt.subplots(1, len(games), figsize=(5 * len(games), 3.8), squeeze=False)
    for ax, game in zip(axes[0], games):
        for name, runs in result["curves"][game].items():
            runs = [r for r in runs if r]
            if not runs:
                continue
            n = min(len(r) for r in runs)
            xs = [runs[0][i]["frames"] for i in range(n)]
            stats = [_mean_std([r[i]["score"] for r in runs]) for i in range(n)]
            m, sd = [st[0] for st in stats], [st[1] for st in stats]
            ax.plot(xs, m, marker="o", label=f"{name} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
            if len(runs) > 1:
                ax.fill_between(xs, [a - c for a, c in zip(m, sd)], [a + c for a, c in zip(m, sd)], alpha=0.2)
        ref = result.get("references", {}).get(game)
        if ref:
            ax.axhline(ref["teacher"], color="k", ls="--", lw=1, label="teacher")
            ax.axhline(ref["random"], color="gray", ls=":", lw=1, label="random")
        ax.set_title(game)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{title} ({result['budget']['name']} budget)")
    fig.tight_layout()
    fig.savefig(out / f"{fig_name}.png", dpi=120)
    plt.close(fig)


def _plot_fig1(out: Path, result: dict) -> None:
    _plot_curves(out, result, "fig1", xlabel="emulator frames", ylabel="test score",
                 title="Fig. 1: training the zoo agents with PPO")


def _plot_fig2(out: Path, result: dict) -> None:
    _plot_curves(out, result, "fig2", xlabel="emulator frames of the search",
                 ylabel="test score (mean ± std over seeds)", title="Fig. 2: Direct-NAS vs A3C-S one-/bi-level")


_MARKERS = {"A3C-S": ("*", "tab:red"), "DAS": ("s", "tab:blue"), "dnnbuilder_like": ("^", "tab:green"),
            "eyeriss_like": ("o", "tab:gray")}


def _plot_fig3(out: Path, result: dict) -> None:
    plt = _plt()
    games = list(result["points"])
    fig, axes = plt.subplots(1, len(games), figsize=(5.5 * len(games), 4.2), squeeze=False)
    for ax, game in zip(axes[0], games):
        pts = result["points"][game]
        for kind, (mk, col) in _MARKERS.items():
            sel = [p for p in pts if p["kind"] == kind]
            if sel:
                ax.errorbar([p["fps"] for p in sel], [p["score"] for p in sel], yerr=[p["std"] for p in sel],
                            fmt=mk, color=col, ms=9 if mk == "*" else 6, capsize=2, label=kind, ls="none")
                for p in sel:
                    ax.annotate(p["agent"] if kind != "A3C-S" else p["label"].split()[-1], (p["fps"], p["score"]),
                                fontsize=6, xytext=(3, 3), textcoords="offset points")
        front = sorted([p for p in pts if p.get("pareto")], key=lambda p: p["fps"])
        if front:
            ax.plot([p["fps"] for p in front], [p["score"] for p in front], "k--", lw=0.8, label="Pareto front")
        # the claim's region: at least the teacher's score minus its std, at >= 3x its FPS on DNNBuilder
        t = _teacher_on_dnnbuilder(pts)
        if t is not None:
            ax.axhspan(t["score"] - t["std"], t["score"] + t["std"], color="0.5", alpha=0.12, lw=0,
                       label="teacher ± std")
            ax.axvline(3 * t["fps"], color="0.4", ls=":", lw=0.9, label="3× teacher FPS (DNNBuilder)")
        ax.set_xscale("log")
        from matplotlib.ticker import NullFormatter
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("FPS (log)")
        ax.set_ylabel("test score")
        ax.set_title(game)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(f"Fig. 3 ({result['budget']['name']} budget): score vs FPS")
    import textwrap
    lines = textwrap.wrap(result["hardware_budget"], int(15 * 5.5 * len(games)))
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=7, va="bottom")
    fig.tight_layout(rect=(0, 0.025 * (len(lines) + 1), 1, 1))
    fig.savefig(out / "fig3.png", dpi=120)
    plt.close(fig)


RUNNERS = {"fig1": run_fig1, "fig2": run_fig2, "fig3": run_fig3}


def reproduce(figure: str, out: str | Path, *, budget_name: str = "cpu", games: list[str] | None = None,
              resume: bool = False, progress: bool | None = None, device: str = "auto", jobs: int = 1,
              log: Callable[[str], None] | None = None) -> dict:
    """Run (or resume) what ``figure`` needs into ``out`` and draw it (``device``: auto, cpu,
    cuda[:N] for every training, search and evaluation; ``jobs``: independent runs at once, each
    in its own process with its log in its run directory, 0 = one per CPU core on a CPU, see
    :mod:`a3cs_plugin.cosearch.jobs`)."""
    from a3cs_plugin.cosearch.jobs import default_jobs
    from a3cs_plugin.rl.device import resolve_device
    if figure not in RUNNERS:
        raise ConfigError(f"unknown figure '{figure}'", key="figure", expected="fig1, fig2 or fig3")
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 0:
        raise ConfigError("--jobs must be a whole number >= 0", key="--jobs",
                          expected="0 (one per CPU core) or the number of runs at once", got=jobs)
    b = budget(budget_name, games)
    resolve_device(device, key="--device")      # a bad or absent device: one line, before any work
    b["device"] = str(device)
    jobs = jobs or default_jobs(b["device"])
    for g in b["games"]:
        _teacher_name(g)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out is a file", file=str(out), expected="a directory")
    state = out / f"{figure}.budget.json"
    if state.is_file():
        before = json.loads(state.read_text())
        if not resume:
            raise ConfigError(f"{out} already holds a {figure} run", file=str(out),
                              expected="--resume to continue it, or a new --out")
        if before.get("budget") != b["name"]:
            raise ConfigError(f"--resume with another budget (the runs in --out are '{before.get('budget')}')",
                              file=str(state), expected="the budget of the interrupted run, or a new --out")
    elif resume and not out.is_dir():
        raise ConfigError("--resume but there is no run", file=str(out), expected="an existing reproduce --out")
    out.mkdir(parents=True, exist_ok=True)
    # the figure covers every game run in --out: --games adds games (earlier ones come first and
    # are read back from their finished runs)
    games_so_far = json.loads(state.read_text()).get("games", []) if state.is_file() else []
    b["games"] = games_so_far + [g for g in b["games"] if g not in games_so_far]
    state.write_text(json.dumps({"budget": b["name"], "games": b["games"]}))
    show = sys.stderr.isatty() if progress is None else bool(progress)
    t0 = time.time()
    result = RUNNERS[figure](out, b, resume=resume, progress=show, log=log or _log_default, jobs=jobs)
    (log or _log_default)(f"a3cs reproduce {figure}: {out / (figure + '.png')}, {out / (figure + '.md')} "
                          f"({time.time() - t0:.0f} s in this segment, {jobs} run{'s' if jobs > 1 else ''} at once)")
    return result


__all__ = ["BUDGETS", "FIGURES", "reproduce", "budget"]
