"""DAS: the accelerator search alone, for a fixed agent (the "DAS" of the A3C-S paper's Fig. 3).

``a3cs search`` with ``agent:`` set (a zoo name, ``teacher``, an ``arch.json`` or an agent /
checkpoint file) searches only beta: the same accelerator choice, hard straight-through Gumbel
samples, normalised hardware objective and area-budget term as the co-search
(:mod:`a3cs_plugin.strategy.accelerator`), for the agent's own layers, with Adam over
``search.das_steps`` steps and the temperature annealed ``tau_init -> tau_min``.  The result is
derived, projected into the area budget, rendered as ``accelerator.yaml``, re-costed with the
mapper (and on ``hardware.baselines``) and, when the agent has trained weights, scored with the
report's protocol.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from a3cs_plugin.errors import ConfigError


def resolve_agent(cfg, num_actions: int):
    """``(module, label, trained)`` for ``cfg.agent``."""
    from a3cs_plugin.agents.zoo import ZOO, build_agent
    name = str(cfg.agent)
    if name == "teacher":
        if not cfg.teacher:
            raise ConfigError("agent: teacher needs a teacher", key="teacher", expected="a shipped name or a file")
        from a3cs_plugin.rl.teacher import load_teacher
        return load_teacher(cfg.teacher, game=cfg.game, num_actions=num_actions), f"teacher ({cfg.teacher})", True
    if name.replace("-", "").lower() in {z.replace("_", "") for z in ZOO} | set(ZOO):
        torch.manual_seed(cfg.seed)
        return build_agent(name, num_actions), name, False
    path = Path(name)
    if path.suffix == ".json":
        from a3cs_plugin.agents.arch import load_arch
        from a3cs_plugin.agents.space import AgentSpace
        arch = load_arch(path)
        space = AgentSpace(num_actions, num_cells=len(arch))
        return space.freeze(space.validate(arch, file=str(path))), f"searched agent {path.name}", False
    if path.exists():
        from a3cs_plugin.rl.checkpoint import load_agent
        model, meta = load_agent(path, game=cfg.game, num_actions=num_actions)
        return model, f"{meta.get('agent')} ({path.name})", True
    raise ConfigError(f"unknown agent '{name}'", key="agent",
                      expected=f"a zoo agent ({', '.join(ZOO)}), 'teacher', an arch.json or an agent file")


def run_das(cfg, out_dir: str | Path, *, recost: bool = True, evaluate_scores: bool = True,
            log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Search the accelerator for ``cfg.agent``; writes the run directory, returns the report."""
    from a3cs_plugin.hardware.workload import problems_from_module
    from a3cs_plugin.rl.envs import env_spec
    from a3cs_plugin.strategy import registry
    from a3cs_plugin.strategy.accelerator import AcceleratorChoice, hardware_terms, uniform_baseline
    from a3cs_plugin.cost.base import NetworkCost
    from a3cs_plugin.strategy.derive import mapper_metric, project_to_budget
    from a3cs_plugin.strategy.derive import recost as recost_fn
    from a3cs_plugin.cosearch.driver import (check_cost_model, check_fps_target, check_hardware,
                                             normalized_score, surrogate_file)

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    out = Path(out_dir)
    t0 = time.time()
    spec = env_spec(cfg.game)
    model, label, trained = resolve_agent(cfg, spec.num_actions)
    cm = registry.cost_model(cfg.hardware.cost_model, cfg.hardware.template, **cfg.hardware.cost_model_options)
    check_cost_model(cm)
    fixed = check_hardware(cfg, cm)
    design = cm.design_space()
    if design is None:
        raise ConfigError("DAS needs a cost model with a design space", key="hardware.cost_model")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(cfg.to_yaml())
    problems = problems_from_module(model, torch.zeros((1, 4, 84, 84), dtype=torch.uint8), prefix="agent")
    nc = NetworkCost(cm, {}, problems)
    check_fps_target(cfg, cm, nc, fixed)
    baseline = uniform_baseline(nc, cfg.hardware.metric)
    accel = AcceleratorChoice(cm, fixed)
    torch.manual_seed(cfg.seed)
    opt = torch.optim.Adam(accel.beta.parameters(), lr=cfg.search.beta_lr or 0.05, betas=(0.5, 0.999))
    steps = cfg.search.das_steps
    history = []
    log(f"a3cs search: DAS for {label} on {cfg.hardware.template}, {steps} steps, metric {cfg.hardware.metric}")
    for step in range(steps):
        frac = step / max(1, steps - 1)
        tau = cfg.search.tau_init * (cfg.search.tau_min / cfg.search.tau_init) ** frac
        cost, area_term, details = hardware_terms(
            nc, cfg.hardware.metric, baseline, {}, lambda: accel.probs(sample=True, tau=tau),
            cfg.search.beta_samples, area_budget_mm2=cfg.hardware.area_budget_mm2)
        opt.zero_grad()
        (cost + area_term).backward()
        opt.step()
        if step % max(1, steps // 50) == 0 or step == steps - 1:
            history.append({"step": step + 1, "tau": tau, "alpha": {}, "beta": accel.export_probs(), **details})
    (out / "history.json").write_text(json.dumps(history, indent=1))
    point, projected = project_to_budget(design, accel.export_probs(), cfg.hardware.area_budget_mm2)
    design.write(point, out / "accelerator.yaml")
    with torch.no_grad():
        from a3cs_plugin.cost.base import one_hot_probs
        hard = one_hot_probs(cm, point)
        e, c = nc.expected({}, hard)
        lat = float(c) * float(cm.cycle_seconds(hard))
    derived: dict[str, Any] = {"surrogate": {"energy_pJ": float(e), "cycles": float(c),
                                             "fps": 1.0 / lat if lat > 0 else math.inf}}
    area = float(design.area(point))
    baselines = {}
    if recost:
        kw = dict(metric=mapper_metric(cfg.hardware.recost_metric), time_limit=cfg.hardware.recost_time_limit,
                  max_evaluations=cfg.hardware.recost_evaluations, cache=out / "cost_cache.json")
        log("a3cs search: re-costing the agent on the searched accelerator with the mapper")
        derived.update(recost_fn(out / "accelerator.yaml", problems, out_dir=out, area_mm2=area,
                                 mapping_prefix="agent_", **kw))
        from a3cs_plugin.paths import arch_spec
        for name in cfg.hardware.baselines or []:
            baselines[name] = {"spec": name, "derived": recost_fn(arch_spec(name), problems, **kw)}
    else:
        derived["area_mm2"] = area
    random_r = teacher_r = None
    if evaluate_scores and trained:
        from a3cs_plugin.cosearch.driver import score_agents
        scores = score_agents(cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"teacher": False})}),
                              model, None, log=log)
        derived.update(scores["derived"])
        random_r = scores.get("random")
    for k in ("score", "score_std", "episodes", "fps", "energy_mJ", "latency_ms", "area_mm2"):
        derived.setdefault(k, None)
    derived["random_score"] = (random_r or {}).get("score")
    derived["normalized_score"] = normalized_score(derived.get("score"), None, derived["random_score"])
    report = {"game": cfg.game, "mode": "das", "scheme": "das", "distill": False, "agent": label,
              "template": cfg.hardware.template, "metric": cfg.hardware.metric,
              "cost_model": cfg.hardware.cost_model, "surrogate": surrogate_file(cm),
              "fixed": fixed,
              "area_budget_mm2": cfg.hardware.area_budget_mm2, "arch": {}, "accelerator": point,
              "area_projected": projected, "recosted": recost, "derived": derived, "teacher": teacher_r,
              "random": random_r, "baselines": baselines,
              "eval": {"episodes": cfg.eval.episodes, "greedy": cfg.eval.greedy, "seed": cfg.seed + 1000},
              "finetune": None, "search": {"updates": steps, "warmup_updates": 0, "frames": 0,
                                           "wall_s": time.time() - t0}}
    from a3cs_plugin.cosearch.report import markdown, plot_history
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text(markdown(report))
    plot_history(history, out)
    log(f"a3cs search: report in {out / 'report.md'}")
    return report
