"""The reference designs declare storage as ``class: storage, subclass: <Accelergy class>``
(Timeloop v0.4).  The subclass must reach the built-in energy tables and survive a round trip."""
from __future__ import annotations

import pytest

from a3cs_plugin.hardware.spec import dump_spec, load_spec
from a3cs_plugin.hardware.mapper import search

DESIGNS = ("eyeriss_like", "simba_like", "simple_weight_stationary", "simple_output_stationary")


def _files(ref, design):
    d = ref / "designs"
    return [d / design / "arch.yaml", *sorted((d / "_components").glob("*.yaml")),
            d / "_include" / "default_problem.yaml"]


@pytest.mark.parametrize("design", DESIGNS)
def test_design_maps_with_builtin_tables(reference_dir, design):
    spec = load_spec(_files(reference_dir, design))
    classes = {c[1] for c in spec.ert_components()}
    assert "storage" not in classes and "compute" not in classes, classes
    out = search(spec, metric="edp", time_limit=1.0, seed=0)
    r = out.result
    assert r.computes == spec.problem.computes > 0
    assert r.energy_source.startswith("builtin")
    # every real level is charged some energy (the MAC and DRAM at least)
    assert all(e >= 0 for e in r.levels_pJ.values())
    assert sum(1 for e in r.levels_pJ.values() if e > 0) >= 3
    assert r.cycles >= r.computes / max(1, spec.arch.compute.instances)


def test_subclass_round_trips(reference_dir):
    spec = load_spec(_files(reference_dir, "simba_like"))
    again = load_spec([dump_spec(spec)])
    assert [c[1] for c in again.ert_components()] == [c[1] for c in spec.ert_components()]
