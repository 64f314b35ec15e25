"""Fit a surrogate for a design-space template on mapper labels and report held-out accuracy.

Training pairs: layers of the ``train`` mix (seed ``seed``) x uniformly sampled accelerator points.
Held-out pairs: layers of the ``heldout`` mix (other channel counts / map sizes, seed ``seed + 1000``)
x points from another random stream. Accuracy: Spearman rank correlation and mean absolute
percentage error (MAPE) of energy and cycles on the held-out pairs.
"""
from __future__ import annotations

import copy
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ...errors import ConfigError
from .features import NUM_FEATURES, layer_features
from .labels import generate_labels
from .layers import layer_mix
from .inputs import check_feature_version
from .model import Surrogate

__all__ = ["fit_surrogate", "train_surrogate", "accuracy", "exact_tables", "mesh_parameters", "BUDGETS"]

HELDOUT_SEED_OFFSET = 1000
TRAIN_LAYERS = 2000   # distinct training layers (shipped fits before 2026-12: 600)
HELDOUT_LAYERS = 200

#: ``a3cs hw fit-surrogate --budget``: ``full`` is the protocol of the shipped fits (13000 + 400
#: labels, see surrogates/eyeriss_like.md); ``quick`` labels a prefix of the same pair sequence with
#: the same mapper settings (so a later full fit on the same cache reuses its labels) and trains
#: shorter -- about 10 minutes on 2 cores. Flags given explicitly override a budget's values.
BUDGETS = {
    "full": {"samples": 13000, "heldout": 400, "time_limit": 3.0, "max_evaluations": 10000,
             "steps": 8000, "hidden": 48, "train_layers": TRAIN_LAYERS, "feature_version": 4,
             "noise_check": 60},
    "quick": {"samples": 1200, "heldout": 200, "time_limit": 3.0, "max_evaluations": 10000,
              "steps": 3000, "hidden": 48, "train_layers": TRAIN_LAYERS, "feature_version": 4,
              "noise_check": 0},
}


def mesh_parameters(space) -> list[str]:
    """Parameters that set a ``spatial`` meshX / meshY of the template."""
    import re
    found: list[str] = []

    def walk(obj, under_spatial=False):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, under_spatial or k == "spatial")
        elif isinstance(obj, list):
            for v in obj:
                walk(v, under_spatial)
        elif under_spatial and isinstance(obj, str) and "${" in obj:
            for name in re.findall(r"[A-Za-z_]\w*", obj):
                if name in space.parameters and name not in found:
                    found.append(name)
    walk(space.architecture)
    return [n for n in space.parameters if n in found]


def exact_tables(space, fn, rng_seed: int = 0, probes: int = 4):
    """Table of ``fn(point)`` over the parameters it depends on (found by varying each parameter
    at a few random base points); returns ``(param_indices, np.ndarray)``."""
    names = space.names
    rng = np.random.default_rng(rng_seed)
    bases = [space.default_point()] + [space.sample(rng) for _ in range(probes)]
    deps = []
    for i, n in enumerate(names):
        p = space.parameters[n]
        for base in bases:
            vals = {fn({**base, n: c}) for c in p.choices}
            if len({round(v, 12) for v in vals}) > 1:
                deps.append(i)
                break
    base = space.default_point()
    shape = [space.parameters[names[i]].size for i in deps]
    table = np.zeros(shape, dtype=np.float64)
    for idx in itertools.product(*[range(s) for s in shape]):
        pt = dict(base)
        for i, j in zip(deps, idx):
            pt[names[i]] = space.parameters[names[i]].choices[j]
        table[idx] = fn(pt)
    return deps, table


def area_table(space, rng_seed: int = 0, probes: int = 4):
    """:func:`exact_tables` of ``space.area`` built from its sum over components: each component's
    term (instances x area of one instance) is tabulated over only the parameters it depends on and
    the terms are summed by broadcasting, so a template with many sized buffers costs a few hundred
    renders instead of one per point of the whole grid. Checked against ``space.area`` on random
    points (a mismatch falls back to the full grid)."""
    from ..space.area import component_area_um2
    names = space.names
    rng = np.random.default_rng(rng_seed)
    bases = [space.default_point()] + [space.sample(rng) for _ in range(probes)]

    def terms(point):
        out: dict[str, float] = {}
        for name, cls, attrs, inst in space.components(point):
            out[name] = out.get(name, 0.0) + component_area_um2(cls, attrs) * inst / 1e6
        return out

    comps = list(terms(bases[0]))
    dep_of: dict[str, list[int]] = {c: [] for c in comps}
    for i, n in enumerate(names):
        p = space.parameters[n]
        for base in bases:
            rows = [terms({**base, n: ch}) for ch in p.choices]
            for c in comps:
                if i not in dep_of[c] and len({round(r.get(c, 0.0), 12) for r in rows}) > 1:
                    dep_of[c].append(i)
    deps = sorted({i for d in dep_of.values() for i in d})
    shape = [space.parameters[names[i]].size for i in deps]
    table = np.zeros(shape, dtype=np.float64)
    base = space.default_point()
    for c in comps:
        ds = sorted(dep_of[c])
        sub = np.zeros([space.parameters[names[i]].size for i in ds], dtype=np.float64)
        for idx in itertools.product(*[range(space.parameters[names[i]].size) for i in ds]):
            pt = dict(base)
            for i, j in zip(ds, idx):
                pt[names[i]] = space.parameters[names[i]].choices[j]
            sub[idx] = terms(pt).get(c, 0.0)
        view = [space.parameters[names[i]].size if i in ds else 1 for i in deps]
        table = table + sub.reshape(view)
    for pt in [space.sample(rng) for _ in range(8)]:
        got = table[tuple(space.parameters[names[i]].index(pt[names[i]]) for i in deps)]
        want = space.area(pt)
        if abs(got - want) > 1e-9 * max(1.0, abs(want)):
            return exact_tables(space, space.area, rng_seed, probes)
    return deps, table


def _dataset(space, records):
    x, a, y, keep = [], [], [], []
    for rec in records:
        ok = "error" not in rec and rec.get("energy_pJ", 0) > 0 and rec.get("cycles", 0) > 0
        keep.append(ok)
        if not ok:
            continue
        x.append(layer_features({"instance": rec["instance"]}))
        a.append(space.encode(rec["point"]))
        y.append([math.log2(rec["energy_pJ"]), math.log2(rec["cycles"])])
    if not x:
        return None
    return (torch.tensor(np.stack(x)), torch.tensor(np.stack(a)), torch.tensor(y, dtype=torch.float32),
            np.asarray(keep))


def accuracy(model: Surrogate, x, a, y) -> dict:
    """Spearman and MAPE (%) of energy and cycles; ``y`` holds log2 labels ``[N, 2]``."""
    from scipy.stats import spearmanr
    with torch.no_grad():
        pred = model.predict_log2(x, a)
    out = {"n": int(x.shape[0])}
    for j, name in enumerate(("energy", "cycles")):
        t = np.exp2(y[:, j].double().numpy())
        p = np.exp2(pred[:, j].double().numpy())
        out[f"{name}_spearman"] = float(spearmanr(t, p).statistic)
        out[f"{name}_mape_pct"] = float(np.mean(np.abs(p - t) / t) * 100)
        out[f"{name}_p90_ape_pct"] = float(np.percentile(np.abs(p - t) / t * 100, 90))
    return out


def train_surrogate(space, x, a, y, *, seed: int = 0, hidden: int = 48, depth: int = 2,
                    steps: int = 2000, lr: float = 3e-3, weight_decay: float = 1e-4,
                    val_frac: float = 0.1, extra_config: dict | None = None,
                    loss_kind: str = "l1", log=None, feature_version: int = 4,
                    activation: str = "silu", progress: bool = False) -> tuple[Surrogate, dict]:
    """Fit a :class:`Surrogate` on log2 labels (full-batch Adam, best validation step kept)."""
    torch.manual_seed(seed)
    config = {"template": space.name, "param_names": space.names,
              "param_choices": [list(p.choices) for p in space.parameters.values()],
              "mesh_params": mesh_parameters(space), "hidden": hidden, "depth": depth,
              "feature_version": feature_version, "activation": activation, **(extra_config or {})}
    check_feature_version(feature_version)
    if feature_version >= 4 and "util" not in config:
        from .utilization import spatial_slots
        config["util"] = spatial_slots(space, bandwidth=True)
    model = Surrogate(config)
    n = x.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(round(n * val_frac))) if n >= 20 else 0
    val, tr = perm[:n_val], perm[n_val:]
    with torch.no_grad():
        model.x_mean.copy_(x[tr].mean(0))
        model.x_std.copy_(x[tr].std(0).clamp_min(1e-3))
        z = model._inputs(x[tr], a[tr])[:, NUM_FEATURES + a.shape[1]:]
        model.z_mean.copy_(z.mean(0))
        model.z_std.copy_(z.std(0).clamp_min(1e-3))
        base = model.baseline(x, a)
        t = y[tr] - base[tr]
        model.y_mean.copy_(t.mean(0))
        model.y_std.copy_(t.std(0).clamp_min(1e-3))
    opt = torch.optim.AdamW(model.net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    best, best_state, best_step = float("inf"), None, 0
    yn = (y - model.y_mean - base) / model.y_std

    def loss_on(idx):
        pred = (model.predict_log2(x[idx], a[idx]) - model.y_mean - base[idx]) / model.y_std
        r = pred - yn[idx]
        if loss_kind == "l1":   # closer to the MAPE goal than squares; smooth near zero
            return torch.nn.functional.smooth_l1_loss(pred, yn[idx], beta=0.002)
        return (r ** 2).mean()

    import sys

    from tqdm.auto import tqdm
    bar = tqdm(total=steps, desc=f"{space.name} fit", unit="step", disable=not (progress and sys.stderr.isatty()))
    for step in range(steps):
        bar.update(1)
        model.train()
        opt.zero_grad()
        loss = loss_on(tr)
        loss.backward()
        opt.step()
        sched.step()
        if step % 25 == 0 or step == steps - 1:
            with torch.no_grad():
                v = float(loss_on(val)) if n_val else float(loss)
            if v < best:
                best, best_state, best_step = v, copy.deepcopy(model.state_dict()), step
            bar.set_postfix(val=f"{v:.4f}", refresh=False)
            if log and step % 500 == 0:
                log(f"step {step}: train {float(loss.detach()):.4f} val {v:.4f}")
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    return model, {"steps": steps, "loss": "smooth L1 (beta 0.002) on standardised log2" if loss_kind == "l1"
                   else "MSE on standardised log2", "best_step": best_step, "val_loss": best, "n_train": int(len(tr)),
                   "n_val": int(n_val)}


def _pairs(space, layers, n, rng):
    out = []
    for _ in range(n):
        out.append((space.sample(rng), layers[int(rng.integers(len(layers)))]))
    return out


PACKAGED_DIR = Path(__file__).resolve().parents[2] / "surrogates"


def check_out(out: Path, force: bool = False) -> Path:
    """The surrogate file to write: not a directory, and not a shipped surrogate (its ``.pt``,
    ``.json`` or ``.md`` in the package) unless ``force``."""
    out = Path(out)
    if out.is_dir():
        raise ConfigError("is a directory", file=str(out), key="--out", expected="a .pt file path")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{parent} is a file", file=str(out), key="--out",
                                  expected="a .pt file path in a directory")
            break
    files = [out, out.with_suffix(".json"), out.with_suffix(".md")]
    packaged = out.resolve().parent == PACKAGED_DIR.resolve() and any(f.exists() for f in files)
    if packaged and not force:
        raise ConfigError("refusing to replace a surrogate that ships with a3cs", file=str(out),
                          key="--out", expected="another --out path, or --force to replace it")
    return out


def _rate_line(r: dict) -> str:
    m = r.get("mapper", {})
    if not m.get("labels_per_second"):
        return ""
    return (f" At that speed {m['workers']} label processes give {m['labels_per_second']:.2f} labels/s: "
            f"the full protocol's 13,400 labels take about {m['seconds_for_13k_labels'] / 60:.0f} min.")


def fit_surrogate(template: str = "eyeriss_like", samples: int = 2000, out: str | Path | None = None,
                  seed: int = 0, time_limit_per_point: float = 1.0, workers: int = 2, *,
                  heldout: int | None = None, cache: str | Path | None = None,
                  max_evaluations: int | None = 10000, progress: bool = True, steps: int = 2000,
                  hidden: int = 48, noise_check: int = 0, train_layers: int = TRAIN_LAYERS,
                  feature_version: int = 4, print_fn=print, force: bool = False,
                  shard: tuple[int, int] | None = None, budget: str | None = None) -> dict:
    """Label, fit, evaluate and save a surrogate; returns the report dict.

    Writes ``out`` (``.pt``; default ``<template>.pt`` in the working directory), ``out`` with
    ``.json`` and ``.md`` (the report); a surrogate that ships with a3cs (in the package's
    ``surrogates/``) is only replaced with ``force``. ``cache`` (JSON lines)
    defaults to ``runs/surrogate_labels/<template>.jsonl``; labels already there are reused.
    Each label is the mapper's best EDP mapping after ``max_evaluations`` mappings (reproducible
    on a busy machine), cut at ``time_limit_per_point`` seconds; ``max_evaluations=None`` stops on
    the time limit only. ``noise_check``: re-label that many held-out pairs with another mapper
    seed and report how far the two labels differ (the floor any surrogate of these labels can
    reach). ``shard=(i, n)``: only label shard i of n of the pair sequence into ``cache`` and
    return ``{"shard", "pairs", "total", "cache", "failed"}`` (nothing is fitted or written besides
    the cache; see :mod:`.shards`).
    """
    import warnings

    from ..spec.frontend import SplitWarning
    # a spec's split warnings show where it is modelled; per label and probe they would only repeat
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitWarning)
        return _fit_surrogate(template, samples, out, seed, time_limit_per_point, workers, heldout=heldout,
                              cache=cache, max_evaluations=max_evaluations, progress=progress, steps=steps,
                              hidden=hidden, noise_check=noise_check, train_layers=train_layers,
                              feature_version=feature_version, print_fn=print_fn, force=force, shard=shard,
                              budget=budget)


def _fit_surrogate(template, samples, out, seed, time_limit_per_point, workers, *, heldout, cache,
                   max_evaluations, progress, steps, hidden, noise_check, train_layers, feature_version,
                   print_fn, force, shard, budget=None) -> dict:
    from ..space import DesignSpace
    if samples < 20:
        raise ConfigError("too few samples", key="--samples", expected=">= 20", got=samples)
    check_feature_version(feature_version)     # before any labelling
    t_start = time.time()
    space = DesignSpace.from_template(template)
    if shard is None:
        out = check_out(Path(out) if out else Path.cwd() / f"{space.name}.pt", force)
    cache = Path(cache) if cache else Path("runs") / "surrogate_labels" / f"{space.name}.jsonl"
    heldout = heldout or max(100, samples // 5)
    rng = np.random.default_rng(seed)
    # fixed layer pools: a larger `samples` extends the same pair sequence (labels are reused)
    if train_layers < 4:
        raise ConfigError("too few training layers", key="--train-layers", expected=">= 4", got=train_layers)
    n_train_layers = train_layers
    train_layers = layer_mix("train", train_layers, seed)
    train_pairs = _pairs(space, train_layers, samples, rng)
    hrng = np.random.default_rng(seed + HELDOUT_SEED_OFFSET)
    held_layers = layer_mix("heldout", HELDOUT_LAYERS, seed + HELDOUT_SEED_OFFSET)
    held_pairs = _pairs(space, held_layers, heldout, hrng)

    kw = dict(cache=cache, metric="edp", time_limit=time_limit_per_point, seed=seed, workers=workers,
              progress=progress, max_evaluations=max_evaluations)
    if shard is not None:
        return _label_shard(space, template, shard, train_pairs, held_pairs, noise_check, kw, print_fn)
    t0 = time.time()
    # the template as given (a file path or a shipped name): label workers load it by that
    train_rec = generate_labels(str(template), train_pairs, desc=f"{space.name} train labels", **kw)
    held_rec = generate_labels(str(template), held_pairs, desc=f"{space.name} held-out labels", **kw)
    label_s = time.time() - t0
    other = None
    if noise_check:
        other = generate_labels(str(template), held_pairs[:noise_check], desc="label noise check",
                                **{**kw, "seed": seed + 1})
    tr = _dataset(space, train_rec)
    ho = _dataset(space, held_rec)
    if tr is None or ho is None:
        errs = [r["error"] for r in train_rec + held_rec if "error" in r][:1]
        raise ConfigError(f"no valid labels for template '{space.name}'", key="template",
                          expected="accelerator points the mapper can map", got=errs[0] if errs else None)

    noise = None
    if noise_check:
        pairs_ok = [(a, b) for a, b in zip(held_rec[:noise_check], other)
                    if "error" not in a and "error" not in b]
        noise = {"n": len(pairs_ok), "mapper_seeds": [seed, seed + 1]}
        for k, name in (("energy_pJ", "energy"), ("cycles", "cycles")):
            x = np.array([a[k] for a, _ in pairs_ok])
            y = np.array([b[k] for _, b in pairs_ok])
            noise[f"{name}_mape_pct"] = float(np.mean(np.abs(y - x) / x) * 100) if len(x) else None

    area_params, area = area_table(space, seed)
    period_params, period = exact_tables(space, lambda p: 1.0 / space.clock_hz(p), seed)
    t1 = time.time()
    model, fit_info = train_surrogate(space, tr[0], tr[1], tr[2], seed=seed, steps=steps,
                                      hidden=hidden, feature_version=feature_version, extra_config={
                                          "area_params": area_params, "period_params": period_params},
                                      progress=progress,
                                      log=(lambda m: print_fn(f"[fit] {m}")) if progress else None)
    with torch.no_grad():
        model.area_table.copy_(torch.tensor(area, dtype=torch.float32))
        model.period_table.copy_(torch.tensor(period, dtype=torch.float32))
    fit_s = time.time() - t1
    held_acc = accuracy(model, ho[0], ho[1], ho[2])
    train_acc = accuracy(model, tr[0], tr[1], tr[2])
    wall = [r.get("wall_s", 0.0) for r in train_rec + held_rec]
    report = {
        "template": space.name, "surrogate": str(out.name), "seed": seed,
        "samples": samples, "heldout_samples": heldout,
        "valid_train": int(tr[3].sum()), "valid_heldout": int(ho[3].sum()),
        "failed_labels": int((~tr[3]).sum() + (~ho[3]).sum()),
        "mapper": {"metric": "edp", "time_limit_per_point_s": time_limit_per_point,
                   "max_evaluations": max_evaluations, "seed": seed,
                   "mean_seconds_per_point": float(np.mean(wall)) if wall else 0.0,
                   "total_mapping_seconds": float(np.sum(wall)) if wall else 0.0,
                   "workers": int(workers),
                   # the rate at this mapper speed with all label processes busy, and what the
                   # full protocol's 13,400 labels cost at it
                   "labels_per_second": (workers / float(np.mean(wall))) if wall and np.mean(wall) > 0 else None,
                   "seconds_for_13k_labels": (13_400 * float(np.mean(wall)) / workers)
                   if wall else None},
        "layers": {"train_layers_requested": n_train_layers,
                   "train_mix": f"train (seed {seed}), {len(train_layers)} layers",
                   "heldout_mix": f"heldout (seed {seed + HELDOUT_SEED_OFFSET}), {len(held_layers)} layers"},
        "heldout": held_acc, "train": train_acc, "fit": fit_info, "label_noise": noise,
        "model": {"hidden": hidden, "depth": int(model.config.get("depth", 2)), "inputs": model.n_in,
                  "activation": model.config.get("activation", "silu"),
                  "feature_version": int(model.config.get("feature_version", 1)),
                  "mesh_params": model.mesh_params,
                  "parameters": int(sum(p.numel() for p in model.net.parameters()))},
        "area_params": [space.names[i] for i in area_params],
        "label_seconds": round(label_s, 1), "fit_seconds": round(fit_s, 1),
        "total_seconds": round(time.time() - t_start, 1),
        "goal": {"spearman": 0.98, "mape_pct": 5.0},
        "budget": _budget_note(budget, samples, heldout, steps, noise_check),
    }
    model.config["report"] = {k: report[k] for k in ("heldout", "seed", "samples")}
    model.heldout = {"x": ho[0], "a": ho[1], "y": ho[2]}
    model.save(out)
    Path(out).with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    Path(out).with_suffix(".md").write_text(report_markdown(report))
    h = held_acc
    print_fn(f"{space.name}: held-out n={h['n']}  energy Spearman {h['energy_spearman']:.4f} "
             f"MAPE {h['energy_mape_pct']:.2f}%  |  cycles Spearman {h['cycles_spearman']:.4f} "
             f"MAPE {h['cycles_mape_pct']:.2f}%  -> {out}")
    return report


def _budget_note(budget, samples, heldout, steps, noise_check) -> dict | None:
    """``{"name", "matches"}``: the --budget asked for and whether the counts are its own."""
    if budget is None:
        return None
    b = BUDGETS[budget]
    same = (samples, heldout, steps, noise_check) == (b["samples"], b["heldout"], b["steps"], b["noise_check"])
    return {"name": budget, "matches": bool(same)}


def _label_shard(space, template, shard, train_pairs, held_pairs, noise_check, kw, print_fn) -> dict:
    """Label shard ``(i, n)`` of the pair sequence (train, held-out, noise-check pairs)."""
    from .shards import shard_indices
    seq = ([(p, kw["seed"]) for p in train_pairs] + [(p, kw["seed"]) for p in held_pairs]
           + [(p, kw["seed"] + 1) for p in held_pairs[:noise_check]])
    mine = [seq[j] for j in shard_indices(len(seq), shard)]
    recs = []
    for s in sorted({s for _, s in mine}):
        pairs = [p for p, s2 in mine if s2 == s]
        recs += generate_labels(str(template), pairs, desc=f"{space.name} shard {shard[0]}/{shard[1]}",
                                **{**kw, "seed": s})
    failed = sum(1 for r in recs if "error" in r)
    print_fn(f"{space.name}: shard {shard[0]}/{shard[1]}: {len(mine)} of {len(seq)} pairs labelled "
             f"({failed} without a mapping) -> {kw['cache']}")
    return {"shard": list(shard), "pairs": len(mine), "total": len(seq), "cache": str(kw["cache"]),
            "failed": failed}


def report_markdown(r: dict) -> str:
    h, t = r["heldout"], r["train"]
    lines = [
        f"# Surrogate `{r['surrogate']}` (template `{r['template']}`)", "",
        f"Labels: a3cs mapper (metric {r['mapper']['metric']}, cut at {r['mapper']['time_limit_per_point_s']} s "
        f"per point, max evaluations {r['mapper']['max_evaluations']}, seed {r['mapper']['seed']}), "
        f"{r['valid_train']} training and {r['valid_heldout']} held-out (layer, accelerator) pairs "
        f"({r['failed_labels']} without a valid mapping, dropped). Mean {r['mapper']['mean_seconds_per_point']:.2f} s "
        f"per label, {r['mapper'].get('total_mapping_seconds', 0):.0f} s of mapping in all (one core, "
        f"shared machine); this run: labels {r['label_seconds']} s (cached labels reused), "
        f"fitting {r['fit_seconds']} s." + _rate_line(r), "",
        f"Training layers: {r['layers']['train_mix']}; held-out layers: {r['layers']['heldout_mix']} "
        "(different channel counts and feature-map sizes, different random stream).", "",
        "| set | n | energy Spearman | energy MAPE % | energy P90 APE % | cycles Spearman | cycles MAPE % | cycles P90 APE % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, a in (("held-out", h), ("train", t)):
        lines.append(f"| {name} | {a['n']} | {a['energy_spearman']:.4f} | {a['energy_mape_pct']:.2f} | "
                     f"{a['energy_p90_ape_pct']:.2f} | {a['cycles_spearman']:.4f} | "
                     f"{a['cycles_mape_pct']:.2f} | {a['cycles_p90_ape_pct']:.2f} |")
    ok = lambda a: (a["energy_spearman"] >= 0.98 and a["cycles_spearman"] >= 0.98  # noqa: E731
                    and a["energy_mape_pct"] <= 5 and a["cycles_mape_pct"] <= 5)
    nz = r.get("label_noise")
    if nz:
        lines += ["", f"Label noise: the same {nz['n']} held-out pairs mapped with mapper seeds "
                      f"{nz['mapper_seeds'][0]} and {nz['mapper_seeds'][1]} differ by "
                      f"{nz['energy_mape_pct']:.2f} % (energy) and {nz['cycles_mape_pct']:.2f} % (cycles) "
                      "mean absolute percentage."]
    m, fit = r["mapper"], r["fit"]
    cmd = (f"a3cs hw fit-surrogate --template {r['template']} --samples {r['samples']} "
           f"--heldout {r['heldout_samples']} --seed {r['seed']} --time-limit {m['time_limit_per_point_s']:g} "
           f"--max-evaluations {m['max_evaluations'] or 0} --steps {fit['steps']} "
           f"--hidden {r['model']['hidden']}")
    n_layers = r["layers"].get("train_layers_requested")
    if not n_layers:   # reports written before the flag existed: the count in the mix description
        import re
        found = re.search(r"(\d+) layers", r["layers"]["train_mix"])
        n_layers = int(found.group(1)) if found else None
    if n_layers:
        cmd += f" --train-layers {n_layers}"
    cmd += f" --feature-version {r['model'].get('feature_version', 1)}"
    if nz:
        cmd += f" --noise-check {nz['n']}"
    b = r.get("budget")
    if b:
        full = BUDGETS["full"]
        lines += ["", f"Budget: `{b['name']}`" + ("" if b["matches"] else
                  f" with other counts (the run above: {r['samples']} + {r['heldout_samples']} labels, "
                  f"{fit['steps']} steps)") + f"; the full protocol is {full['samples']} + {full['heldout']} "
                  f"labels, {full['steps']} steps, a {full['noise_check']}-pair noise check."]
    lines += ["", "Reproduce (labels are cached in `runs/surrogate_labels/`; `--workers` sets the label "
                  "processes and does not change the labels; the fit goes to "
                  f"`{r['template']}.pt` in the working directory, and `--out "
                  f"a3cs_plugin/surrogates/{r['template']}.pt --force` replaces the shipped one):",
              "", f"    {cmd}"]
    sp_ok = h["energy_spearman"] >= 0.98 and h["cycles_spearman"] >= 0.98
    lines += ["", f"Goal (Spearman >= 0.98, MAPE <= 5 %) on held-out: **{'met' if ok(h) else 'not met'}** "
                  f"(Spearman {'met' if sp_ok else 'not met'}).",
              "", f"Model: MLP {r['model']['inputs']} -> {r['model']['hidden']} x {r['model']['depth']} -> 2 "
              f"({r['model']['parameters']} weights; inputs: layer features, choice probabilities, "
              f"expected log2 parameter values, expected largest divisors fitting the "
              f"{' / '.join(r['model']['mesh_params'])} mesh, per axis and jointly, for single "
              f"dimensions and for the dimension products a dataflow can spread over the array"
              + ("; and the exact compute bound: the most PEs any mapping can fill for each mesh x "
                 "dataflow choice, read from the mapper's map space, also the cycles baseline "
                 "log2(MACs / bound)" if r['model'].get('feature_version', 1) >= 3 else "")
              + ("; the bound also counts the words a single-instance buffer with finite bandwidth "
                 "must move (every word of each tensor it keeps, at least once)"
                 if r['model'].get('feature_version', 1) >= 4 else "")
              + f"; loss: {r['fit'].get('loss', 'MSE')}, {r['fit']['steps']} steps). Area is an exact table over "
              f"{', '.join(r['area_params']) or '(no parameter)'}.", ""]
    return "\n".join(lines)
