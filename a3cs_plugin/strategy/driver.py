"""The co-search driver behind ``a3cs search``: config -> NNI experiment -> derived pair -> report.

Run directory layout::

    RUN_DIR/config.yaml          the validated configuration
    RUN_DIR/checkpoints/last.ckpt  Lightning checkpoint (end of every search epoch; --resume)
    RUN_DIR/tb/                  TensorBoard scalars (losses, lambda, tau, alpha/beta probabilities)
    RUN_DIR/history.json         alpha/beta probabilities, costs and scores over time
    RUN_DIR/arch.json            argmax alpha  ({cell: op})
    RUN_DIR/accelerator.yaml     argmax beta rendered as a Timeloop spec
    RUN_DIR/mappings/            per-layer mappings of the re-costing (derived_*, teacher_*)
    RUN_DIR/report.json, report.md, alpha.png, beta.png, cost.png, score.png
"""
from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from a3cs_plugin.errors import CheckpointError, ConfigError
from a3cs_plugin.strategy import registry
from a3cs_plugin.strategy.config import RunConfig

CKPT_DIR = "checkpoints"


def _quiet_nni() -> None:
    for name in ("nni", "pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(pytorch_lightning|lightning_fabric|nni)(\.|$)")
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")


def _epoch_checkpoint_cls():
    import pytorch_lightning as pl

    class EpochCheckpoint(pl.Callback):
        """Writes ``last.ckpt`` atomically at the end of every search epoch (for ``--resume``)."""

        def __init__(self, path: Path):
            self.path = Path(path)

        def on_train_epoch_end(self, trainer, pl_module):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            trainer.save_checkpoint(str(tmp))
            os.replace(tmp, self.path)

    return EpochCheckpoint


def EpochCheckpoint(path: Path):  # noqa: N802 - factory keeps lightning imports lazy
    return _epoch_checkpoint_cls()(path)


def build_search(cfg: RunConfig, out: Path, *, resume: bool = False, teacher: Any = None,
                 cost_model: Any = None):
    """Model space, evaluator and strategy for ``cfg`` (``teacher``/``cost_model`` override the config)."""
    from pytorch_lightning.loggers import TensorBoardLogger
    from nni.nas.evaluator.pytorch import Lightning, Trainer

    from a3cs_plugin.agents.space import AgentSpace
    from a3cs_plugin.rl.envs import env_spec
    from a3cs_plugin.strategy.rl_module import RolloutModule, step_loader

    spec = env_spec(cfg.game)
    if teacher is None and cfg.teacher:   # direct-nas: no distillation, the teacher is only reported
        from a3cs_plugin.rl.teacher import load_teacher
        teacher = load_teacher(cfg.teacher, game=cfg.game, num_actions=spec.num_actions)
    torch.manual_seed(cfg.seed)
    space = AgentSpace(spec.num_actions, num_cells=cfg.search.num_cells)
    if cost_model is None:
        cost_model = registry.cost_model(cfg.hardware.cost_model, cfg.hardware.template,
                                         **cfg.hardware.cost_model_options)
    check_cost_model(cost_model)
    module = RolloutModule(cfg.game, cfg.algo, hp=cfg.hp, teacher=teacher,
                           distill_actor=cfg.search.distill_actor, distill_critic=cfg.search.distill_critic,
                           seed=cfg.seed)
    updates = cfg.updates()
    epochs = max(1, min(cfg.search.epochs, updates))
    per_epoch = math.ceil(updates / epochs)
    epochs = math.ceil(updates / per_epoch)
    ckpt = EpochCheckpoint(out / CKPT_DIR / "last.ckpt")
    trainer = Trainer(max_epochs=epochs, logger=TensorBoardLogger(str(out), name="tb", version=""),
                      callbacks=[ckpt], enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0, limit_val_batches=0, log_every_n_steps=1,
                      accelerator="cpu", devices=1)
    fit_kwargs = {}
    last = out / CKPT_DIR / "last.ckpt"
    if resume and last.is_file():
        fit_kwargs["ckpt_path"] = str(last)
        fit_kwargs["weights_only"] = False   # our own checkpoint; it holds NNI label objects
    evaluator = Lightning(module, trainer, train_dataloaders=step_loader(per_epoch),
                          val_dataloaders=step_loader(1), fit_kwargs=fit_kwargs)
    name = "direct-nas" if cfg.mode == "direct-nas" else "a3cs"
    strategy = registry.strategy(
        name, cost_model=cost_model, hw_lambda=cfg.hardware.hw_lambda, metric=cfg.hardware.metric,
        mode=cfg.mode, supernet=cfg.search.supernet, arc_learning_rate=cfg.search.arc_lr,
        beta_learning_rate=cfg.search.beta_lr, tau_init=cfg.search.tau_init, tau_min=cfg.search.tau_min,
        fps_band=cfg.hardware.fps_target, lambda_rate=cfg.hardware.lambda_rate,
        warmup_epochs=cfg.search.warmup_epochs, area_budget_mm2=cfg.hardware.area_budget_mm2)
    return space, evaluator, strategy, module, teacher, {"updates": epochs * per_epoch, "epochs": epochs}


def run_search(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False, recost: bool = True,
               evaluate_scores: bool = True, teacher: Any = None, cost_model: Any = None,
               log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the co-search of ``cfg`` into ``out_dir``; returns the report dict (also ``report.json``)."""
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    out = Path(out_dir)
    saved_cfg = out / "config.yaml"
    if resume and saved_cfg.is_file():
        from a3cs_plugin.strategy.config import load_config
        if load_config(saved_cfg).model_dump() != cfg.model_dump():
            raise CheckpointError("--resume with a config that differs from the run's", file=str(saved_cfg),
                                  expected="the same configuration as the interrupted run")
    elif (out / CKPT_DIR / "last.ckpt").exists() and not resume:
        raise CheckpointError("run directory already holds a search", file=str(out),
                              expected="--resume, or a new --out directory")
    out.mkdir(parents=True, exist_ok=True)
    saved_cfg.write_text(cfg.to_yaml())
    torch.set_num_threads(cfg.threads or min(2, torch.get_num_threads()))
    _quiet_nni()

    t0 = time.time()
    space, evaluator, strategy, module, teacher, plan = build_search(
        cfg, out, resume=resume, teacher=teacher, cost_model=cost_model)
    resumed = {"resumed_from_update": 0, "resumed_from_frames": 0}
    if resume and "ckpt_path" in evaluator.fit_kwargs:
        try:
            ck = torch.load(evaluator.fit_kwargs["ckpt_path"], map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint
            raise CheckpointError(f"unreadable checkpoint ({type(exc).__name__})",
                                  file=evaluator.fit_kwargs["ckpt_path"]) from None
        _check_cost_state(ck.get("state_dict", {}), getattr(strategy, "cost_model", None),
                          evaluator.fit_kwargs["ckpt_path"])
        resumed = {"resumed_from_update": len(ck.get("a3cs", {}).get("history", [])),
                   "resumed_from_frames": int(ck.get("rollout_module", {}).get("frames", 0))}
        log(f"a3cs search: resuming from {evaluator.fit_kwargs['ckpt_path']} "
            f"(update {resumed['resumed_from_update']})")
    log(f"a3cs search: {cfg.game}, mode {cfg.mode}, {plan['updates']} updates in {plan['epochs']} epochs "
        f"-> {out}")
    # The same path as NasExperiment(space, evaluator, strategy).run() for a one-shot strategy,
    # without registering an experiment in ~/nni-experiments.
    import nni.trial
    from nni.nas.execution import SequentialExecutionEngine
    from nni.nas.space import RawFormatModelSpace

    outer_params = nni.trial._params   # the engine calls nni.get_next_parameter() internally
    engine = SequentialExecutionEngine()
    try:
        strategy(RawFormatModelSpace(space, evaluator), engine)
    except RuntimeError as exc:
        if "loading state_dict" not in str(exc):
            raise
        raise CheckpointError(f"checkpoint does not fit this search ({str(exc).splitlines()[-1].strip()[:120]})",
                              file=evaluator.fit_kwargs.get("ckpt_path"),
                              expected="a new --out directory (the run was made by another a3cs version)"
                              ) from None
    finally:
        nni.trial._params = outer_params
        engine.shutdown()
        module.close()
    m = strategy.oneshot_module
    search_s = time.time() - t0
    (out / "history.json").write_text(json.dumps(m.history, indent=1))

    report = derive_and_report(cfg, out, space, m, module, teacher, recost=recost,
                               evaluate_scores=evaluate_scores, log=log)
    report["search"].update({"updates": plan["updates"], "frames": int(module.frames), **resumed,
                             "search_wall_s": search_s, "wall_s": time.time() - t0})
    _write_report(out, report, m.history, module.all_episodes)
    log(f"a3cs search: report in {out / 'report.md'}")
    return report


def run_seeds(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False, recost: bool = True,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``cfg.seeds`` unset or one seed: :func:`run_search`.  Several: one search per seed in
    ``RUN_DIR/seed_<s>/``; the best derived pair (highest score, then lowest EDP) is copied to
    ``RUN_DIR`` (arch.json, accelerator.yaml, report.*) and ``RUN_DIR/seeds.json`` lists all."""
    import shutil

    seeds = cfg.seeds or [cfg.seed]
    if len(seeds) == 1:
        return run_search(cfg.model_copy(update={"seed": seeds[0], "seeds": None}), out_dir, resume=resume,
                          recost=recost, log=log)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reports = {}
    for s in seeds:
        sub = cfg.model_copy(update={"seed": s, "seeds": None})
        run_dir = out / f"seed_{s}"
        done = (run_dir / "report.json").is_file()
        if resume and done:
            reports[s] = json.loads((run_dir / "report.json").read_text())
            continue
        reports[s] = run_search(sub, run_dir, resume=resume, recost=recost, log=log)

    def key(s):
        d = reports[s]["derived"]
        score = d.get("score") if d.get("score") is not None else float("-inf")
        edp = (d.get("energy_mJ") or 0) * (d.get("latency_ms") or 0)
        return (score, -edp)

    best = max(seeds, key=key)
    for name in ("arch.json", "accelerator.yaml", "report.json", "report.md", "config.yaml"):
        src = out / f"seed_{best}" / name
        if src.is_file():
            shutil.copyfile(src, out / name)
    summary = {"best_seed": best, "seeds": {str(s): {k: reports[s]["derived"].get(k) for k in
                                                     ("score", "fps", "energy_mJ", "latency_ms", "area_mm2")}
                                            for s in seeds}}
    (out / "seeds.json").write_text(json.dumps(summary, indent=2))
    report = dict(reports[best])
    report["seeds"] = summary
    return report


def derive_and_report(cfg: RunConfig, out: Path, space, m, module, teacher, *, recost: bool = True,
                      evaluate_scores: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Write ``arch.json`` / ``accelerator.yaml``, re-cost and score both agents; the report dict."""
    from a3cs_plugin.agents.arch import export_arch
    from a3cs_plugin.strategy.derive import project_to_budget
    from a3cs_plugin.strategy.derive import recost as recost_fn

    arch = m.export()
    export_arch(arch, out / "arch.json", space)
    cm = m.network_cost.cost_model
    design = getattr(cm, "space", None)
    beta_probs = m.export_beta_probs()
    projected = False
    if design is not None:
        point, projected = project_to_budget(design, beta_probs, cfg.hardware.area_budget_mm2)
        design.write(point, out / "accelerator.yaml")
    else:
        point = m.export_accelerator()
    derived: dict[str, Any] = {"surrogate": m.derived_cost()}
    teacher_r: dict[str, Any] | None = {} if teacher is not None else None
    area = float(design.area(point)) if design is not None else None
    if recost and design is not None:
        log("a3cs search: re-costing the derived agent and the teacher with the mapper")
        derived.update(recost_fn(out / "accelerator.yaml", space.arch_problems(arch), out_dir=out,
                                 metric=cfg.hardware.recost_metric, time_limit=cfg.hardware.recost_time_limit,
                                 cache=out / "cost_cache.json", area_mm2=area, mapping_prefix="derived_"))
        if teacher is not None:
            from a3cs_plugin.hardware.workload import problems_from_module
            probs = problems_from_module(teacher, torch.zeros((1,) + tuple(space.input_shape), dtype=torch.uint8),
                                         prefix="teacher")
            teacher_r.update(recost_fn(out / "accelerator.yaml", probs, out_dir=out,
                                       metric=cfg.hardware.recost_metric,
                                       time_limit=cfg.hardware.recost_time_limit,
                                       cache=out / "cost_cache.json", area_mm2=area, mapping_prefix="teacher_"))
    elif area is not None:
        derived["area_mm2"] = area
    if evaluate_scores:
        from a3cs_plugin.rl.evaluate import evaluate
        log(f"a3cs search: scoring over {cfg.eval.episodes} episodes")
        agent = space.freeze(arch)
        r = evaluate(agent, cfg.game, cfg.eval.episodes, seed=cfg.seed + 1000)
        derived.update(score=r.mean, score_std=r.std, scores=r.scores)
        if teacher is not None and cfg.eval.teacher:
            r = evaluate(teacher, cfg.game, cfg.eval.episodes, seed=cfg.seed + 1000)
            teacher_r.update(score=r.mean, score_std=r.std, scores=r.scores)
    for d in (derived, teacher_r):
        if d is not None:
            for k in ("score", "fps", "energy_mJ", "latency_ms", "area_mm2"):
                d.setdefault(k, None)
    return {"game": cfg.game, "mode": cfg.mode, "template": cfg.hardware.template,
            "metric": cfg.hardware.metric, "lambda_final": m.hw_lambda,
            "arch": arch, "accelerator": point, "area_projected": projected,
            "derived": derived, "teacher": teacher_r, "search": {}}


def _write_report(out: Path, report: dict[str, Any], history, episodes) -> None:
    from a3cs_plugin.strategy.report import markdown, plot_history
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text(markdown(report))
    plot_history(history, out, episodes)


def _check_cost_state(state: dict, cost_model: Any, where: str) -> None:
    """Refuse to resume a run whose checkpoint holds another cost model (e.g. a surrogate refitted
    since): its tensors would not fit, and Lightning would fail deep inside with a traceback."""
    current = cost_model.state_dict() if isinstance(cost_model, torch.nn.Module) else {}
    for key, value in state.items():
        if "cost_model." not in key:
            continue
        sub = key.split("cost_model.", 1)[1]
        mine = current.get(sub)
        if mine is not None and tuple(mine.shape) != tuple(value.shape):
            raise CheckpointError(f"checkpoint was made with another cost model ({sub}: "
                                  f"{tuple(value.shape)} vs {tuple(mine.shape)} now)", file=where,
                                  expected="a new --out directory (the surrogate changed since this run)")


def check_cost_model(cost_model: Any) -> None:
    from a3cs_plugin.strategy.cost import CostModel
    if not isinstance(cost_model, CostModel):
        raise ConfigError("cost-model plugin returned the wrong type", key="cost_model",
                          expected="a3cs_plugin.strategy.cost.CostModel", got=type(cost_model).__name__)
