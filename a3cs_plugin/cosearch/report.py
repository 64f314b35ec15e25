"""Plots and Markdown report of a co-search run (from the history the A3CS module records)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_history(history: Sequence[Mapping[str, Any]], out_dir: str | Path,
                 episodes: Sequence[Sequence[float]] = ()) -> list[Path]:
    """``alpha.png`` (probability of the argmax op per cell over time), ``beta.png`` (accelerator
    choice probabilities), ``cost.png`` (surrogate estimate of the derived pair, lambda) and
    ``score.png`` (training episode returns).  Returns the written paths."""
    plt = _plt()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if not history:
        return paths
    steps = [h["step"] for h in history]

    fig, ax = plt.subplots(figsize=(8, 4.5))
    last = history[-1]["alpha"]
    for label in sorted(last):
        op = max(last[label], key=last[label].get)
        ax.plot(steps, [h["alpha"][label][op] for h in history], label=f"{label}:{op}")
    ax.set_xlabel("update")
    ax.set_ylabel("softmax(alpha) of final op")
    ax.set_title("agent architecture probabilities")
    if last:
        ax.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:       # DAS: a fixed agent, only beta is searched
        ax.text(0.5, 0.5, "fixed agent: no architecture search (hardware-only, DAS)", ha="center",
                va="center", transform=ax.transAxes)
    fig.tight_layout()
    paths.append(out / "alpha.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    beta = history[-1]["beta"]
    cols = min(4, len(beta))
    rows = -(-len(beta) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, (name, dist) in zip(axes.flat, beta.items()):
        for value in dist:
            ax.plot(steps, [h["beta"][name][value] for h in history], label=str(value))
        ax.set_title(name, fontsize=9)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(beta):]:
        ax.axis("off")
    fig.suptitle("accelerator parameter probabilities softmax(beta) vs update")
    fig.tight_layout()
    paths.append(out / "beta.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    axes[0].plot(steps, [h.get("derived_energy_pJ", float("nan")) * 1e-9 for h in history])
    axes[0].set_title("derived energy (mJ, surrogate)")
    axes[1].plot(steps, [h.get("derived_fps", float("nan")) for h in history])
    axes[1].set_title("derived FPS (surrogate)")
    axes[2].plot(steps, [h.get("lambda", float("nan")) for h in history])
    axes[2].set_title("lambda")
    for a in axes:
        a.set_xlabel("update")
    fig.tight_layout()
    paths.append(out / "cost.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for key, label in (("grad_alpha_task", "|grad alpha| task (RL + distillation)"),
                       ("grad_alpha_hw", "|grad alpha| lambda x hardware"),
                       ("grad_beta_hw", "|grad beta| lambda x hardware")):
        pts = [(h["step"], h[key]) for h in history if h.get(key)]
        if pts:
            ax.plot(*zip(*pts), label=label)
    ax.set_xlabel("update")
    ax.set_title("gradient norms per update (mean over minibatch steps)")
    if ax.lines:
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "grads.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    if episodes:
        ax.plot([e[0] for e in episodes], [e[1] for e in episodes], ".", alpha=0.5, label="episode")
    ax.set_xlabel("frames")
    ax.set_ylabel("training return (clipped)")
    ax.set_title("score during search")
    fig.tight_layout()
    paths.append(out / "score.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _score(r: Mapping[str, Any]) -> str:
    if r.get("score") is None:
        return "n/a"
    std = r.get("score_std")
    return f"{r['score']:.2f} ± {std:.2f}" if std is not None else f"{r['score']:.2f}"


def outcome_rows(report: Mapping[str, Any], markdown_table: bool = False) -> list[str]:
    """The outcome table (derived, teacher, random; plus each hand-designed baseline): score ±
    std over the evaluation episodes, normalized score, FPS, energy per inference, area."""
    d = report.get("derived") or {}
    t = report.get("teacher") or {}
    rnd = report.get("random") or {}
    accel = "searched accelerator"
    name = "derived agent" if report.get("scheme") != "das" else f"{report.get('agent')}"
    rows = [(name, accel, d, d.get("normalized_score")),
            ("teacher", accel, t, 1.0 if t.get("score") is not None else None),
            ("random agent", "-", rnd, 0.0 if rnd.get("score") is not None else None)]
    for spec_name, b in (report.get("baselines") or {}).items():
        rows.append((rows[0][0], spec_name, {**b.get("derived", {}), "score": d.get("score"),
                                        "score_std": d.get("score_std")}, d.get("normalized_score")))
        if b.get("teacher"):
            rows.append(("teacher", spec_name, {**b["teacher"], "score": t.get("score"),
                                           "score_std": t.get("score_std")}, 1.0 if t else None))
    ep = (report.get("eval") or {}).get("episodes") or d.get("episodes")
    head = ["agent", "accelerator", f"score ({ep} ep.)", "normalized", "FPS", "mJ/inference", "area mm^2"]
    body = [[a, acc, _score(r), _fmt(ns), _fmt(r.get("fps")),
             _fmt(r.get("energy_mJ")), _fmt(r.get("area_mm2"))] for a, acc, r, ns in rows if r]
    if markdown_table:
        return ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * 5] + \
            ["| " + " | ".join(row) + " |" for row in body]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    return ["  ".join(x.ljust(w) for x, w in zip(row, widths)) for row in [head] + body]


def markdown(report: Mapping[str, Any]) -> str:
    """``report.md`` text from the ``report.json`` content."""
    s = report.get("search", {})
    ev = report.get("eval") or {}
    ft = report.get("finetune")
    lines = [f"# A3C-S co-search: {report.get('game')}", "",
             f"scheme `{report.get('scheme')}` (distillation {'on' if report.get('distill') else 'off'}), "
             f"optimisation `{report.get('mode')}`, {report.get('algo')}, template `{report.get('template')}`, "
             f"metric `{report.get('metric')}`, final lambda {_fmt(report.get('lambda_final'))}, "
             f"area budget {_fmt(report.get('area_budget_mm2'))} mm^2, fixed {report.get('fixed')}.", "",
             f"Search: {s.get('frames', 0):,} emulator frames, {s.get('updates', 0)} updates "
             f"({s.get('warmup_updates', 0)} weight-only warm-up), {s.get('wall_s', 0):.0f} s wall in all.",
             (f"Fine-tune of the derived agent: {ft['frames']:,} frames (`finetune/agent.pt`)." if ft else
              "No fine-tune of the derived agent."), "",
             *outcome_rows(report, markdown_table=True), "",
             f"Scores: mean ± std of the unclipped game score over {ev.get('episodes')} full games "
             f"({'greedy' if ev.get('greedy') else 'sampled'} actions, seed {ev.get('seed')}), the same "
             "protocol for every agent; normalized = (score - random) / (teacher - random).",
             "Hardware numbers: the real engine + mapper on the searched accelerator (`accelerator.yaml`) "
             "and on each hand-designed baseline spec"
             + (" (kept from the finished run: resumed with --no-recost)." if report.get("recost_kept") else ".")
             if report.get("recosted") else
             "Hardware numbers: not re-costed with the mapper (surrogate estimates in report.json).", "",
             "## Derived agent (`arch.json`)", "",
             "```", *(f"{k}: {v}" for k, v in report.get("arch", {}).items()), "```", "",
             "## Derived accelerator", "",
             "```", *(f"{k}: {v}" for k, v in report.get("accelerator", {}).items()), "```", "",
             "Plots: `alpha.png`, `beta.png`, `cost.png`, `score.png`, `grads.png`; TensorBoard scalars in "
             "`tb/`.", ""]
    return "\n".join(lines)
