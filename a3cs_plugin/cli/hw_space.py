"""``a3cs hw template`` (a design space from a Timeloop spec) and ``a3cs hw merge-labels``."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from a3cs_plugin.errors import ConfigError


def register(sub) -> None:
    pt = sub.add_parser("template", help="write a design-space template whose parameters are the knobs "
                                         "of a Timeloop v0.4 spec (meshes, buffer depths/widths, clock)")
    pt.add_argument("specs", nargs="+", metavar="SPEC.yaml",
                    help="Timeloop v0.4 spec files (architecture with its constraints, components), "
                         "merged by key; problem / mapping / mapper sections are left out")
    pt.add_argument("--out", required=True, metavar="TEMPLATE.yaml", help="template file to write")
    pt.add_argument("--name", default=None, help="template name (default: the --out file's stem); it keys "
                                                 "the surrogate and its labels")
    pt.add_argument("--param", action="append", default=[], metavar="NODE.attr=v1,v2,...",
                    help="choices of one parameter (NODE.meshX, NODE.depth, NODE.width, clock_mhz, or any "
                         "numeric attribute of a node); must hold the spec's value; one value removes the "
                         "parameter. Repeatable")
    pt.add_argument("--dataflow", action="append", default=[], metavar="NAME=SPEC.yaml[,SPEC.yaml]",
                    help="a named constraint set: the per-node constraints of another spec with the same "
                         "node names (naming the input spec itself names its own set, else 'spec'). "
                         "Repeatable; adds a 'dataflow' parameter")
    pt.add_argument("--force", action="store_true", help="replace an existing --out file")
    pt.set_defaults(func=cmd_template)

    pm = sub.add_parser("merge-labels", help="merge surrogate label caches (e.g. the --shard i/n parts of "
                                             "a3cs hw fit-surrogate) into one, deduplicated by key")
    pm.add_argument("caches", nargs="+", metavar="LABELS.jsonl", help="label caches to merge")
    pm.add_argument("--out", required=True, metavar="MERGED.jsonl", help="merged cache to write")
    pm.add_argument("--force", action="store_true", help="replace an existing --out file")
    pm.set_defaults(func=cmd_merge_labels)


def _check_out(out: str, force: bool, suffixes: tuple) -> Path:
    p = Path(out)
    if p.is_dir():
        raise ConfigError("is a directory", file=out, key="--out", expected="a file path")
    if p.suffix not in suffixes:
        raise ConfigError(f"unexpected suffix '{p.suffix}'", file=out, key="--out",
                          expected=" or ".join(suffixes))
    for q in p.parents:
        if q.exists():
            if not q.is_dir():
                raise ConfigError(f"{q} is a file", file=out, key="--out", expected="a path in a directory")
            break
    if p.exists() and not force:
        raise ConfigError("file exists", file=out, key="--out", expected="a new path, or --force to replace it")
    return p


def cmd_template(args) -> int:
    from a3cs_plugin.hardware.space import DesignSpace
    from a3cs_plugin.hardware.space.from_spec import template_from_spec, template_yaml

    out = _check_out(args.out, args.force, (".yaml", ".yml"))
    dataflows = []
    for text in args.dataflow:
        name, eq, files = text.partition("=")
        if not eq or not name.strip() or not files.strip():
            raise ConfigError("malformed dataflow", key="--dataflow", expected="NAME=SPEC.yaml[,SPEC.yaml]",
                              got=text)
        dataflows.append((name.strip(), [f for f in files.split(",") if f]))
    name = args.name or out.stem
    doc = template_from_spec(args.specs, name=name, overrides=args.param, dataflows=dataflows)
    # the command line as written into the header: file names only, no machine paths
    parts = ["a3cs hw template"] + [Path(s).name for s in args.specs]
    parts += [f"--param {shlex.quote(p)}" for p in args.param]
    parts += [f"--dataflow {n}={','.join(Path(f).name for f in fs)}" for n, fs in dataflows]
    parts += [f"--out {out.name}"] + ([f"--name {args.name}"] if args.name else [])
    text = template_yaml(doc, " ".join(parts))
    from a3cs_plugin.hardware.space.template import load_yaml_text
    space = DesignSpace.from_dict(load_yaml_text(text, str(out)), source=str(out))   # reads back
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    n = len(space.parameters)
    searched = [p for p in space.parameters.values() if p.searched]
    sys.stdout.write(f"{out}: template '{space.name}', {n} parameters ({len(searched)} searched), "
                     f"{space.num_points} points\n")
    for p in space.parameters.values():
        flag = "" if p.searched else "  (not searched)"
        sys.stdout.write(f"  {p.name}: {list(p.choices)} default {p.default}{flag}\n")
    return 0


def cmd_merge_labels(args) -> int:
    from a3cs_plugin.hardware.surrogate.shards import merge_label_files

    out = _check_out(args.out, args.force, (".jsonl", ".json", ".txt"))
    res = merge_label_files(args.caches, out)
    sys.stdout.write(f"{out}: {res['records']} labels from {len(args.caches)} files "
                     f"({res['duplicates']} duplicates dropped, {res['errors']} without a mapping)\n")
    return 0
