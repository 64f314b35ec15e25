"""`a3cs reproduce --jobs N`: independent runs in their own processes (a3cs_plugin.cosearch.jobs)."""
from __future__ import annotations

import time

import pytest

from a3cs_plugin.cosearch.jobs import Task, default_jobs, run_tasks
from a3cs_plugin.errors import A3CSError


def _work(run: str, seconds: float, fail: bool = False, *, progress: bool, log) -> None:
    """A stand-in run: writes its start, sleeps, then fails or writes its end."""
    from pathlib import Path
    Path(run).mkdir(parents=True, exist_ok=True)
    log(f"working in {run} (progress {progress})")
    import os
    (Path(run) / "started").write_text(f"{time.time()} {os.getpid()}")
    time.sleep(seconds)
    if fail:
        raise A3CSError("bad things", key="x")
    (Path(run) / "ended").write_text(str(time.time()))


def _tasks(tmp_path, specs):
    return [Task(f"t{i}", f"{__name__}:_work", tmp_path / f"t{i}",
                 {"seconds": s, "fail": f}) for i, (s, f) in enumerate(specs)]


def test_runs_side_by_side_each_with_its_log(tmp_path):
    lines = []
    tasks = _tasks(tmp_path, [(3.0, False)] * 3)
    run_tasks(tasks, 3, progress=True, log=lines.append)
    starts = [float((t.run / "started").read_text().split()[0]) for t in tasks]
    ends = [float((t.run / "ended").read_text()) for t in tasks]
    assert max(starts) < min(ends)                         # all three ran at the same time
    for t in tasks:
        log = (t.run / "reproduce.log").read_text()
        assert f"working in {t.run} (progress False)" in log   # lines, no bars, in the run's own log
    assert sum("started" in s for s in lines) == 3 and sum("finished" in s for s in lines) == 3
    assert "3/3 done" in lines[-1]


def test_a_failed_run_stops_the_others_and_is_one_line(tmp_path):
    tasks = _tasks(tmp_path, [(60.0, False), (0.5, True), (0.1, False)])
    t0 = time.time()
    with pytest.raises(A3CSError) as e:
        run_tasks(tasks, 2, progress=False, log=lambda s: None)
    assert time.time() - t0 < 40                           # the 60 s run was stopped, not awaited
    msg = e.value.message
    assert "run t1 failed" in msg and "bad things" in msg and str(tasks[1].run / "reproduce.log") in msg
    assert "\n" not in msg
    assert "Traceback" in (tasks[1].run / "reproduce.log").read_text()
    assert not (tasks[0].run / "ended").exists()           # stopped
    assert not (tasks[2].run / "started").exists()         # never started


def test_one_job_runs_in_this_process_in_order(tmp_path):
    lines = []
    tasks = _tasks(tmp_path, [(0.0, False), (0.0, False)])
    run_tasks(tasks, 1, progress=True, log=lines.append)
    assert lines == [f"working in {t.run} (progress True)" for t in tasks]
    assert not (tasks[0].run / "reproduce.log").exists()


def test_default_jobs():
    assert default_jobs("cuda:0") == 1
    assert default_jobs("cpu") >= 1


def test_reproduce_jobs_bad_value_is_one_line(capsys):
    from a3cs_plugin.cli.main import main
    assert main(["reproduce", "fig2", "--budget", "tiny", "--jobs", "-1", "--out", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--jobs" in err


def _alive(pid: int) -> bool:
    from pathlib import Path
    st = Path(f"/proc/{pid}/status")
    try:
        return "\tZ" not in next(x for x in st.read_text().splitlines() if x.startswith("State:"))
    except (FileNotFoundError, StopIteration):
        return False


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_killing_the_command_stops_its_runs(tmp_path, sig):
    """A killed `a3cs reproduce --jobs N` leaves no run behind to write beside a later --resume."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path
    here = Path(__file__).parent
    script = (f"import sys; sys.path.insert(0, {str(here)!r})\n"
              "from pathlib import Path\n"
              f"from {__name__} import _tasks\n"
              "from a3cs_plugin.cosearch.jobs import run_tasks\n"
              f"run_tasks(_tasks(Path({str(tmp_path)!r}), [(120.0, False)] * 2), 2, progress=False, log=print)\n")
    parent = subprocess.Popen([sys.executable, "-c", script])
    started = [tmp_path / f"t{i}" / "started" for i in range(2)]
    deadline = time.time() + 120
    while not all(f.is_file() and f.read_text().strip() for f in started):
        assert time.time() < deadline and parent.poll() is None, "the runs did not start"
        time.sleep(0.5)
    pids = [int(f.read_text().split()[1]) for f in started]
    assert all(_alive(p) for p in pids)
    os.kill(parent.pid, getattr(signal, sig))
    parent.wait(timeout=60)
    deadline = time.time() + 30
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.5)
    assert not any(_alive(p) for p in pids), f"runs outlived a {sig} of their command"
