"""Run the fuzz corpus of tests/test_fuzz_inputs.py and print the tally by command.

    python tools/fuzz_tally.py [-v]     # -v: also every case that is not clean

Outcomes: clean (one ``a3cs: error:`` line, exit 2), traceback, accepted (exit 0 or the input
reached the start of the real work), multiline (an error of more than one line), misleading (a
message that does not name what it must, for the cases listed in MUST_SAY).
"""
from __future__ import annotations

import importlib.util
import io
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class _Capture:
    """The two calls of pytest's capsys that the corpus runner uses."""

    def __init__(self):
        self.out, self.err = io.StringIO(), io.StringIO()

    def readouterr(self):
        o, e = self.out.getvalue(), self.err.getvalue()
        self.out.seek(0), self.out.truncate(), self.err.seek(0), self.err.truncate()
        return type("Captured", (), {"out": o, "err": e})()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = importlib.util.spec_from_file_location("fuzz_inputs", REPO / "tests" / "test_fuzz_inputs.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    cap = _Capture()
    with tempfile.TemporaryDirectory() as tmp:
        import os
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            with redirect_stdout(cap.out), redirect_stderr(cap.err):
                results, tally = mod.run_corpus(Path(tmp) / "corpus", cap)
        finally:
            os.chdir(cwd)
    print(mod.format_tally(tally))
    if "-v" in argv:
        for c, outcome, detail in results:
            if outcome != ("accepted" if c.control else "clean"):
                print(f"[{c.command}] {c.name}: {outcome}: {detail}")
    if "-a" in argv:
        for c, outcome, detail in results:
            print(f"[{c.command}] {c.name}: {outcome}: {detail}")
    for c, outcome, detail in results:
        if c.control and outcome != "accepted":
            print(f"control [{c.command}] {c.name} not accepted: {outcome}: {detail}")
    return 0 if all(o == ("accepted" if c.control else "clean") for c, o, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
