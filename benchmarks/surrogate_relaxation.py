"""Is the surrogate valid where the co-search evaluates it?  Relaxed (soft) inputs vs concrete designs.

The surrogate is fitted on one-hot designs.  A search that fed it a soft mix of choices (a
softmax or soft Gumbel sample) would read it where it was never fitted: its value at a soft input
``f(p)`` is not the expected cost over concrete designs ``E_{d ~ p}[f(d)]``.  The co-search
therefore evaluates it on *hard* straight-through Gumbel samples (concrete designs drawn from
softmax(beta); see ``A3CSModule.beta_probs``): the value is always a fitted, one-hot input, and
its mean over samples is exactly ``E_{d ~ p}[f(d)]``.

This script measures, on the surrogate's held-out layers, for random choice distributions ``p``
(softmax of N(0, s^2) logits per parameter, s = 0.5 / 1 / 2 / 4: near-uniform to near-one-hot):

* ``soft``: MAPE of ``f(p)`` against ``E_{d ~ p}[f(d)]`` (Monte-Carlo over concrete designs) --
  the error of feeding relaxed inputs, which the search no longer does;
* ``hard (K)``: MAPE of the K-sample hard estimate the search uses (K = ``search.beta_samples``,
  default 4) against the same expectation -- zero-mean sampling noise, not a bias.

The one-hot (fitted) error against the mapper is the held-out MAPE in ``surrogates/*.md``.

    python benchmarks/surrogate_relaxation.py --template eyeriss_like [--write]

``--write`` puts the table into ``a3cs_plugin/surrogates/<template>.md`` (section "Relaxed inputs").
"""
from __future__ import annotations

import argparse
import re
import sys

import torch


def one_hot_samples(probs: dict[str, torch.Tensor], n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {k: torch.nn.functional.one_hot(torch.multinomial(p, n, replacement=True, generator=gen),
                                           p.numel()).float() for k, p in probs.items()}


def measure(template: str, *, layers: int = 100, dists: int = 8, mc: int = 512, k: int = 4,
            seed: int = 0) -> list[dict]:
    from a3cs_plugin.hardware.surrogate import Surrogate
    s = Surrogate.load(template)
    x = s.heldout["x"]
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(x.shape[0], generator=gen)[:layers]
    x = x[idx]
    rows = []
    for sigma in (0.5, 1.0, 2.0, 4.0):
        soft_e, soft_c, hard_e, hard_c = [], [], [], []
        for _ in range(dists):
            probs = {n: torch.softmax(torch.randn(sz, generator=gen) * sigma, -1)
                     for n, sz in zip(s.param_names, s.sizes)}
            with torch.no_grad():
                e_soft, c_soft = s.predict(x, probs)
                samples = one_hot_samples(probs, mc, gen)
                e_all = torch.stack([s.predict(x, {n: v[j] for n, v in samples.items()})[0] for j in range(mc)])
                c_all = torch.stack([s.predict(x, {n: v[j] for n, v in samples.items()})[1] for j in range(mc)])
            e_exp, c_exp = e_all.mean(0), c_all.mean(0)
            soft_e.append(((e_soft - e_exp).abs() / e_exp).mean())
            soft_c.append(((c_soft - c_exp).abs() / c_exp).mean())
            he = e_all[:k * (mc // k)].reshape(mc // k, k, -1).mean(1)
            hc = c_all[:k * (mc // k)].reshape(mc // k, k, -1).mean(1)
            hard_e.append(((he - e_exp).abs() / e_exp).mean())
            hard_c.append(((hc - c_exp).abs() / c_exp).mean())
        rows.append({"sigma": sigma, "soft_energy_mape": 100 * float(torch.stack(soft_e).mean()),
                     "soft_cycles_mape": 100 * float(torch.stack(soft_c).mean()),
                     "hard_energy_mape": 100 * float(torch.stack(hard_e).mean()),
                     "hard_cycles_mape": 100 * float(torch.stack(hard_c).mean())})
    return rows


def table(rows: list[dict], k: int) -> str:
    lines = ["| logit scale s | soft input: energy MAPE % | soft input: cycles MAPE % | "
             f"hard samples (K={k}): energy % | hard samples (K={k}): cycles % |",
             "|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['sigma']:g} | {r['soft_energy_mape']:.2f} | {r['soft_cycles_mape']:.2f} | "
                     f"{r['hard_energy_mape']:.2f} | {r['hard_cycles_mape']:.2f} |")
    return "\n".join(lines)


SECTION = "## Relaxed inputs"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--template", default="eyeriss_like")
    ap.add_argument("--layers", type=int, default=100)
    ap.add_argument("--mc", type=int, default=512)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = measure(a.template, layers=a.layers, mc=a.mc, k=a.k)
    t = table(rows, a.k)
    print(t)
    if a.write:
        from a3cs_plugin.hardware.surrogate.model import SURROGATE_DIR
        md = SURROGATE_DIR / f"{a.template}.md"
        text = md.read_text()
        text = re.sub(rf"\n{SECTION}.*", "", text, flags=re.S).rstrip() + "\n"
        text += (f"\n{SECTION}\n\nThe co-search evaluates this surrogate on hard straight-through Gumbel samples "
                 f"of the accelerator (concrete designs drawn from softmax(beta); K = {a.k} per step), so "
                 "every value it reads is a one-hot input like the fitted ones, and their mean is the "
                 "expected cost over concrete designs.  Feeding soft probabilities instead would cost "
                 "the 'soft input' error below (f(p) against E over concrete designs d ~ p of f(d), "
                 f"Monte-Carlo with {a.mc} designs, {a.layers} held-out layers, 8 random distributions "
                 "per row, logits N(0, s^2)); the hard K-sample estimate has zero-mean noise only.  The "
                 "one-hot error against the mapper is the held-out table above.\n\n" + t + "\n\n"
                 f"Reproduce: `python benchmarks/surrogate_relaxation.py --template {a.template} --write`.\n")
        md.write_text(text)
        print(f"wrote {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
