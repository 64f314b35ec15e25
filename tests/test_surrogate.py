"""The differentiable surrogate: features, shipped models, gradients, reported accuracy, fitting."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from a3cs_plugin.errors import CheckpointError, ConfigError, SpecError
from a3cs_plugin.hardware.space import DesignSpace
from a3cs_plugin.hardware.spec import conv2d_problem, linear_problem
from a3cs_plugin.hardware.surrogate import NUM_FEATURES, SURROGATE_DIR, Surrogate, layer_features
from a3cs_plugin.hardware.surrogate.layers import layer_mix, nature_cnn_layers

torch.set_num_threads(1)
SHIPPED = ["eyeriss_like", "simple_array"]
#: every surrogate that ships in the package (a3cs_plugin/surrogates/*.pt)
EVERY_SHIPPED = sorted(p.stem for p in SURROGATE_DIR.glob("*.pt"))


def _shipped(name):
    path = SURROGATE_DIR / f"{name}.pt"
    if not path.is_file():
        pytest.fail(f"shipped surrogate missing: {path}")
    return Surrogate.load(name)


# ----------------------------------------------------------------------------- features
def test_layer_features_conv_linear_depthwise():
    f = layer_features(conv2d_problem(1, 32, 64, 9, 9, 4, 4, 2, 2))
    assert f.shape == (NUM_FEATURES,)
    assert f[10] == pytest.approx(math.log2(32 * 64 * 9 * 9 * 4 * 4))
    assert f[8] == 2 and f[9] == 2 and f[14] == 0
    dw = layer_features(conv2d_problem(1, 1, 1, 10, 10, 3, 3, G=48))
    assert dw[7] == pytest.approx(math.log2(48)) and dw[14] == 1
    fc = layer_features(linear_problem(1, 3136, 512))
    assert fc[10] == pytest.approx(math.log2(3136 * 512))
    # a linear layer given as a 1x1 conv has the same features
    assert np.allclose(fc, layer_features(conv2d_problem(1, 3136, 512, 1, 1, 1, 1)))


def test_layer_features_bad_problem():
    with pytest.raises(SpecError, match="problem.instance"):
        layer_features({"problem": {"shape": {}}})
    bad = conv2d_problem(1, 8, 8, 4, 4, 3, 3)
    bad["problem"]["instance"]["C"] = 0
    with pytest.raises(SpecError, match="problem.instance.C"):
        layer_features(bad)


def test_layer_mixes_differ():
    train = {json.dumps(p["problem"]["instance"], sort_keys=True) for p in layer_mix("train", 80, 0)}
    held = {json.dumps(p["problem"]["instance"], sort_keys=True) for p in layer_mix("heldout", 80, 1000)}
    assert len(train) == 80 and len(held) == 80
    assert len(train & held) < 20   # mostly different shapes
    with pytest.raises(ConfigError):
        layer_mix("test", 3, 0)


# ----------------------------------------------------------------------------- shipped models
@pytest.mark.parametrize("name", SHIPPED)
def test_predict_shapes_and_gradient(name):
    model = _shipped(name)
    space = DesignSpace.from_template(name)
    x = torch.tensor(np.stack([layer_features(p) for p in nature_cnn_layers(6)]))
    logits = {n: torch.zeros(k, requires_grad=True) for n, k in space.sizes.items()}
    probs = {n: torch.softmax(v, 0) for n, v in logits.items()}
    energy, cycles = model.predict(x, probs)
    assert energy.shape == (6,) and cycles.shape == (6,)
    assert torch.all(energy > 0) and torch.all(cycles > 0)
    (energy.sum() * cycles.sum()).backward()
    for n, v in logits.items():
        assert v.grad is not None and torch.isfinite(v.grad).all()
    assert sum(float(v.grad.abs().sum()) for v in logits.values()) > 0
    assert float(logits["pe_x"].grad.abs().sum()) > 0      # the array size matters for EDP
    # per-row probabilities [N, sum K] and a flat encoding give the same numbers as the dict
    flat = torch.cat([probs[n] for n in space.names]).detach()
    e2, c2 = model.predict(x, flat)
    e3, c3 = model.predict(x, flat.expand(6, -1))
    assert torch.allclose(e2, energy.detach()) and torch.allclose(c3, cycles.detach())
    # large no-grad batches are evaluated in chunks: same numbers
    big = x.repeat(1500, 1)
    rows = flat.expand(len(big), -1).contiguous()
    with torch.no_grad():
        eb, cb = model.predict(big, rows)
    assert eb.shape == (9000,) and torch.allclose(eb[:6], energy.detach(), rtol=1e-5)
    assert torch.allclose(cb[-6:], cycles.detach(), rtol=1e-5)


@pytest.mark.parametrize("name", SHIPPED)
def test_concrete_designs_fast_path_same_numbers(name):
    """Rows that are concrete designs take table lookups instead of expectations: same numbers as
    the expectation path (taken when a gradient is asked for), and rows that are not one-hot (a
    soft row, two ones in a block, a 2) stay on the expectation path."""
    model = _shipped(name)
    space = DesignSpace.from_template(name)
    rng = np.random.default_rng(5)
    layers = layer_mix("heldout", 60, 3)
    x = torch.tensor(np.stack([layer_features(layers[int(rng.integers(len(layers)))])
                               for _ in range(500)]))
    a = torch.tensor(np.stack([space.encode(space.sample(rng)) for _ in range(500)]))
    assert model.inputs.onehot_choices(a) is not None
    with torch.no_grad():
        model.predict_log2(x[:40], a[:40])       # cache grows in two steps (re-sorted in between)
        fast = model.predict_log2(x, a)
        slow = model.predict_log2(x, a.clone().requires_grad_(True))
    assert torch.equal(fast, slow)
    for bad in (lambda t: t.__setitem__((3, 0), 0.5), lambda t: t.__setitem__((7, slice(0, 2)), 1.0),
                lambda t: t.__setitem__((9, 0), 2.0)):
        b = a.clone()
        bad(b)
        assert model.inputs.onehot_choices(b) is None
    soft = 0.9 * a + 0.1 * torch.tensor(np.concatenate([np.full(k, 1.0 / k) for k in model.sizes]))
    with torch.no_grad():
        mixed = model.predict_log2(x, soft)
    assert torch.isfinite(mixed).all() and not torch.equal(mixed, fast)


@pytest.mark.parametrize("name", SHIPPED)
def test_bad_accel_probs(name):
    model = _shipped(name)
    x = torch.tensor(layer_features(conv2d_problem(1, 8, 8, 4, 4, 3, 3)))[None]
    space = DesignSpace.from_template(name)
    probs = {n: torch.full((k,), 1.0 / k) for n, k in space.sizes.items()}
    with pytest.raises(ConfigError, match="missing"):
        model.predict(x, {k: v for k, v in probs.items() if k != "pe_x"})
    with pytest.raises(ConfigError, match="pe_x"):
        model.predict(x, {**probs, "pe_x": torch.ones(99)})
    with pytest.raises(ConfigError, match="entries"):
        model.predict(x, torch.ones(3))
    with pytest.raises(CheckpointError, match="no surrogate"):
        Surrogate.load("no_such_template")


@pytest.mark.parametrize("name", EVERY_SHIPPED)
def test_shipped_heldout_accuracy_matches_report(name):
    from a3cs_plugin.hardware.surrogate.fit import accuracy
    model = _shipped(name)
    report = json.loads((SURROGATE_DIR / f"{name}.json").read_text())
    assert model.heldout is not None, "shipped surrogate carries its held-out set"
    acc = accuracy(model, model.heldout["x"], model.heldout["a"], model.heldout["y"])
    claim = report["heldout"]
    assert acc["n"] == claim["n"] >= 50
    for k in ("energy_spearman", "cycles_spearman", "energy_mape_pct", "cycles_mape_pct"):
        assert acc[k] == pytest.approx(claim[k], rel=1e-3, abs=1e-3), k
    assert acc["energy_spearman"] >= 0.9 and acc["cycles_spearman"] >= 0.9
    md = (SURROGATE_DIR / f"{name}.md").read_text()
    assert f"{claim['energy_spearman']:.4f}" in md


@pytest.mark.parametrize("name", SHIPPED)
def test_area_and_clock_tables_exact(name):
    model = _shipped(name)
    space = DesignSpace.from_template(name)
    rng = np.random.default_rng(5)
    for _ in range(5):
        p = space.sample(rng)
        probs = model.point_probs(p)
        assert float(model.area_mm2(probs)) == pytest.approx(space.area(p), rel=1e-5)
        assert float(model.cycle_seconds(probs)) == pytest.approx(1 / space.clock_hz(p), rel=1e-6)
    # expectation under a soft mix lies between the extremes
    soft = {n: torch.full((k,), 1.0 / k) for n, k in space.sizes.items()}
    assert float(model.area_mm2({**soft, "pe_x": torch.tensor([1.0] + [0.0] * (space.sizes["pe_x"] - 1))})) \
        < float(model.area_mm2({**soft, "pe_x": torch.tensor([0.0] * (space.sizes["pe_x"] - 1) + [1.0])}))


@pytest.mark.parametrize("name", SHIPPED)
def test_bigger_array_fewer_cycles(name):
    model = _shipped(name)
    space = DesignSpace.from_template(name)
    x = torch.tensor(layer_features(conv2d_problem(1, 64, 64, 7, 7, 3, 3)))[None]
    small = model.point_probs({**space.default_point(), "pe_x": 4, "pe_y": 4})
    big = model.point_probs({**space.default_point(), "pe_x": 16, "pe_y": 16})
    with torch.no_grad():
        assert float(model.predict(x, small)[1]) > 3 * float(model.predict(x, big)[1])


# ----------------------------------------------------------------------------- fitting end to end
def test_fit_small_end_to_end(tmp_path):
    from a3cs_plugin.hardware.surrogate.fit import fit_surrogate
    out = tmp_path / "tiny.pt"
    cache = tmp_path / "labels.jsonl"
    kw = dict(template="simple_array", samples=24, out=out, seed=3, time_limit_per_point=0.15,
              workers=1, heldout=8, cache=cache, steps=60, progress=False, max_evaluations=1500,
              print_fn=lambda *_: None)
    report = fit_surrogate(**kw)
    lines = cache.read_text().splitlines()
    assert len(lines) == 32
    assert report["valid_train"] + report["valid_heldout"] + report["failed_labels"] == 32
    assert set(report["heldout"]) >= {"energy_spearman", "energy_mape_pct", "cycles_spearman",
                                      "cycles_mape_pct"}
    model = Surrogate.load(out)
    assert model.template == "simple_array" and model.heldout["x"].shape[1] == NUM_FEATURES
    assert json.loads(out.with_suffix(".json").read_text())["samples"] == 24
    # labels come from the cache the second time: no new lines
    fit_surrogate(**kw)
    assert len(cache.read_text().splitlines()) == 32
    with pytest.raises(ConfigError, match="samples"):
        fit_surrogate(**{**kw, "samples": 3})


def test_fit_surrogate_cli(tmp_path):
    """`a3cs hw fit-surrogate` labels with the real mapper, prints held-out accuracy, writes the report."""
    import subprocess
    import sys
    from pathlib import Path

    a3cs = Path(sys.executable).with_name("a3cs")
    out = tmp_path / "cli.pt"
    cmd = [str(a3cs), "hw", "fit-surrogate", "--template", "simple_array", "--samples", "20",
           "--heldout", "6", "--seed", "5", "--time-limit", "0.15", "--max-evaluations", "800",
           "--workers", "1", "--steps", "40", "--out", str(out), "--cache", str(tmp_path / "c.jsonl")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "spearman" in (run.stdout + run.stderr).lower()
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["samples"] == 20 and out.with_suffix(".md").is_file()
    bad = subprocess.run(cmd[:3] + ["--template", "no_such_template"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode != 0 and "no_such_template" in bad.stderr and "Traceback" not in bad.stderr


def test_live_feature_versions_are_those_of_the_shipped_surrogates():
    """One live feature version per shipped surrogate and no other: every shipped file (and its
    report) names a live version, every live version is used by one, others are refused."""
    from a3cs_plugin.hardware.surrogate.inputs import FEATURE_VERSIONS
    assert len(EVERY_SHIPPED) >= 4
    used = set()
    for name in EVERY_SHIPPED:
        model = _shipped(name)
        report = json.loads((SURROGATE_DIR / f"{name}.json").read_text())
        assert model.fv == report["model"]["feature_version"] in FEATURE_VERSIONS
        used.add(model.fv)
    assert used == set(FEATURE_VERSIONS)
    config = dict(_shipped("simple_array").config)
    for dead in (1, 3):
        with pytest.raises(ConfigError, match=f"feature_version {dead} is not supported"):
            Surrogate({**config, "feature_version": dead})


# ----------------------------------------------------------------------------- feature_version 2
@pytest.mark.parametrize("name", SHIPPED)
def test_joint_divisor_features_exact_for_dimension_products(name):
    """The joint (mesh X, mesh Y) features of products of several dimensions (far above the old
    4096-entry tables) equal a brute-force search, and the shared-accelerator fast path (table
    contracted before the gather) gives the same inputs as the per-row path."""
    from a3cs_plugin.hardware.surrogate.inputs import JOINT_SETS, JOINT_SETS_V2
    model = _shipped(name)
    assert model.fv >= 2
    ix, iy = model.mesh_index
    xs_ch, ys_ch = model.param_choices[ix], model.param_choices[iy]
    probs = [conv2d_problem(1, 96, 128, 21, 21, 3, 3), conv2d_problem(1, 1, 1, 14, 14, 5, 5, G=120),
             linear_problem(1, 3136, 512), conv2d_problem(1, 40, 56, 9, 9, 5, 5)]
    x = torch.tensor(np.stack([layer_features(p) for p in probs]))
    dims = torch.round(torch.exp2(x[:, :8])).long()
    sets = JOINT_SETS + JOINT_SETS_V2
    nj = len(sets)
    space = DesignSpace.from_template(name)
    for px, py in ((xs_ch[-1], ys_ch[-1]), (xs_ch[1], ys_ch[2])):
        point = {**space.default_point(), model.param_names[ix]: px, model.param_names[iy]: py}
        a = model.accel_tensor(model.point_probs(point))
        _, shared, _ = model._extra(x, a)
        _, rows, _ = model._extra(x, a.expand(x.shape[0], -1))
        assert torch.allclose(shared, rows, atol=1e-5)
        for i in range(x.shape[0]):
            for j, ds in enumerate(sets):
                v = int(np.prod([int(dims[i, k]) for k in ds]))
                best = max(u * w for u in range(1, px + 1) if v % u == 0
                           for w in range(1, py + 1) if (v // u) % w == 0)
                end = shared.shape[1] - (1 if model.util else 0)     # v4: compute bound last
                assert float(shared[i, end - nj + j]) == pytest.approx(math.log2(best), abs=1e-4)


# ----------------------------------------------------------------------------- compute bound (v3)
def test_max_utilization_small_cases():
    from a3cs_plugin.hardware.surrogate.utilization import max_utilization
    # dims order N C M P Q R S G
    d = (1, 3, 8, 5, 5, 3, 3, 1)
    assert max_utilization(d, [(4, (2,))]) == 4                  # M=8 on 4 PEs
    assert max_utilization(d, [(6, (1, 2))]) == 6                # C*M: 3*2
    assert max_utilization(d, [(5, (2,))]) == 4                  # divisors of 8 only
    assert max_utilization(d, [(4, (2,)), (4, (2,))]) == 8       # both axes share M=8
    assert max_utilization(d, [(4, (2,)), (4, (1, 2))]) == 12    # M=4 on X, C=3 on Y
    assert max_utilization(d, [(16, (0,))]) == 1                 # N=1: nothing to spread


def test_spatial_slots_follow_the_dataflow_constraints():
    from a3cs_plugin.hardware.surrogate.utilization import spatial_slots
    space = DesignSpace.from_template("eyeriss_like")
    desc = spatial_slots(space)
    names = space.names
    assert [names[i] for i in desc["mesh"]] == ["pe_x", "pe_y"]
    assert [names[i] for i in desc["struct"]] == ["dataflow"]
    dims = "NCMPQRSG"
    by_df = {}
    for key, entry in desc["slots"].items():
        df = space.parameters["dataflow"].choices[int(key)]
        by_df[df] = {names[s]: "".join(dims[d] for d in ds) for s, ds in entry}
    # row stationary: Q and M across PE columns, S, C and M down a column (G is never constrained)
    assert by_df["row_stationary"] == {"pe_x": "MQG", "pe_y": "CMSG"}
    assert by_df["weight_stationary"] == {"pe_x": "CMG", "pe_y": "CMG"}
    assert by_df["output_stationary"] == {"pe_x": "MPQG", "pe_y": "MPQG"}


def test_compute_bound_is_a_lower_bound_of_mapper_cycles():
    """The v3 and v4 baselines never exceed what the real mapper achieves, v4 (with the global
    buffer's bandwidth) is never below v3, and both are tight for some pairs."""
    from a3cs_plugin.hardware.mapper import search
    from a3cs_plugin.hardware.spec import load_spec
    from a3cs_plugin.hardware.surrogate.utilization import log2_util_grid, spatial_slots
    from a3cs_plugin.hardware.surrogate.features import layer_dims
    space = DesignSpace.from_template("eyeriss_like")
    desc = spatial_slots(space)
    desc4 = spatial_slots(space, bandwidth=True)
    choices = [list(p.choices) for p in space.parameters.values()]
    rng = np.random.default_rng(3)
    layers = layer_mix("heldout", 40, 7)
    tight = 0
    for k in range(8):
        point = space.sample(rng)
        prob = layers[int(rng.integers(len(layers)))]
        res = search(load_spec([space.render(point), prob]), metric="edp", time_limit=2.0, seed=0,
                     max_evaluations=3000).result
        d = layer_dims(prob)
        dims = tuple(d[c] for c in "NCMPQRSG")
        grid = log2_util_grid(dims, desc, choices)
        grid4 = log2_util_grid(dims + (d["Hstride"], d["Wstride"]), desc4, choices)
        mesh_vals = [choices[i] for i in desc["mesh"]]
        j = 0
        for i, vals in zip(desc["mesh"], mesh_vals):
            j = j * len(vals) + vals.index(point[space.names[i]])
        for i in desc["struct"]:
            j = j * len(choices[i]) + choices[i].index(point[space.names[i]])
        macs = float(np.prod(dims))
        bound, bound4 = macs / 2 ** grid[j], macs / 2 ** grid4[j]
        assert res.cycles >= bound4 * (1 - 1e-9), (point, dims, res.cycles, bound4)
        assert bound4 >= bound * (1 - 1e-9)
        tight += res.cycles <= bound4 * 1.02
    assert tight >= 2


def test_bandwidth_bound_by_hand_and_on_depthwise_layers():
    """Global-buffer words / 16 per cycle: the bound that depthwise layers hit on a large array."""
    from a3cs_plugin.hardware.mapper import search
    from a3cs_plugin.hardware.spec import load_spec
    from a3cs_plugin.hardware.surrogate.layers import conv
    from a3cs_plugin.hardware.surrogate.utilization import (bandwidth_cycles, max_utilization,
                                                            spatial_slots, tensor_words)
    # N C M P Q R S G (Hstride Wstride): 3x3 depthwise, 64 channels, 10x10 out, stride 1 -> 12x12 in
    assert tensor_words((1, 1, 1, 10, 10, 3, 3, 64, 1, 1)) == (576, 64 * 144, 6400)
    # stride 2 over a 1x1 kernel reads only every other input position: 10 of 19 per axis
    assert tensor_words((1, 8, 8, 10, 10, 1, 1, 1, 2, 2))[1] == 8 * 100
    space = DesignSpace.from_template("eyeriss_like")
    desc = spatial_slots(space, bandwidth=True)
    # the global buffer keeps inputs and outputs (weights bypass it) for every dataflow
    assert all(rows == [[16.0, 16.0, None, False, True, True, False]] for rows in desc["bw"].values())
    words = tensor_words((1, 1, 1, 10, 10, 3, 3, 64, 1, 1))
    assert bandwidth_cycles(words, desc["bw"]["0"]) == pytest.approx((64 * 144 + 6400) / 16)
    point = {**space.default_point(), "pe_x": 16, "pe_y": 12, "dataflow": "row_stationary"}
    prob = conv(1, 1, 1, 10, 10, 3, 3, 1, g=64)
    res = search(load_spec([space.render(point), prob]), metric="edp", time_limit=2.0, seed=0,
                 max_evaluations=3000).result
    fans = {"pe_x": 16, "pe_y": 12}
    slots = [(fans[space.names[s]], tuple(ds)) for s, ds in desc["slots"]["0"]]
    compute = 57600 / max_utilization((1, 1, 1, 10, 10, 3, 3, 64), slots)
    bw = bandwidth_cycles(words, desc["bw"]["0"])
    assert bw > 2 * compute                       # the array is not what limits this layer
    assert res.cycles >= bw and res.cycles < 2 * bw


def test_surrogate_cost_model_takes_typed_inputs():
    """The cost-model plugin's seams are typed: a Surrogate (or a .pt path), and layer problems as
    LayerProblem (its count) or Timeloop problem dicts (count 1)."""
    from a3cs_plugin.hardware.workload import LayerProblem
    from a3cs_plugin.strategy.surrogate_cost import SurrogateCostModel
    cm = SurrogateCostModel("eyeriss_like")
    prob = conv2d_problem(1, 16, 32, 8, 8, 3, 3)
    feats = cm.featurize([LayerProblem(name="c", kind="conv", problem=prob, macs=1, count=3), prob])
    assert feats[:, -1].tolist() == [3.0, 1.0] and torch.equal(feats[0, :-1], feats[1, :-1])
    with pytest.raises(ConfigError, match="not a fitted surrogate"):
        SurrogateCostModel("eyeriss_like", surrogate=object())
    with pytest.raises(ConfigError, match="layer problem of unknown type"):
        cm.featurize([42])
