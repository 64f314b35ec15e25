"""``a3cs sweep report``: the Pareto front of a finished sweep (NNI experiment or run directories)."""
from __future__ import annotations


def cmd_report(args) -> int:
    from a3cs_plugin.cli import checks
    from a3cs_plugin.cosearch.sweep import load_sweep, summary_rows, write_report

    checks.out_dir("--out", args.out)
    sweep = load_sweep(args.source, experiments_dir=args.experiments_dir)
    for line in summary_rows(sweep):
        print(line)
    for s in sweep["skipped"]:
        print(f"  {s['label']}: {s['why']}")
    paths = write_report(sweep, args.out)
    front = sum(p["pareto"] for p in sweep["points"])
    n = len(sweep["points"])
    print(f"{n} trial{'s' if n != 1 else ''}, {front} on the Pareto front (score up, FPS up, energy down) -> "
          + ", ".join(str(paths[k]) for k in ("png", "md", "json")))
    return 0


def register(sub) -> None:
    p = sub.add_parser("sweep", help="reports over a sweep of co-searches (NNI experiment)")
    ssub = p.add_subparsers(dest="sweep_command", metavar="SUBCOMMAND", parser_class=type(p))
    r = ssub.add_parser("report", help="Pareto front of (score, FPS, energy) of a finished sweep: "
                        "pareto.png, pareto.md, pareto.json")
    r.add_argument("source", metavar="EXPERIMENT_ID|DIR",
                   help="an NNI experiment id (nnictl experiment list --all), an experiment directory "
                        "(with db/nni.sqlite), or a directory of `a3cs search` run directories")
    r.add_argument("--out", required=True, help="directory for pareto.png, pareto.md, pareto.json")
    r.add_argument("--experiments-dir", default=None,
                   help="where the experiment lives when not in nnictl's list (its "
                        "experimentWorkingDirectory; default ~/nni-experiments)")
    r.set_defaults(func=cmd_report)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
