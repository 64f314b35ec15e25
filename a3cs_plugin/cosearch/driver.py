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
from a3cs_plugin.cosearch.config import RunConfig

CKPT_DIR = "checkpoints"
#: config keys that may differ when a run is resumed (everything after the search itself)
RESUMABLE_CHANGES = ("finetune.frames", "eval.", "device")


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
            self.prior_wall_s = 0.0          # search wall seconds of earlier segments
            self.t0 = time.time()

        def on_train_start(self, trainer, pl_module):
            self.t0 = time.time()

        def on_save_checkpoint(self, trainer, pl_module, checkpoint):
            # the wall time of every segment so far, so a run killed later still counts it
            checkpoint["search_wall_s"] = self.prior_wall_s + time.time() - self.t0

        def on_train_epoch_end(self, trainer, pl_module):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            trainer.save_checkpoint(str(tmp))
            os.replace(tmp, self.path)

    return EpochCheckpoint


def EpochCheckpoint(path: Path):  # noqa: N802 - factory keeps lightning imports lazy
    return _epoch_checkpoint_cls()(path)


def _score_cls():
    import pytorch_lightning as pl

    class ScoreDuringSearch(pl.Callback):
        """After every search epoch (before its checkpoint): the derived agent of the moment
        (argmax alpha, the supernet's weights) plays ``episodes`` full games; mean/std of the
        unclipped score go into the last history entry (``test_score``, ``test_score_std``), so
        they are saved with the checkpoint and resume exactly.  The global RNG is left as it was."""

        def __init__(self, space, game: str, episodes: int, seed: int):
            self.space, self.game, self.episodes, self.seed = space, game, int(episodes), int(seed)

        def on_train_epoch_end(self, trainer, pl_module):
            from a3cs_plugin.rl.evaluate import evaluate
            if not pl_module.history:
                return
            arch = {str(k): str(v) for k, v in pl_module.export().items()}
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                agent = self.space.freeze(arch)
                r = evaluate(agent, self.game, self.episodes, seed=self.seed + trainer.current_epoch)
            pl_module.history[-1].update(test_score=r.mean, test_score_std=r.std,
                                         test_episodes=r.episodes, test_arch=arch)

    return ScoreDuringSearch


def _progress_cls():
    import pytorch_lightning as pl

    class SearchProgress(pl.Callback):
        """Frames/s and ETA of the search: a bar on a terminal, one line per epoch otherwise."""

        def __init__(self, total_frames: int, log: Callable[[str], None], tty: bool):
            self.total, self._emit, self.tty = int(total_frames), log, tty
            self.bar = None
            self.t0 = time.time()
            self.f0: int | None = None

        def _frames(self, pl_module) -> int:
            return int(getattr(pl_module.training_module, "frames", 0))

        def on_train_start(self, trainer, pl_module):
            self.f0 = self._frames(pl_module)
            self.t0 = time.time()
            if self.tty:
                from tqdm import tqdm
                self.bar = tqdm(total=self.total, initial=self.f0, unit="frame", unit_scale=True,
                                dynamic_ncols=True, mininterval=1.0, desc="search")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if self.bar is not None:
                f = self._frames(pl_module)
                self.bar.update(f - self.bar.n)
                score = pl_module.training_module.recent_score()
                self.bar.set_postfix(ret="n/a" if score is None else f"{score:.1f}",
                                     lam=f"{pl_module.hw_lambda:.3g}", refresh=False)

        def on_train_epoch_end(self, trainer, pl_module):
            if self.bar is None:
                f = self._frames(pl_module)
                dt = max(1e-9, time.time() - self.t0)
                rate = (f - (self.f0 or 0)) / dt
                eta = (self.total - f) / rate if rate > 0 else float("nan")
                score = pl_module.training_module.recent_score()
                self._emit(f"a3cs search: epoch {trainer.current_epoch + 1}/{trainer.max_epochs}, "
                         f"{f:,}/{self.total:,} frames, {rate:.0f} frames/s, ETA {eta:.0f} s, "
                         f"training return {'n/a' if score is None else f'{score:.1f}'}")

        def on_train_end(self, trainer, pl_module):
            if self.bar is not None:
                self.bar.close()

    return SearchProgress


def build_search(cfg: RunConfig, out: Path, *, resume: bool = False, teacher: Any = None,
                 cost_model: Any = None, progress: bool | None = None,
                 log: Callable[[str], None] | None = None):
    """Model space, evaluator and strategy for ``cfg`` (``teacher``/``cost_model`` override the config)."""
    from pytorch_lightning.loggers import TensorBoardLogger
    from nni.nas.evaluator.pytorch import Lightning, Trainer

    from a3cs_plugin.agents.space import AgentSpace
    from a3cs_plugin.rl.envs import env_spec
    from a3cs_plugin.rl.rollout import fast_layout
    from a3cs_plugin.strategy.rl_module import RolloutModule, step_loader

    from a3cs_plugin.rl.device import lightning_accelerator, resolve_device

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    device = resolve_device(cfg.device)   # a GPU that is not there: one line, before any work
    spec = env_spec(cfg.game)
    if teacher is None and cfg.teacher:   # direct-nas: no distillation, the teacher is only reported
        from a3cs_plugin.rl.teacher import load_teacher
        teacher = load_teacher(cfg.teacher, game=cfg.game, num_actions=spec.num_actions)
    if cost_model is None:
        cost_model = registry.cost_model(cfg.hardware.cost_model, cfg.hardware.template,
                                         **cfg.hardware.cost_model_options)
    check_cost_model(cost_model)
    fixed = check_hardware(cfg, cost_model)
    torch.manual_seed(cfg.seed)
    # channels-last conv weights from the start (~2x faster passes on CPU); converting later, after
    # a checkpoint restored the optimiser state, would make a resumed run differ in the last bits
    space = fast_layout(AgentSpace(spec.num_actions, num_cells=cfg.search.num_cells))
    if cfg.hardware.fps_target:
        from a3cs_plugin.cost.base import NetworkCost
        labels = {label: list(m.values) for label, m in space.simplify().items()}
        check_fps_target(cfg, cost_model, NetworkCost(
            cost_model, {label: {op: list(space.op_problems(label, op)) for op in ops}
                         for label, ops in labels.items()}, list(space.fixed_problems())), fixed)
    module = RolloutModule(cfg.game, cfg.algo, hp=cfg.hp, teacher=teacher,
                           distill_actor=cfg.search.distill_actor, distill_critic=cfg.search.distill_critic,
                           seed=cfg.seed)
    plan = cfg.plan()
    callbacks = [EpochCheckpoint(out / CKPT_DIR / "last.ckpt")]
    if cfg.search.score_episodes:   # before the checkpoint callback: the score is saved with it
        callbacks.insert(0, _score_cls()(space, cfg.game, cfg.search.score_episodes, cfg.seed + 3000))
    if progress is None or progress:
        tty = sys.stderr.isatty() if progress is None else True
        callbacks.append(_progress_cls()(plan["frames"], log, tty))
    trainer = Trainer(max_epochs=plan["epochs"], logger=TensorBoardLogger(str(out), name="tb", version=""),
                      callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False,
                      enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0,
                      log_every_n_steps=1, **lightning_accelerator(device))
    fit_kwargs = {}
    last = out / CKPT_DIR / "last.ckpt"
    if resume and last.is_file():
        fit_kwargs["ckpt_path"] = str(last)
        fit_kwargs["weights_only"] = False   # our own checkpoint; it holds NNI label objects
    evaluator = Lightning(module, trainer, train_dataloaders=step_loader(plan["per_epoch"]),
                          val_dataloaders=step_loader(1), fit_kwargs=fit_kwargs)
    name = "a3cs" if cfg.distilling else "direct-nas"
    strategy = registry.strategy(name, cost_model=cost_model, settings=cfg.search_settings(fixed))
    return space, evaluator, strategy, module, teacher, plan


def check_hardware(cfg: RunConfig, cost_model: Any) -> dict[str, Any]:
    """Validate ``hardware.fixed`` and the area budget against the design space before any
    training; returns the fixed parameters (template pins + config)."""
    params = cost_model.accelerator_params()
    fixed = {**cost_model.pinned(), **cfg.hardware.fixed}
    for name, value in cfg.hardware.fixed.items():
        if name not in params:
            raise ConfigError("unknown accelerator parameter", key=f"hardware.fixed.{name}",
                              expected="one of " + ", ".join(params))
        if value not in params[name]:
            raise ConfigError("not a choice of the design space", key=f"hardware.fixed.{name}",
                              expected="one of " + ", ".join(map(str, params[name])), got=value)
    budget = cfg.hardware.area_budget_mm2
    if budget is not None:
        smallest = cost_model.min_area_mm2(fixed)
        if smallest is not None and budget < smallest:
            raise ConfigError(f"no design of template '{cfg.hardware.template}' fits the area budget",
                              key="hardware.area_budget_mm2",
                              expected=f">= {smallest:.3f} mm^2 (the smallest design)", got=budget)
    return fixed


def best_fps_estimate(cost_model: Any, network_cost: Any, fixed: dict[str, Any], *, samples: int = 256,
                      seed: int = 0) -> float:
    """The highest FPS the cost model gives any agent of ``network_cost`` (per cell its op with the
    fewest cycles) on any of ``samples`` random designs of the space plus the corner of largest
    choices (``fixed`` parameters held): an estimate of the template's best, for refusing an FPS
    target no design reaches before any training."""
    import numpy as np

    from a3cs_plugin.cost.base import one_hot_probs

    params = cost_model.accelerator_params()
    rng = np.random.default_rng(seed)
    points = [{n: (fixed[n] if n in fixed else max(c, key=_as_number)) for n, c in params.items()}]
    for _ in range(samples):
        points.append({n: (fixed[n] if n in fixed else c[int(rng.integers(len(c)))]) for n, c in params.items()})
    best = 0.0
    with torch.no_grad():
        for point in points:
            probs = one_hot_probs(cost_model, point)
            _, cycles = network_cost.slot_costs(probs)
            total, slot = float(cycles[0]), 1
            for label in network_cost.labels:
                n = len(network_cost.op_names[label])
                total += float(cycles[slot:slot + n].min())
                slot += n
            seconds = total * float(cost_model.cycle_seconds(probs))
            if seconds > 0:
                best = max(best, 1.0 / seconds)
    return best


def _as_number(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


#: an FPS target above this multiple of the estimated best is refused (the estimate comes from
#: the surrogate on sampled designs; held-out cycle errors are a few per cent)
FPS_TARGET_MARGIN = 1.5


def check_fps_target(cfg: RunConfig, cost_model: Any, network_cost: Any, fixed: dict[str, Any]) -> None:
    """Refuse ``hardware.fps_target`` when its lower edge lies beyond what the template can reach."""
    band = cfg.hardware.fps_target
    if not band:
        return
    best = best_fps_estimate(cost_model, network_cost, fixed)
    if best > 0 and band[0] > FPS_TARGET_MARGIN * best:
        raise ConfigError(f"no design of template '{cfg.hardware.template}' reaches the FPS target "
                          f"(fastest agent on the fastest sampled design: ~{best:,.0f} FPS)",
                          key="hardware.fps_target", expected=f"<= {FPS_TARGET_MARGIN * best:,.0f} FPS",
                          got=band[0])


def run_search(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False, recost: bool = True,
               evaluate_scores: bool = True, finetune: bool = True, teacher: Any = None,
               cost_model: Any = None, progress: bool | None = None,
               log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the co-search of ``cfg`` into ``out_dir``: search, derive, fine-tune the derived agent
    (``cfg.finetune``), score derived / teacher / random agent with one protocol, re-cost with the
    mapper; returns the report dict (also ``report.json``)."""
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    out = Path(out_dir)
    saved_cfg = out / "config.yaml"
    if out.exists() and not out.is_dir():
        raise ConfigError("--out is a file", file=str(out), expected="a run directory")
    if cfg.agent:
        from a3cs_plugin.cosearch.das import run_das
        if (out / "report.json").exists() and not resume:
            raise CheckpointError("run directory already holds a search", file=str(out),
                                  expected="--resume, or a new --out directory")
        return run_das(cfg, out, recost=recost, evaluate_scores=evaluate_scores, log=log)
    if resume and saved_cfg.is_file():
        from a3cs_plugin.cosearch.config import load_config
        before, now = load_config(saved_cfg).model_dump(), cfg.model_dump()
        # what happens after the search may change on resume: a longer fine-tune continues from
        # its last checkpoint (its LR schedule stretched), the evaluation is simply redone
        diff = sorted(k for k in _diff_keys(before, now) if not k.startswith(RESUMABLE_CHANGES))
        if diff:
            raise CheckpointError("--resume with a config that differs from the run's "
                                  f"({', '.join(diff[:4])})", file=str(saved_cfg),
                                  expected="the same configuration as the interrupted run")
    elif (out / CKPT_DIR / "last.ckpt").exists() and not resume:
        raise CheckpointError("run directory already holds a search", file=str(out),
                              expected="--resume, or a new --out directory")
    last = out / CKPT_DIR / "last.ckpt"
    if resume and last.is_file():
        import zipfile
        if not zipfile.is_zipfile(last):   # torch.save writes a zip: a cut or foreign file is not one
            raise CheckpointError("corrupt or unreadable search checkpoint (not a torch zip archive)",
                                  file=str(last), expected="the last.ckpt of an interrupted a3cs search, "
                                  "or a new --out directory")
    torch.set_num_threads(cfg.threads or min(2, torch.get_num_threads()))
    _quiet_nni()

    t0 = time.time()
    space, evaluator, strategy, module, teacher, plan = build_search(
        cfg, out, resume=resume, teacher=teacher, cost_model=cost_model, progress=progress, log=log)
    out.mkdir(parents=True, exist_ok=True)
    saved_cfg.write_text(cfg.to_yaml())
    resumed = {"resumed_from_update": 0, "resumed_from_frames": 0}
    prior_wall = 0.0
    if resume and (out / "wall.json").is_file():
        prior_wall = float(json.loads((out / "wall.json").read_text()).get("search_wall_s", 0.0))
    if resume and "ckpt_path" in evaluator.fit_kwargs:
        try:
            ck = torch.load(evaluator.fit_kwargs["ckpt_path"], map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint
            raise CheckpointError(f"unreadable checkpoint ({type(exc).__name__})",
                                  file=evaluator.fit_kwargs["ckpt_path"]) from None
        _check_cost_state(ck.get("state_dict", {}), getattr(strategy, "cost_model", None),
                          evaluator.fit_kwargs["ckpt_path"])
        prior_wall = max(prior_wall, float(ck.get("search_wall_s", 0.0)))
        resumed = {"resumed_from_update": int(ck.get("rollout_module", {}).get("weight_updates", 0)),
                   "resumed_from_frames": int(ck.get("rollout_module", {}).get("frames", 0))}
        log(f"a3cs search: resuming from {evaluator.fit_kwargs['ckpt_path']} "
            f"(update {resumed['resumed_from_update']})")
    for cb in evaluator.trainer.callbacks:
        if hasattr(cb, "prior_wall_s"):
            cb.prior_wall_s = prior_wall
    log(f"a3cs search: {cfg.game}, {cfg.scheme} {cfg.optimisation}, {cfg.algo}, {plan['updates']} updates "
        f"({plan['warmup']} weight-only warm-up), {plan['frames']:,} frames in {plan['epochs']} epochs -> {out}")
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
    (out / "wall.json").write_text(json.dumps({"search_wall_s": prior_wall + search_s}))

    previous = None
    if resume and not recost and (out / "report.json").is_file():
        try:
            previous = json.loads((out / "report.json").read_text())
        except (OSError, ValueError):
            previous = None
    report = derive_and_report(cfg, out, space, m, module, teacher, recost=recost,
                               evaluate_scores=evaluate_scores, finetune=finetune, resume=resume,
                               progress=progress, log=log)
    if previous is not None and keep_recosted(previous, report):
        log("a3cs search: --no-recost: kept the mapper numbers of the finished run (same pair)")
    report["search"].update({"updates": plan["updates"], "warmup_updates": plan["warmup"],
                             "frames": int(module.frames), "frames_planned": plan["frames"], **resumed,
                             "search_wall_s": prior_wall + search_s,
                             "wall_s": prior_wall + time.time() - t0})
    _write_report(out, report, m.history, module.all_episodes)
    log(f"a3cs search: report in {out / 'report.md'}")
    return report


#: the report fields that come from the mapper re-costing (derive.recost)
RECOST_FIELDS = ("energy_mJ", "energy_pJ", "cycles", "latency_ms", "fps", "area_mm2", "edp_pJ_cycles",
                 "macs", "layers", "clock_source")


def keep_recosted(previous: dict[str, Any], report: dict[str, Any]) -> bool:
    """``--resume --no-recost`` on a finished, re-costed run: copy its mapper numbers (derived,
    teacher, baselines) into ``report`` when the derived pair is the same; returns whether it did."""
    def plain(x):
        return json.loads(json.dumps(x, default=str))
    if not previous.get("recosted") or report.get("recosted"):
        return False
    if plain(previous.get("arch")) != plain(report.get("arch")) or \
            plain(previous.get("accelerator")) != plain(report.get("accelerator")):
        return False
    for side in ("derived", "teacher"):
        old, new = previous.get(side), report.get(side)
        if old and new is not None:
            new.update({k: old[k] for k in RECOST_FIELDS if k in old})
    report["baselines"] = previous.get("baselines") or {}
    report["recosted"] = True
    report["recost_kept"] = True
    return True


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = []
        for k in sorted(set(a) | set(b), key=str):
            keys += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return keys
    return [] if a == b else [prefix.rstrip(".")]


def run_seeds(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False, recost: bool = True,
              finetune: bool = True, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``cfg.seeds`` unset or one seed: :func:`run_search`.  Several: one search per seed in
    ``RUN_DIR/seed_<s>/``; the best derived pair (highest evaluation score under the report's
    protocol, then lowest EDP) is copied to ``RUN_DIR`` (arch.json, accelerator.yaml, report.*)
    and ``RUN_DIR/seeds.json`` lists all."""
    import shutil

    seeds = cfg.seeds or [cfg.seed]
    if len(seeds) == 1:
        return run_search(cfg.model_copy(update={"seed": seeds[0], "seeds": None}), out_dir, resume=resume,
                          recost=recost, finetune=finetune, log=log)
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
        reports[s] = run_search(sub, run_dir, resume=resume, recost=recost, finetune=finetune, log=log)

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
    fields = ("score", "score_std", "episodes", "normalized_score", "fps", "energy_mJ", "latency_ms",
              "area_mm2")
    summary = {"best_seed": best, "selection": "highest derived score (report protocol), then lowest EDP",
               "seeds": {str(s): {k: reports[s]["derived"].get(k) for k in fields} for s in seeds}}
    (out / "seeds.json").write_text(json.dumps(summary, indent=2))
    report = dict(reports[best])
    report["seeds"] = summary
    return report


def finetune_derived(cfg: RunConfig, out: Path, space, arch: dict, *, resume: bool = False,
                     progress: bool | None = None, log: Callable[[str], None] = print):
    """Fine-tune the derived agent (the supernet's weights of its ops) for ``cfg.finetune.frames``
    on the shared RL loop, with the search's algorithm, ``hp`` and distillation; checkpoints and
    curves in ``RUN_DIR/finetune/``, the result as ``finetune/agent.pt`` (an ``a3cs-agent`` file:
    ``a3cs evaluate --checkpoint``, ``teacher:``).  Returns ``(model, summary)``."""
    from a3cs_plugin.rl.checkpoint import agent_file, load_agent, save_atomic
    from a3cs_plugin.rl.config import DistillConfig, TrainConfig
    from a3cs_plugin.rl.envs import env_spec
    from a3cs_plugin.rl.trainer import train

    ft = out / "finetune"
    spec = env_spec(cfg.game)
    init = ft / "init.pt"
    if not (resume and init.is_file()):
        agent = space.freeze(arch)
        save_atomic(agent_file(agent, agent="searched", game=spec.game, num_actions=spec.num_actions,
                               frames=0, fp16=False, arch=dict(arch), num_cells=cfg.search.num_cells,
                               source="supernet weights of the derived ops"), init)
    hp = dict(cfg.hp)
    if cfg.finetune.lr is not None:
        hp["lr"] = cfg.finetune.lr
    distill = DistillConfig(actor=cfg.search.distill_actor, critic=cfg.search.distill_critic) \
        if cfg.distilling else DistillConfig()
    tcfg = TrainConfig(agent="searched", arch=dict(arch), num_cells=cfg.search.num_cells, game=spec.game,
                       frames=cfg.finetune.frames, algo=cfg.algo, seed=cfg.seed, hp=hp, distill=distill,
                       teacher=cfg.teacher if cfg.distilling else None,
                       checkpoint_every=cfg.finetune.checkpoint_every, init=str(init),
                       torch_threads=cfg.threads or 1, device=cfg.device)
    log(f"a3cs search: fine-tuning the derived agent for {cfg.finetune.frames:,} frames -> {ft}")
    show = sys.stderr.isatty() if progress is None else bool(progress)
    summary = train(tcfg, ft, resume=resume, progress=show, log=log)
    model, meta = load_agent(ft)
    save_atomic(agent_file(model, agent="searched", game=spec.game, num_actions=spec.num_actions,
                           frames=int(summary["frames"]), fp16=False, arch=dict(arch),
                           num_cells=cfg.search.num_cells, source="a3cs search fine-tune"), ft / "agent.pt")
    return model, summary


def score_agents(cfg: RunConfig, derived_model, teacher, *, log: Callable[[str], None] = print
                 ) -> dict[str, Any]:
    """Derived agent, teacher and a uniform-random agent under one protocol (``cfg.eval``:
    episodes, seed, greedy or sampled actions), and the normalized score
    ``(derived - random) / (teacher - random)``."""
    from a3cs_plugin.rl.device import resolve_device
    from a3cs_plugin.rl.evaluate import evaluate, random_agent

    dev = resolve_device(cfg.device)
    ep, seed, greedy = cfg.eval.episodes, cfg.seed + 1000, cfg.eval.greedy
    log(f"a3cs search: scoring over {ep} episodes ({'greedy' if greedy else 'sampled'} actions)")
    res: dict[str, Any] = {}
    r = evaluate(derived_model, cfg.game, ep, seed=seed, greedy=greedy, device=dev)
    res["derived"] = {"score": r.mean, "score_std": r.std, "episodes": r.episodes, "scores": r.scores}
    if teacher is not None and cfg.eval.teacher:
        r = evaluate(teacher, cfg.game, ep, seed=seed, greedy=greedy, device=dev)
        res["teacher"] = {"score": r.mean, "score_std": r.std, "episodes": r.episodes, "scores": r.scores}
    if cfg.eval.random:
        num_actions = derived_model.num_actions if hasattr(derived_model, "num_actions") else None
        if num_actions is None:
            from a3cs_plugin.rl.envs import env_spec
            num_actions = env_spec(cfg.game).num_actions
        r = evaluate(random_agent(num_actions), cfg.game, ep, seed=seed, device=dev)
        res["random"] = {"score": r.mean, "score_std": r.std, "episodes": r.episodes, "scores": r.scores}
    res["derived"]["random_score"] = res.get("random", {}).get("score")
    res["derived"]["normalized_score"] = normalized_score(
        res["derived"]["score"], res.get("teacher", {}).get("score"), res.get("random", {}).get("score"))
    return res


def surrogate_file(cost_model) -> str | None:
    """The surrogate file ``cost_model`` read (``None`` for a cost model without one)."""
    return getattr(getattr(cost_model, "surrogate", None), "path", None)


def normalized_score(score: float | None, teacher: float | None, random: float | None) -> float | None:
    """``(score - random) / (teacher - random)``; ``None`` without both references or when the
    teacher is no better than random."""
    if score is None or teacher is None or random is None or teacher <= random:
        return None
    return (score - random) / (teacher - random)


def derive_and_report(cfg: RunConfig, out: Path, space, m, module, teacher, *, recost: bool = True,
                      evaluate_scores: bool = True, finetune: bool = True, resume: bool = False,
                      progress: bool | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Derive the pair, fine-tune and score the agent, re-cost with the mapper; the report dict."""
    from a3cs_plugin.strategy.derive import derive_pair

    pair = derive_pair(space, m, out, recost_pair=recost, metric=cfg.hardware.recost_metric,
                       time_limit=cfg.hardware.recost_time_limit,
                       max_evaluations=cfg.hardware.recost_evaluations,
                       area_budget_mm2=cfg.hardware.area_budget_mm2, teacher=teacher, log=log)
    arch, derived, teacher_r = pair["arch"], pair["derived"], pair["teacher"]
    baselines = {}
    if recost and cfg.hardware.baselines:
        baselines = recost_baselines(cfg, out, space, arch, teacher, log=log)
    ft_summary = None
    model = None
    if finetune and cfg.finetune.frames > 0:
        model, ft_summary = finetune_derived(cfg, out, space, arch, resume=resume, progress=progress, log=log)
    random_r = None
    if evaluate_scores:
        model = model if model is not None else space.freeze(arch)
        scores = score_agents(cfg, model, teacher, log=log)
        derived.update(scores["derived"])
        if teacher_r is not None and "teacher" in scores:
            teacher_r.update(scores["teacher"])
        random_r = scores.get("random")
    for d in (derived, teacher_r):
        if d is not None:
            for k in ("score", "score_std", "episodes", "fps", "energy_mJ", "latency_ms", "area_mm2"):
                d.setdefault(k, None)
    derived.setdefault("random_score", None)
    derived.setdefault("normalized_score", None)
    return {"game": cfg.game, "mode": cfg.optimisation, "scheme": cfg.scheme, "distill": cfg.distilling,
            "algo": cfg.algo, "template": cfg.hardware.template, "metric": cfg.hardware.metric,
            "cost_model": cfg.hardware.cost_model, "surrogate": surrogate_file(m.network_cost.cost_model),
            "lambda_final": m.hw_lambda, "fixed": m.fixed, "area_budget_mm2": cfg.hardware.area_budget_mm2,
            "arch": arch, "accelerator": pair["accelerator"], "area_projected": pair["area_projected"],
            "recosted": pair["recosted"], "derived": derived, "teacher": teacher_r, "random": random_r,
            "baselines": baselines,
            "eval": {"episodes": cfg.eval.episodes, "greedy": cfg.eval.greedy, "seed": cfg.seed + 1000},
            "finetune": ({"frames": int(ft_summary["frames"]), "agent": "finetune/agent.pt"}
                         if ft_summary else None),
            "search": {}}


def recost_baselines(cfg: RunConfig, out: Path, space, arch: dict, teacher, *,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """The derived agent and the teacher on each hand-designed ``hardware.baselines`` spec."""
    from a3cs_plugin.paths import arch_spec
    from a3cs_plugin.strategy.derive import mapper_metric, recost

    res = {}
    for name in cfg.hardware.baselines:
        spec = arch_spec(name)
        log(f"a3cs search: re-costing on the hand-designed {name}")
        kw = dict(metric=mapper_metric(cfg.hardware.recost_metric), time_limit=cfg.hardware.recost_time_limit,
                  max_evaluations=cfg.hardware.recost_evaluations, cache=out / "cost_cache.json")
        entry = {"spec": name, "derived": recost(spec, space.arch_problems(arch), **kw)}
        if teacher is not None:
            from a3cs_plugin.hardware.workload import problems_from_module
            probs = problems_from_module(teacher, torch.zeros((1,) + tuple(space.input_shape), dtype=torch.uint8),
                                         prefix="teacher")
            entry["teacher"] = recost(spec, probs, **kw)
        res[name] = entry
    return res


def _write_report(out: Path, report: dict[str, Any], history, episodes) -> None:
    from a3cs_plugin.cosearch.report import markdown, plot_history
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
    from a3cs_plugin.cost.base import CostModel
    if not isinstance(cost_model, CostModel):
        raise ConfigError("cost-model plugin returned the wrong type", key="cost_model",
                          expected="a3cs_plugin.cost.base.CostModel", got=type(cost_model).__name__)
