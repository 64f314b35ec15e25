"""Design spaces from the templates in arch_specs/templates."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from a3cs_plugin.errors import ConfigError
from a3cs_plugin.hardware.space import DesignSpace, list_templates
from a3cs_plugin.hardware.space.template import load_yaml_text

TEMPLATES = ["eyeriss_like", "simple_array"]


@pytest.fixture(scope="module", params=TEMPLATES)
def space(request):
    return DesignSpace.from_template(request.param)


def _node(spec, name):
    for node in spec["architecture"]["nodes"]:
        if node.get("name") == name:
            return node
        for sub in node.get("nodes", []) or []:
            if sub.get("name") == name:
                return sub
    raise KeyError(name)


def test_templates_listed():
    assert set(TEMPLATES) <= set(list_templates())


def test_parameters_have_choices(space):
    for need in ("pe_x", "pe_y", "glb_kib", "dataflow", "clock_mhz"):
        assert need in space.parameters
        assert space.parameters[need].size >= 2
    assert space.encoding_size == sum(space.sizes.values())
    assert space.num_points == int(np.prod(list(space.sizes.values())))
    assert min(space.parameters["pe_x"].choices) <= 4 and max(space.parameters["pe_x"].choices) >= 16


def test_render_substitutes_point(space):
    point = {"pe_x": 8, "pe_y": 4, "glb_kib": 16, "clock_mhz": 500}
    spec = space.render(point)
    nodes = spec["architecture"]["nodes"]
    assert spec["architecture"]["version"] == 0.4
    glb = _node(spec, "shared_glb")
    assert glb["attributes"]["depth"] == 16 * 1024 // 8          # 64-bit rows
    meshes = [n.get("spatial", {}) for n in nodes if n.get("spatial")]
    assert {k: v for m in meshes for k, v in m.items()} == {"meshX": 8, "meshY": 4}
    assert nodes[0]["attributes"]["global_cycle_seconds"] == pytest.approx(2e-9)
    assert space.clock_hz(point) == pytest.approx(5e8)
    # the loader's tagged dicts keep the Timeloop node type
    assert [getattr(n, "tag", None) for n in nodes[:2]] == ["Container", "Component"]
    # no placeholder survives rendering
    assert "${" not in yaml.safe_dump(_plain_dict(spec))


def _plain_dict(obj):
    if isinstance(obj, dict):
        return {k: _plain_dict(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain_dict(v) for v in obj]
    return obj


def test_dataflow_selects_constraints():
    space = DesignSpace.from_template("eyeriss_like")
    rs = _node(space.render({"dataflow": "row_stationary"}), "psum_spad")["constraints"]
    os_ = _node(space.render({"dataflow": "output_stationary"}), "psum_spad")["constraints"]
    assert rs["temporal"]["permutation"][-1] == "M"
    assert os_["temporal"]["permutation"][:3] == ["C", "R", "S"]
    arr = DesignSpace.from_template("simple_array")
    assert _node(arr.render({"dataflow": "weight_stationary"}), "pe_spad")["constraints"]["dataspace"]["keep"] == ["Weights"]
    assert _node(arr.render({"dataflow": "output_stationary"}), "pe_spad")["constraints"]["dataspace"]["keep"] == ["Outputs"]


def test_write_roundtrip(space, tmp_path):
    point = space.sample(3)
    path = space.write(point, tmp_path / "acc.yaml")
    text = path.read_text()
    assert "!Container" in text and "!Component" in text and "!Parallel" in text
    again = load_yaml_text(text, str(path))
    assert again == space.render(point, tagged=True)


def test_encode_decode(space):
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = space.sample(rng)
        v = space.encode(p)
        assert v.shape == (space.encoding_size,) and v.sum() == len(space.parameters)
        assert space.decode(v) == p
        assert space.point_from_indices(space.indices(p)) == p


def test_sample_reproducible_and_covers(space):
    a = [space.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(1)
    seen = {n: set() for n in space.parameters}
    for _ in range(300):
        for n, v in space.sample(rng).items():
            seen[n].add(v)
    assert all(len(seen[n]) == p.size for n, p in space.parameters.items())


def test_unknown_parameter_and_choice(space):
    with pytest.raises(ConfigError, match="unknown parameter.*mesh_z"):
        space.render({"mesh_z": 4})
    with pytest.raises(ConfigError, match="pe_x.*expected one of"):
        space.render({"pe_x": 5})
    with pytest.raises(ConfigError, match="not_a_template"):
        DesignSpace.from_template("not_a_template")


def test_bad_template_file(tmp_path):
    good = (Path(__file__).resolve().parents[1] / "arch_specs" / "templates" / "simple_array.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.replace("${pe_x}", "${pe_w}"))
    with pytest.raises(ConfigError, match="pe_w"):
        DesignSpace.from_template(bad)
    bad.write_text(good.replace("default: 256", "default: 300"))
    with pytest.raises(ConfigError, match="default"):
        DesignSpace.from_template(bad)
    bad.write_text(good + "\nextra_key: 1\n")
    with pytest.raises(ConfigError, match="extra_key"):
        DesignSpace.from_template(bad)


def test_area_grows_with_resources(space):
    small = space.area({"pe_x": 4, "pe_y": 4, "glb_kib": space.parameters["glb_kib"].choices[0]})
    big = space.area({"pe_x": 16, "pe_y": 16, "glb_kib": space.parameters["glb_kib"].choices[-1]})
    mid = space.area({"pe_x": 16, "pe_y": 16, "glb_kib": space.parameters["glb_kib"].choices[0]})
    assert 0 < small < mid < big
    assert space.within_budget({"pe_x": 4, "pe_y": 4}, big) is True
    assert space.within_budget({"pe_x": 16, "pe_y": 16, "glb_kib": space.parameters["glb_kib"].choices[-1]},
                               small) is False
    # the clock does not change area
    assert space.area({"clock_mhz": 200}) == pytest.approx(space.area({"clock_mhz": 1000}))


@pytest.mark.parametrize("name", TEMPLATES)
def test_render_loads_and_maps(name, tmp_path):
    """A rendered point is a spec the loader, model and mapper accept (dict and written YAML),
    and the engine's area equals the design space's."""
    from a3cs_plugin.hardware.mapper import search
    from a3cs_plugin.hardware.spec import conv2d_problem, load_spec
    space = DesignSpace.from_template(name)
    point = {"pe_x": 8, "pe_y": 4, "dataflow": space.parameters["dataflow"].choices[-1]}
    prob = conv2d_problem(1, 16, 32, 10, 10, 3, 3)
    spec = load_spec([space.render(point), prob])
    inner = [lv for lv in spec.arch.levels if not lv.name.startswith("inter_")]
    assert max(lv.instances for lv in inner) == 32
    from_file = load_spec([space.write(point, tmp_path / "acc.yaml"), prob])
    assert [(lv.name, lv.instances, lv.attributes.get("depth")) for lv in from_file.arch.levels] == \
        [(lv.name, lv.instances, lv.attributes.get("depth")) for lv in spec.arch.levels]
    res = search(spec, metric="edp", time_limit=2.0, seed=0, max_evaluations=3000)
    assert 16 * 32 * 100 * 9 / 32 <= res.result.cycles
    assert res.result.area_um2 / 1e6 == pytest.approx(space.area(point), rel=1e-6)


def test_one_tag_keeping_yaml_reader_for_specs_and_templates():
    """Templates and specs read v0.4 YAML with the same reader: tagged mappings are TaggedNode
    dicts (equal only with equal tags), written back with their tags; a rendered template is a
    load_spec input as it stands."""
    from a3cs_plugin.hardware.spec import TaggedNode, conv2d_problem, load_spec, load_yaml_file
    from a3cs_plugin.hardware.spec.yamlio import dump_yaml
    path = Path(__file__).resolve().parents[1] / "arch_specs" / "simple_ws.yaml"
    via_spec = load_yaml_file(path)
    via_template = load_yaml_text(path.read_text(), str(path))
    assert via_spec == via_template
    nodes = via_template["architecture"]["nodes"]
    assert all(isinstance(n, TaggedNode) for n in nodes) and nodes[0].tag == "Container"
    assert TaggedNode("Container", {"name": "x"}) != TaggedNode("Component", {"name": "x"})
    assert TaggedNode("Container", {"name": "x"}) == {"name": "x"}
    again = load_yaml_text(dump_yaml(via_template), "round trip")
    assert again == via_template
    assert [n.tag for n in again["architecture"]["nodes"]] == [n.tag for n in nodes]
    space = DesignSpace.from_template("simple_ws")
    rendered = space.render()
    assert all(isinstance(n, TaggedNode) for n in rendered["architecture"]["nodes"])
    assert space.render(tagged=True) == rendered
    load_spec([rendered, conv2d_problem(1, 8, 8, 4, 4, 3, 3)])
