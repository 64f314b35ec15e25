"""Small stand-ins used by the strategy tests (and a check of the stand-ins themselves).

* :class:`TableCostModel` — an analytical cost-model plugin: energy grows with MACs, PE-array size
  and buffer size; cycles fall with the PE-array size.
* :class:`TinySpace` — a two-cell NNI ModelSpace with LayerChoices of different costs.
"""
from __future__ import annotations

import torch
from torch import nn

from nni.nas.nn.pytorch import LayerChoice, ModelSpace

from a3cs_plugin.cost.base import CostModel

PE = (4.0, 16.0, 64.0)
BUF = (8.0, 32.0, 128.0)


def _macs(p) -> float:
    if hasattr(p, "macs"):
        return float(p.macs) * float(getattr(p, "count", 1))
    return float(p["macs"])


class TableCostModel(CostModel):
    """energy = macs * (1 + E[buf]/32) + 100 * E[pe]   (pJ);  cycles = macs * E[1/pe] + 10."""

    clock_hz = 1.0e8

    def __init__(self, template: str = "table"):
        super().__init__()
        self.template = template

    @classmethod
    def factory(cls, template: str, **options):
        return cls(template, **options)

    def accelerator_params(self):
        return {"pe": [int(v) for v in PE], "buf_kb": [int(v) for v in BUF]}

    def featurize(self, problems):
        return torch.tensor([[_macs(p)] for p in problems], dtype=torch.float32)

    def layer_costs(self, feats, accel_probs):
        macs = feats[:, 0]
        pe, buf = torch.tensor(PE), torch.tensor(BUF)
        inv_pe = (accel_probs["pe"] / pe).sum()
        e_pe = (accel_probs["pe"] * pe).sum()
        e_buf = (accel_probs["buf_kb"] * buf).sum()
        return macs * (1.0 + e_buf / 32.0) + 100.0 * e_pe, macs * inv_pe + 10.0

    def area_mm2(self, accel_probs):
        """0.1 mm^2 per PE + 0.01 mm^2 per buffer KiB (expected)."""
        return 0.1 * (accel_probs["pe"] * torch.tensor(PE)).sum() + \
            0.01 * (accel_probs["buf_kb"] * torch.tensor(BUF)).sum()


class TinySpace(ModelSpace):
    """x (N, 4) -> two LayerChoice cells {big, small, skip} -> logits (N, 3), value (N,)."""

    OPS = ("big", "small", "skip")
    MACS = {"big": 4 * 64 + 64 * 4, "small": 16, "skip": 0}

    def __init__(self):
        super().__init__()
        self.c0 = LayerChoice({"big": nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 4)),
                               "small": nn.Linear(4, 4), "skip": nn.Identity()}, label="cell_00")
        self.c1 = LayerChoice({"big": nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 4)),
                               "small": nn.Linear(4, 4), "skip": nn.Identity()}, label="cell_01")
        self.out = nn.Linear(4, 4)

    def forward(self, x):
        h = self.out(self.c1(self.c0(x)))
        return h[:, :3], h[:, 3]

    def op_problems(self, label, op):
        return [{"macs": self.MACS[op]}] if self.MACS[op] else []

    def fixed_problems(self):
        return [{"macs": 16}]


def agent_op_problems(space):
    """Per-op MAC 'problems' of an AgentSpace counted with forward hooks (the stand-in workload)."""
    from a3cs_plugin.agents.ops import make_op

    def macs_of(mod, x):
        total = [0]

        def hook(m, _i, o):
            if isinstance(m, nn.Conv2d):
                total[0] += m.weight.numel() * o.shape[-1] * o.shape[-2]
            elif isinstance(m, nn.Linear):
                total[0] += m.weight.numel()
        hs = [m.register_forward_hook(hook) for m in mod.modules()]
        with torch.no_grad():
            mod(x)
        for h in hs:
            h.remove()
        return total[0]

    out = {}
    for cfg in space.cell_configs:
        x = torch.zeros(1, cfg["c_in"], cfg["in_hw"], cfg["in_hw"])
        out[cfg["label"]] = {op: [{"macs": macs_of(make_op(op, cfg["c_in"], cfg["c_out"], cfg["stride"]), x)}]
                             for op in space.op_names}
    return out


def test_table_cost_model_orders_accelerators():
    cm = TableCostModel()
    feats = cm.featurize([{"macs": 1000.0}])
    small = {"pe": torch.tensor([1.0, 0, 0]), "buf_kb": torch.tensor([1.0, 0, 0])}
    big = {"pe": torch.tensor([0, 0, 1.0]), "buf_kb": torch.tensor([0, 0, 1.0])}
    e_s, c_s = cm.layer_costs(feats, small)
    e_b, c_b = cm.layer_costs(feats, big)
    assert float(e_s) == 1000 * (1 + 8 / 32) + 400
    assert float(e_b) == 1000 * (1 + 128 / 32) + 6400
    assert float(c_s) == 1000 / 4 + 10 and float(c_b) == 1000 / 64 + 10


class TemplateTableCostModel(CostModel):
    """Analytical stand-in over a real accelerator template (its DesignSpace parameters):
    cycles = macs / (E[pe_x] E[pe_y]) + 100, energy = macs * (1 + 0.1 E[log2 glb_kib]) + 50 E[pe_x] E[pe_y],
    clock from ``clock_mhz``.  Lets the driver render/re-cost the derived accelerator without a
    fitted surrogate."""

    def __init__(self, template: str = "eyeriss_like"):
        super().__init__()
        from a3cs_plugin.hardware.space import DesignSpace
        self.template = template
        self.space = DesignSpace.from_template(template)
        self.clock_hz = self.space.clock_hz()

    @classmethod
    def factory(cls, template: str, **options):
        return cls(template, **options)

    def accelerator_params(self):
        return {n: list(p.choices) for n, p in self.space.parameters.items()}

    def featurize(self, problems):
        return torch.tensor([[_macs(p)] for p in problems], dtype=torch.float32)

    def _mean(self, probs, name, fn=float):
        vals = torch.tensor([fn(v) for v in self.space.parameters[name].choices], dtype=torch.float32)
        return (probs[name] * vals).sum()

    def layer_costs(self, feats, accel_probs):
        macs = feats[:, 0]
        pes = self._mean(accel_probs, "pe_x") * self._mean(accel_probs, "pe_y")
        glb = self._mean(accel_probs, "glb_kib", lambda v: torch.log2(torch.tensor(float(v))))
        return macs * (1.0 + 0.1 * glb) + 50.0 * pes, macs / pes + 100.0

    def cycle_seconds(self, accel_probs):
        return self._mean(accel_probs, "clock_mhz", lambda v: 1e-6 / float(v))

    def area_mm2(self, accel_probs):
        point = self.point({n: int(p.argmax()) for n, p in accel_probs.items()})
        return torch.tensor(float(self.space.area(point)))
