"""A non-editable install carries everything the CLI needs: specs, templates, surrogates, teacher."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(300)
def test_wheel_ships_specs_templates_surrogates_and_teacher(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("a3cs_plugin", "arch_specs"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "-q", str(src), "-w", str(tmp_path / "dist")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    whl = next((tmp_path / "dist").glob("a3cs-*.whl"))
    names = set(zipfile.ZipFile(whl).namelist())
    data = "a3cs-0.1.0.data/data/share/a3cs/arch_specs/"
    for t in (ROOT / "arch_specs" / "templates").glob("*.yaml"):
        assert data + "templates/" + t.name in names
    for t in (ROOT / "arch_specs").glob("*.yaml"):
        assert data + t.name in names
    for t in (ROOT / "a3cs_plugin" / "surrogates").glob("*.pt"):
        assert "a3cs_plugin/surrogates/" + t.name in names
    assert "a3cs_plugin/teachers/pong.pt" in names
    assert any(n.startswith("a3cs_plugin/hardware/energy/tables/") for n in names)


def test_arch_specs_dir_from_environment(tmp_path):
    """An installed layout (``<prefix>/share/a3cs/arch_specs``) is found through the env override."""
    dst = tmp_path / "share" / "a3cs" / "arch_specs"
    shutil.copytree(ROOT / "arch_specs", dst)
    (dst / "templates" / "eyeriss_like.yaml").rename(dst / "templates" / "moved_like.yaml")
    code = ("from a3cs_plugin.hardware.space import list_templates, DesignSpace; "
            "print(list_templates()); print(DesignSpace.from_template('moved_like').name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "A3CS_ARCH_SPECS": str(dst)})
    assert out.returncode == 0, out.stderr[-1000:]
    assert "moved_like" in out.stdout.splitlines()[0]
    assert out.stdout.splitlines()[1] == "eyeriss_like"       # the name inside the file


# the home and work folders of a build machine, spelled so that this file does not hold them
_MACHINE_PATH = tuple(f"/{d}/" for d in ("work", "root", "home"))


def _strings(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


def test_no_machine_paths_in_shipped_files():
    """Nothing that ships (text files of the package and arch_specs, the metadata of the shipped
    teachers and surrogates) names a path of the machine it was built on; teachers record the
    run's name (``source_run``), the shipped teacher they continued from (``init``) by file name."""
    import torch
    texts = [p for d in (ROOT / "a3cs_plugin", ROOT / "arch_specs") for p in d.rglob("*")
             if p.suffix in (".py", ".md", ".json", ".yaml", ".yml", ".cfg", ".txt") and "__pycache__" not in p.parts]
    texts += [ROOT / "README.md", ROOT / "setup.cfg"]
    bad = [f"{p.relative_to(ROOT)}: {m}" for p in texts if p.is_file()
           for m in _MACHINE_PATH if m in p.read_text(errors="replace")]
    blobs = sorted((ROOT / "a3cs_plugin" / "teachers").glob("*.pt")) + sorted(
        (ROOT / "a3cs_plugin" / "surrogates").glob("*.pt"))
    assert len(blobs) >= 6
    for pt in blobs:
        blob = torch.load(pt, map_location="cpu", weights_only=True)
        meta = {k: v for k, v in blob.items() if k not in ("model", "state_dict", "heldout")}
        bad += [f"{pt.relative_to(ROOT)}: {s}" for s in _strings(meta) if any(m in s for m in _MACHINE_PATH)]
        if "source_run" in meta:
            assert "/" not in str(meta["source_run"]), pt
    assert not bad, "\n".join(bad)
