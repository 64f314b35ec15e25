"""The README's cost-model plugin example works as printed: registered through an entry point, loaded
by the registry, and its cost is differentiable in the accelerator probabilities and in alpha."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _readme_blocks():
    text = (ROOT / "README.md").read_text()
    ini = re.search(r"```ini\n(.*?)```", text, re.S).group(1)
    py = re.search(r"```python\n(# my_pkg/cost.py.*?)```", text, re.S).group(1)
    return ini, py


def test_readme_plugin_example(tmp_path, monkeypatch):
    from a3cs_plugin.agents.space import AgentSpace
    from a3cs_plugin.strategy import registry
    from a3cs_plugin.cost.base import NetworkCost

    ini, code = _readme_blocks()
    pkg = tmp_path / "my_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "cost.py").write_text(code)
    dist = tmp_path / "my_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-pkg\nVersion: 0.1\n")
    entry = ini.split("[options.entry_points]", 1)[1]
    (dist / "entry_points.txt").write_text(entry.replace("a3cs.cost_models =", "[a3cs.cost_models]")
                                           .replace("\n    ", "\n"))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_pkg", None)

    cm = registry.cost_model("roofline", "any_template")
    assert type(cm).__name__ == "RooflineCost"
    space = AgentSpace(6, num_cells=2)
    nc = NetworkCost(cm, {l: {o: space.op_problems(l, o) for o in space.op_names} for l in space.cell_labels},
                     space.fixed_problems())
    alpha = {l: torch.zeros(len(space.op_names), requires_grad=True) for l in space.cell_labels}
    beta = torch.zeros(3, requires_grad=True)
    probs = {l: torch.softmax(a, 0) for l, a in alpha.items()}
    energy, cycles = nc.expected(probs, {"pes": torch.softmax(beta, 0)})
    (energy * cycles).backward()
    # more PEs -> fewer cycles: the gradient pushes beta toward 256 PEs (negative gradient)
    assert beta.grad[2] < 0 < beta.grad[0]
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in alpha.values())
