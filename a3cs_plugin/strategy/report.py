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
    ax.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
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


def markdown(report: Mapping[str, Any]) -> str:
    """``report.md`` text from the ``report.json`` content."""
    rows = ["| agent | score | FPS | energy (mJ/inference) | latency (ms) | area (mm^2) |",
            "|---|---:|---:|---:|---:|---:|"]
    for key in ("derived", "teacher"):
        r = report.get(key)
        if r:
            rows.append(f"| {key} | {_fmt(r.get('score'))} | {_fmt(r.get('fps'))} | {_fmt(r.get('energy_mJ'))} | "
                        f"{_fmt(r.get('latency_ms'))} | {_fmt(r.get('area_mm2'))} |")
    s = report.get("search", {})
    lines = [f"# A3C-S co-search: {report.get('game')}", "",
             f"mode `{report.get('mode')}`, template `{report.get('template')}`, metric `{report.get('metric')}`, "
             f"{s.get('frames', 0):,} frames, {s.get('updates', 0)} updates, {s.get('wall_s', 0):.0f} s.", "",
             *rows, "",
             "Both agents are costed on the searched accelerator (`accelerator.yaml`) with the mapper;",
             "scores are mean game scores over the evaluation episodes.", "",
             "## Derived agent (`arch.json`)", "",
             "```", *(f"{k}: {v}" for k, v in report.get("arch", {}).items()), "```", "",
             "## Derived accelerator", "",
             "```", *(f"{k}: {v}" for k, v in report.get("accelerator", {}).items()), "```", "",
             "Plots: `alpha.png`, `beta.png`, `cost.png`, `score.png`; TensorBoard scalars in `tb/`.", ""]
    return "\n".join(lines)
