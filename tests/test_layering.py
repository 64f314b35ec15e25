"""The import graph of ``a3cs_plugin`` runs one way, and ``except ImportError`` guards only
genuinely optional dependencies.

Layers, lowest first (a module may import its own layer and the layers below it; imports inside
functions count, they are imports all the same)::

    errors -> paths -> hardware -> agents -> rl -> teachers -> cost -> strategy -> cosearch -> cli

``cost`` is the cost-model plugin API, ``strategy`` the NNI algorithm, ``cosearch`` the run
orchestration.  Alias modules that keep an old import path for one release (a module whose whole
body rebinds ``sys.modules[__name__]``, e.g. ``strategy/driver.py`` -> ``cosearch/driver.py``) are
exempt: they are names, not code.

Inside ``hardware`` the cost-model core runs ``spec -> energy -> model -> mapper``: the spec layer
(Timeloop YAML -> typed objects, mapping resolution and its checks) imports nothing else of
``hardware``; energy-table resolution only the spec; the model no mapper.

The graph is read with :mod:`ast` (no module is imported), from the files on disk.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "a3cs_plugin"

LAYERS = ["errors", "paths", "hardware", "agents", "rl", "teachers", "cost", "strategy", "cosearch", "cli"]
# top-level names that are not layers: the package itself (its version) and data folders
NEUTRAL = {"", "__main__", "surrogates"}
HARDWARE_CORE = ["spec", "energy", "model", "mapper"]

# ``except ImportError`` / ``except ModuleNotFoundError`` that guard a genuinely optional
# dependency: (file, the dependency its comment names); the ``except`` line must carry a comment
# naming it, e.g. ``except ImportError:  # optional: stable-baselines3 (the SB3 baseline)``.
# (The Timeloop backend finds pytimeloop with importlib.util.find_spec, no guard needed.)
OPTIONAL: set = set()
# Known debt: guards around sibling modules of a3cs itself (scaffolding from building in
# parallel).  This list may only shrink: an entry that no longer matches fails the test.  Empty
# now: every sibling module exists, so such a guard only hides a broken import.
KNOWN_DEBT: set = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set:
    """Absolute ``a3cs_plugin...`` names imported by ``path`` (relative imports resolved)."""
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "a3cs_plugin")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "a3cs_plugin":
                continue
            if node.module:
                out.add(target)
            else:   # from . import x: x is a module of the package
                out.update(f"{target}.{a.name}" for a in node.names)
    return out


def is_alias_module(path: Path) -> bool:
    """An old import path kept for one release: the module only rebinds sys.modules[__name__]."""
    return "sys.modules[__name__] = " in path.read_text() and len(path.read_text().splitlines()) < 15


def _graph() -> dict:
    return {_module_name(p): _imports(p) for p in sorted(PKG.rglob("*.py")) if not is_alias_module(p)}


def _part(name: str, depth: int) -> str:
    parts = name.split(".")
    return parts[depth] if len(parts) > depth else ""


def test_every_top_level_module_has_a_layer():
    tops = {_part(m, 1) for m in _graph()}
    unknown = sorted(tops - set(LAYERS) - NEUTRAL)
    assert not unknown, f"place these in LAYERS (tests/test_layering.py): {unknown}"


def test_imports_run_downward():
    bad = []
    for mod, targets in _graph().items():
        src = _part(mod, 1)
        if src in NEUTRAL:
            continue
        for t in targets:
            dst = _part(t, 1)
            if dst in NEUTRAL:
                continue
            if LAYERS.index(dst) > LAYERS.index(src):
                bad.append(f"{mod} imports {t} ({src} is below {dst})")
    assert not bad, "\n".join(sorted(bad))


def test_hardware_core_layers():
    """spec imports no other part of hardware; energy only spec; model not the mapper."""
    bad = []
    for mod, targets in _graph().items():
        if _part(mod, 1) != "hardware" or _part(mod, 2) not in HARDWARE_CORE:
            continue
        src = HARDWARE_CORE.index(_part(mod, 2))
        for t in targets:
            if _part(t, 1) != "hardware":
                continue
            dst = _part(t, 2)
            if dst == "":
                bad.append(f"{mod} imports the hardware package itself ({t})")
            elif dst not in HARDWARE_CORE or HARDWARE_CORE.index(dst) > src:
                bad.append(f"{mod} imports {t}")
    assert not bad, "\n".join(sorted(bad))


def test_spec_layer_imports_nothing_of_the_model():
    bad = [f"{m} imports {t}" for m, ts in _graph().items() if m.startswith("a3cs_plugin.hardware.spec")
           for t in ts if t.startswith("a3cs_plugin.hardware.model")]
    assert not bad, "\n".join(bad)


_GUARD = re.compile(r"except \(?(ImportError|ModuleNotFoundError)")


def test_import_error_guards_only_for_optional_dependencies():
    found: dict = {}
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(REPO).as_posix()
        for i, line in enumerate(p.read_text().splitlines(), 1):
            if _GUARD.search(line):
                found.setdefault(rel, []).append((i, line.strip()))
    optional_files = {f for f, _ in OPTIONAL}
    bad = []
    for rel, hits in found.items():
        if rel in KNOWN_DEBT:
            continue
        if rel not in optional_files:
            bad += [f"{rel}:{i}: {line}" for i, line in hits]
            continue
        deps = [d for f, d in OPTIONAL if f == rel]
        bad += [f"{rel}:{i}: comment must name the optional dependency ({deps})" for i, line in hits
                if "#" not in line or not any(d in line for d in deps)]
    assert not bad, ("guard only genuinely optional dependencies, with a comment naming which:\n"
                     + "\n".join(bad))
    stale = sorted((KNOWN_DEBT | optional_files) - set(found))
    assert not stale, f"these files no longer guard imports: delete them from the lists {stale}"
