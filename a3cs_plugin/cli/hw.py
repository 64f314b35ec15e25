"""``a3cs hw model`` and ``a3cs hw map``: Timeloop-compatible evaluation and mapping search."""
from __future__ import annotations

import argparse
import json
import os
import sys

from a3cs_plugin.cli import checks
from a3cs_plugin.errors import ConfigError


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="+", metavar="SPEC.yaml",
                   help="Timeloop spec files (architecture, components, problem, ...), merged by key")
    p.add_argument("--ert", metavar="ERT.yaml", help="Accelergy energy reference table")
    p.add_argument("--art", metavar="ART.yaml", help="Accelergy area reference table")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_semantics(p)


def _add_semantics(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("a3cs", "timeloop"), default="a3cs",
                   help="a3cs: the built-in model and mapper (default); timeloop: write Timeloop's "
                        "processed input and run timeloop-model / timeloop-mapper (from "
                        "A3CS_TIMELOOP_BIN or PATH, else pytimeloop)")
    p.add_argument("--timeloop-version", choices=("ref", "head"), default=None,
                   help="Timeloop revision the built-in model follows: ref (before commit a12fff5, the "
                        "reference outputs; default) or head (current halo rule)")
    p.add_argument("--no-link-transfers", action="store_true",
                   help="no neighbour-to-neighbour transfers over the PE mesh (like "
                        "TIMELOOP_DISABLE_LINK_TRANSFERS=1; also passed to Timeloop)")
    p.add_argument("--split", choices=("timeloopfe", "literal"), default=None,
                   help="spatial permutation/split of v0.4 constraints: as Timeloop's front-end reads "
                        "it (unit dimensions first; default) or literally as written")


def _apply_semantics(args) -> dict:
    """Set the model's Timeloop semantics from the flags; returns the environment for Timeloop."""
    from a3cs_plugin.hardware.model import engine
    from a3cs_plugin.hardware.spec import frontend
    engine.set_timeloop_semantics(getattr(args, "timeloop_version", None),
                                  False if getattr(args, "no_link_transfers", False) else None)
    if getattr(args, "split", None):
        frontend.SPLIT_SEMANTICS = args.split
    return {"TIMELOOP_DISABLE_LINK_TRANSFERS": "1"} if not engine.LINK_TRANSFERS else {}


def register(subparsers) -> None:
    hw = subparsers.add_parser("hw", help="accelerator model and mapper (Timeloop-compatible)")
    sub = hw.add_subparsers(dest="hw_command", metavar="HW_COMMAND", parser_class=type(hw))
    pm = sub.add_parser("model", help="evaluate a fixed mapping (like timeloop-model)")
    _add_common(pm)
    pm.add_argument("--mapping", metavar="MAP.yaml", help="mapping file (else the spec's 'mapping')")
    pm.set_defaults(func=cmd_model)
    pp = sub.add_parser("map", help="search a mapping (like timeloop-mapper)")
    _add_common(pp)
    pp.add_argument("--metric", default="edp", choices=("edp", "energy", "latency", "delay"),
                    help="latency, energy or edp of the mapping (delay: Timeloop's name for latency)")
    pp.add_argument("--time-limit", type=float, default=30.0, metavar="SEC")
    pp.add_argument("--seed", type=checks.seed, default=0)
    pp.set_defaults(func=cmd_map)
    pn = sub.add_parser("net", help="cost a whole network (zoo agent or searched agent) on an accelerator")
    accel = pn.add_mutually_exclusive_group(required=True)
    accel.add_argument("--accel", dest="accel", nargs="+", metavar="ACCEL.yaml",
                       help="accelerator spec files (architecture, components, constraints) or a shipped "
                            "design name (eyeriss_like, ...)")
    # the flag's old name, kept for one release (hidden; "arch" also names the agent's architecture)
    accel.add_argument("--arch", dest="accel", nargs="+", metavar="ACCEL.yaml", help=argparse.SUPPRESS)
    who = pn.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", metavar="NAME", help="zoo agent: nature_cnn, resnet14, resnet20, ...")
    who.add_argument("--agent", metavar="ARCH.json", help="searched agent architecture (a3cs search's arch.json)")
    pn.add_argument("--num-actions", type=int, default=6, help="policy head size (default 6, Pong)")
    pn.add_argument("--batch", type=int, default=1, help="inference batch size (default 1)")
    pn.add_argument("--ert", metavar="ERT.yaml", help="Accelergy energy reference table")
    pn.add_argument("--art", metavar="ART.yaml", help="Accelergy area reference table")
    pn.add_argument("--metric", default="edp", choices=("edp", "energy", "latency", "delay"),
                    help="latency, energy or edp of the mapping (delay: Timeloop's name for latency)")
    pn.add_argument("--time-limit", type=float, default=3.0, metavar="SEC", help="mapper budget per distinct layer")
    pn.add_argument("--seed", type=checks.seed, default=0)
    pn.add_argument("--out", metavar="DIR", help="also write report.json, report.md and energy.png here")
    pn.add_argument("--json", action="store_true", help="print one JSON object")
    pn.add_argument("--pe-budget", metavar="N", default=None,
                    help="pipeline descriptions only (e.g. dnnbuilder_like.yaml): total MACs over all stages "
                         "('none': area budget only); overrides budget.pe_budget")
    pn.add_argument("--area-budget", metavar="MM2", default=None,
                    help="pipeline descriptions only: area budget in mm^2 ('none': no area limit); "
                         "overrides budget.area_budget_mm2")
    pn.add_argument("--onchip-bytes", metavar="B", default=None,
                    help="pipeline descriptions only: on-chip SRAM for line buffers and resident weights; "
                         "overrides budget.onchip_bytes")
    _add_semantics(pn)
    pn.set_defaults(func=cmd_net)
    pf = sub.add_parser("fit-surrogate", help="label (layer, accelerator) points with the mapper and fit "
                                              "the differentiable surrogate of a design-space template")
    pf.add_argument("--template", default="eyeriss_like", help="template name in arch_specs/templates or a path")
    pf.add_argument("--budget", choices=("quick", "full"), default=None,
                    help="quick: 1200 + 200 labels, 3000 steps (about 10 min on 2 cores); full: the protocol "
                         "of the shipped fits (13000 + 400 labels, 8000 steps, 60-pair noise check); flags "
                         "given explicitly override the budget's values")
    pf.add_argument("--shard", default=None, metavar="I/N",
                    help="only label shard I of N of the pair sequence into --cache and stop (no fit); merge "
                         "the shards' caches with a3cs hw merge-labels, then fit with --cache MERGED.jsonl")
    pf.add_argument("--samples", type=int, default=None, help="training points (default 2000)")
    pf.add_argument("--heldout", type=int, default=None, help="held-out points (other seed and layer mix)")
    pf.add_argument("--out", metavar="F.pt", default=None,
                    help="surrogate file (default: <template>.pt in the working directory)")
    pf.add_argument("--force", action="store_true",
                    help="allow replacing a surrogate that ships with a3cs (a3cs_plugin/surrogates/)")
    pf.add_argument("--seed", type=checks.seed, default=0)
    pf.add_argument("--time-limit", type=float, default=None, metavar="SEC", help="mapper cap per point (default 1)")
    pf.add_argument("--max-evaluations", type=int, default=None,
                    help="mapper evaluations per point (0 = time limit only); keeps labels load-independent")
    pf.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1),
                    help="label processes (default: every core, %(default)s here)")
    pf.add_argument("--steps", type=int, default=None, help="training steps (default 4000)")
    pf.add_argument("--hidden", type=int, default=None, help="hidden width (default 48; fits before 2026-12 used 64)")
    pf.add_argument("--feature-version", type=int, default=None, choices=(2, 4),
                    help="surrogate inputs: 4 = divisor features + compute and bandwidth bound "
                         "(default), 2 = divisor features only")
    pf.add_argument("--train-layers", type=int, default=None,
                    help="distinct layers of the training mix (default 2000; fits before 2026-12 used 600)")
    pf.add_argument("--cache", default=None, help="label cache (JSON lines); reused across runs")
    pf.add_argument("--noise-check", type=int, default=None,
                    help="re-label this many held-out pairs with another mapper seed (label-noise floor)")
    pf.set_defaults(func=cmd_fit_surrogate)
    from a3cs_plugin.cli import hw_space
    hw_space.register(sub)
    hw.set_defaults(func=lambda args: (hw.print_help(), 2)[1])


def _load(args, extra=()):
    from a3cs_plugin.hardware.spec import load_spec
    with _one_line_warnings():
        return load_spec(list(args.specs) + list(extra), ert=args.ert, art=args.art)


class _one_line_warnings:
    """Spec warnings as one ``a3cs: warning: ...`` line each (once per message) on stderr."""

    def __enter__(self):
        import warnings
        self._cm = warnings.catch_warnings(record=True)
        self._log = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        seen = set()
        for w in self._log:
            msg = " ".join(str(w.message).split())
            if msg not in seen:
                seen.add(msg)
                sys.stderr.write(f"a3cs: warning: {msg}\n")
        return False


def _table(d: dict) -> str:
    lines = [f"{'cycles':<16}{d['cycles']}", f"{'computes':<16}{d['computes']}",
             f"{'energy (pJ)':<16}{d['energy_pJ']:.4f}",
             f"{'area (um^2)':<16}{'-' if d['area_um2'] is None else format(d['area_um2'], '.2f')}",
             f"{'energy source':<16}{d['energy_source']}", "", f"{'level':<24}{'energy (pJ)':>18}{'fJ/compute':>14}"]
    for name, e in d["levels_pJ"].items():
        per = 1000.0 * e / d["computes"] if d["computes"] else 0.0
        lines.append(f"{name:<24}{e:>18.4f}{per:>14.2f}")
    if "search_seconds" in d:
        lines.append(f"\nsearch took {d['search_seconds']:.2f} s")
    return "\n".join(lines)


def cmd_model(args) -> int:
    from a3cs_plugin.hardware.model import evaluate
    env = _apply_semantics(args)
    spec = _load(args, [args.mapping] if args.mapping else [])
    if spec.mapping is None:
        raise ConfigError("no mapping: pass --mapping MAP.yaml or include a 'mapping' section",
                          key="--mapping", expected="a Timeloop mapping file")
    if args.backend == "timeloop":
        from a3cs_plugin.hardware.backend import run_spec
        d = run_spec(spec, "model", mapping=spec.mapping, env=env)
        d.pop("stats_file", None)
    else:
        d = evaluate(spec, check=False).summary()   # the mapping was checked when the spec was loaded
    sys.stdout.write((json.dumps(d) if args.json else _table(d)) + "\n")
    return 0


def _mapper_metric(args) -> None:
    """One vocabulary: ``latency`` everywhere a3cs speaks, ``delay`` where Timeloop's mapper does."""
    if args.metric == "latency":
        args.metric = "delay"


def cmd_map(args) -> int:
    _mapper_metric(args)
    checks.positive_seconds("--time-limit", args.time_limit)
    env = _apply_semantics(args)
    spec = _load(args)
    if args.backend == "timeloop":
        from a3cs_plugin.hardware.backend import run_spec
        if not spec.mapper.get("optimization_metrics"):
            spec.mapper["optimization_metrics"] = [args.metric]
        d = run_spec(spec, "mapper", env=env, timeout=max(60.0, 20.0 * args.time_limit))
        d.pop("stats_file", None)
    else:
        from a3cs_plugin.hardware.mapper import search
        out = search(spec, metric=args.metric, time_limit=args.time_limit, seed=args.seed)
        from a3cs_plugin.hardware.spec.mapping import dump_mapping
        d = out.result.summary()
        d["mapping"] = dump_mapping(spec, out.mapping)
        d["search_seconds"] = float(out.search_seconds)
    if args.json:
        sys.stdout.write(json.dumps(d) + "\n")
    else:
        from a3cs_plugin.hardware.spec import to_yaml
        sys.stdout.write(_table(d) + "\n\nmapping:\n" + to_yaml({"mapping": d["mapping"]}))
    return 0


def cmd_net(args) -> int:
    from pathlib import Path
    _mapper_metric(args)

    from a3cs_plugin.agents import network_problems
    from a3cs_plugin.hardware.dnn_cost import evaluate_network

    checks.positive_seconds("--time-limit", args.time_limit)
    args.accel = [_resolve_arch(a) for a in args.accel]
    checks.out_dir("--out", args.out)
    if args.num_actions < 1 or args.batch < 1:
        raise ConfigError("--num-actions and --batch must be >= 1", key="--num-actions/--batch",
                          expected="positive integers")
    pipeline = _pipeline_arch(args)
    problems = network_problems(model=args.model, agent_arch=args.agent, num_actions=args.num_actions,
                                batch=args.batch)
    env = _apply_semantics(args)
    if pipeline is not None:
        return _cmd_net_pipeline(args, pipeline, problems)
    with _one_line_warnings():
        res = evaluate_network(args.accel, problems, ert=args.ert, art=args.art, metric=args.metric,
                               time_limit=args.time_limit, seed=args.seed, backend=args.backend,
                               backend_env=env)
    t = res.totals()
    summary = {"network": args.model or args.agent, "energy_pJ": t["energy_pJ"],
               "energy_mJ": t["energy_pJ"] * 1e-9, "cycles": t["cycles"],
               "latency_ms": t["latency_s"] * 1e3, "fps": t["fps"], "macs": t["macs"],
               "area_um2": t["area_um2"],
               "area_mm2": None if t["area_um2"] is None else t["area_um2"] * 1e-6,
               "levels_pJ": t["levels_pJ"], "clock_source": t["clock_source"],
               "layers": [{"name": l.name, "count": l.count, "macs": l.macs, "cycles": l.cycles,
                           "energy_pJ": l.energy_pJ} for l in res.layers]}
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(res.to_json())
        (out / "report.md").write_text(res.to_markdown() + "\n")
        res.plot(out / "energy.png")
    sys.stdout.write((json.dumps(summary) if args.json else res.to_markdown()) + "\n")
    return 0


_BUDGET_FLAGS = (("--pe-budget", "pe_budget", "pe_budget"), ("--area-budget", "area_budget", "area_budget_mm2"),
                 ("--onchip-bytes", "onchip_bytes", "onchip_bytes"))


def _pipeline_arch(args):
    """The pipeline description among ``--accel`` (loaded with the budget flags), or None."""
    from a3cs_plugin.hardware.pipeline import is_pipeline_file, load_pipeline

    flags = [(flag, getattr(args, dest, None), attr) for flag, dest, attr in _BUDGET_FLAGS]
    given = [f for f in flags if f[1] is not None]
    found = [a for a in args.accel if is_pipeline_file(a)]
    if not found:
        if given:
            raise ConfigError("only for pipeline descriptions (a YAML file with a top-level 'pipeline' key, "
                              "e.g. arch_specs/dnnbuilder_like.yaml)", key=given[0][0],
                              expected="--accel dnnbuilder_like.yaml", got=" ".join(args.accel))
        return None
    if len(args.accel) != 1:
        raise ConfigError("a pipeline description stands alone (its stage specs are generated)", key="--accel",
                          expected=f"only {found[0]}", got=" ".join(args.accel))
    if args.backend != "a3cs":
        raise ConfigError("pipeline descriptions are costed with the built-in model and mapper only",
                          key="--backend", expected="a3cs", got=args.backend)
    if args.ert or args.art:
        raise ConfigError("pipeline descriptions use the built-in energy/area tables", key="--ert/--art",
                          expected="no ERT/ART with a pipeline description")
    return load_pipeline(found[0], override_keys={attr: flag for flag, _, attr in given},
                         **{attr: val for _, val, attr in given})


def _cmd_net_pipeline(args, cfg, problems) -> int:
    from pathlib import Path

    from a3cs_plugin.hardware.pipeline import evaluate_pipeline

    with _one_line_warnings():
        res = evaluate_pipeline(cfg, problems, metric=args.metric, time_limit=args.time_limit, seed=args.seed)
    t = res.totals()
    summary = {"network": args.model or args.agent, "energy_pJ": t["energy_pJ"],
               "energy_mJ": t["energy_pJ"] * 1e-9, "cycles": t["cycles"],
               "latency_ms": t["latency_s"] * 1e3, "fps": t["fps"], "macs": t["macs"],
               "area_um2": t["area_um2"], "area_mm2": t["area_um2"] * 1e-6,
               "levels_pJ": t["levels_pJ"], "clock_source": t["clock_source"],
               "pipeline": res.pipeline_summary(),
               "layers": [{"name": s.name, "count": s.count, "macs": s.macs, "cycles": s.cycles,
                           "energy_pJ": s.energy_pJ, "stage": s.index, "cpf": s.cpf, "kpf": s.kpf,
                           "pes": s.pes, "stage_cycles": s.stage_cycles, "bottleneck": s.bottleneck,
                           "line_buffer_bytes": s.line_buffer_bytes, "weight_bytes": s.weight_bytes,
                           "weights_on_chip": s.weights_resident, "area_um2": s.area_um2,
                           "dram_removed_pJ": s.dram_removed_pJ}
                          for s in res.stages]}
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(res.to_json())
        (out / "report.md").write_text(res.to_markdown() + "\n")
        res.plot(out / "energy.png")
        res.write_stage_specs(out / "stages")
    sys.stdout.write((json.dumps(summary) if args.json else res.to_markdown()) + "\n")
    return 0


# fit-surrogate's defaults without --budget (as before budgets existed)
_FIT_DEFAULTS = {"samples": 2000, "heldout": None, "time_limit": 1.0, "max_evaluations": 10000, "steps": 4000,
                 "hidden": 48, "train_layers": None, "feature_version": 4, "noise_check": 0}


def cmd_fit_surrogate(args) -> int:
    import time

    import torch

    from a3cs_plugin.hardware.surrogate.fit import BUDGETS, fit_surrogate
    from a3cs_plugin.hardware.surrogate.shards import parse_shard

    shard = parse_shard(args.shard)
    base = BUDGETS[args.budget] if args.budget else _FIT_DEFAULTS
    for k, v in base.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if shard is not None and not args.cache:
        raise ConfigError("a shard needs its own label cache", key="--cache",
                          expected="--cache SHARD.jsonl with --shard (merge them with a3cs hw merge-labels)")
    checks.positive_seconds("--time-limit", args.time_limit)
    for key, val, low in (("--samples", args.samples, 20), ("--heldout", args.heldout, 1),
                          ("--workers", args.workers, 1), ("--steps", args.steps, 1),
                          ("--hidden", args.hidden, 1), ("--train-layers", args.train_layers, 4),
                          ("--max-evaluations", args.max_evaluations, 0),
                          ("--noise-check", args.noise_check, 0)):
        checks.at_least(key, val, low)
    if args.cache:
        _check_label_cache(args.cache)
    torch.set_num_threads(1)
    t0 = time.time()
    rep = fit_surrogate(args.template, args.samples, args.out, args.seed, args.time_limit, args.workers,
                        heldout=args.heldout, cache=args.cache, max_evaluations=args.max_evaluations or None,
                        steps=args.steps, hidden=args.hidden, noise_check=args.noise_check,
                        feature_version=args.feature_version, force=args.force, shard=shard,
                        budget=args.budget,
                        **({"train_layers": args.train_layers} if args.train_layers else {}))
    if args.budget and shard is None:
        sys.stdout.write(f"budget {args.budget}: {time.time() - t0:.0f} s in all (labels "
                         f"{rep['label_seconds']:.0f} s, fit {rep['fit_seconds']:.0f} s)\n")
    return 0


def _check_label_cache(path: str) -> None:
    """A label cache is JSON lines of objects with a ``key`` (the last line may be cut short)."""
    from pathlib import Path

    from a3cs_plugin.hardware.spec.yamlio import read_text
    p = Path(path)
    if not p.exists():
        return
    lines = [ln for ln in read_text(p, ConfigError).splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:   # cut by an interrupted run: relabelled
                continue
            raise ConfigError(f"line {i + 1} is not JSON", file=str(p), key="--cache",
                              expected="a label cache written by a3cs hw fit-surrogate") from None
        if not isinstance(rec, dict) or "key" not in rec:
            raise ConfigError(f"line {i + 1} is not a label record", file=str(p), key="--cache",
                              expected="a label cache written by a3cs hw fit-surrogate")


def _resolve_arch(name: str) -> str:
    """A path as given, or a bare design name (``eyeriss_like``) -> ``arch_specs/<name>.yaml``."""
    from pathlib import Path

    p = Path(name)
    if p.exists() or p.suffix in (".yaml", ".yml") or "/" in name:
        return name
    from a3cs_plugin.paths import arch_specs_dir
    shipped = arch_specs_dir() / f"{name}.yaml"
    return str(shipped) if shipped.is_file() else name
