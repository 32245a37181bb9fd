"""Training never outlives the cell that started it by accident: ■ (KeyboardInterrupt) on `run.wait()` stops the run;
`stop_all_jobs()` stops a run training in the foreground of another thread (where execnb runs a cell, and where its
cell timeout cannot reach); and the notebook test driver stops what a timed-out cell left training."""
import json, os, subprocess, sys, textwrap, threading, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SFT = str(ROOT/"datasets/sft/train.jsonl")


def _events(run_dir):
    rows = [json.loads(l) for l in (Path(run_dir)/"log.jsonl").read_text().splitlines() if l.strip()] if (Path(run_dir)/"log.jsonl").exists() else []
    return [r for r in rows if r.get("type") == "event"]


def _steps(run_dir):
    p = Path(run_dir)/"log.jsonl"
    if not p.exists(): return 0
    return sum(json.loads(l).get("type") == "metric" for l in p.read_text().splitlines() if l.strip())


INTERRUPT = textwrap.dedent(f"""
    import os, signal, sys, threading, time
    signal.signal(signal.SIGINT, signal.default_int_handler)   # as a Jupyter kernel has it (a background shell may ignore SIGINT)
    import alignkit as ak
    run = ak.sft("tiny-llama", {SFT!r}, output_dir=sys.argv[1], background=True, max_steps=100000, lora=4,
                 per_device_train_batch_size=2, save_steps=100000)
    def interrupt():
        while run.log.last_step is None or run.log.last_step < 3: time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)                 # what ■ in Jupyter does
    threading.Thread(target=interrupt, daemon=True).start()
    try: run.wait()
    except KeyboardInterrupt: print("interrupted")
    print(run.status, run._thread.is_alive(), run.log.last_step)
""")


def test_interrupting_wait_stops_a_background_run(tmp_path):
    env = {**os.environ, "ALIGNKIT_QUIET": "1", "OMP_NUM_THREADS": "1", "ALIGNKIT_CACHE": os.environ.get("ALIGNKIT_CACHE", "")}
    env = {k: v for k, v in env.items() if v != ""}
    out = subprocess.run([sys.executable, "-c", INTERRUPT, str(tmp_path/"run")], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    lines = out.stdout.split()
    assert "interrupted" in lines, out.stdout + out.stderr[-3000:]
    status, alive, last = lines[-3:]
    assert (status, alive) == ("stopped", "False"), out.stdout
    assert 3 <= int(last) < 100000


def test_stop_all_jobs_reaches_a_foreground_run_in_another_thread(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNKIT_QUIET", "1")
    import alignkit as ak
    from alignkit.core import active_jobs, stop_all_jobs
    run_dir, box = tmp_path/"fg", {}
    def cell():                 # a notebook cell as execnb runs it: on a thread of its own, training in the foreground
        box["run"] = ak.sft("tiny-llama", SFT, output_dir=run_dir, background=False, max_steps=100000, lora=4,
                            per_device_train_batch_size=2, save_steps=100000)
    t = threading.Thread(target=cell, daemon=True); t.start()
    deadline = time.monotonic() + 300
    while _steps(run_dir) < 3 and time.monotonic() < deadline and t.is_alive(): time.sleep(0.05)
    assert _steps(run_dir) >= 3 and [j for j in active_jobs() if getattr(j, "run_dir", None) == run_dir]
    stopped = stop_all_jobs(timeout=120)
    t.join(120)
    assert not t.is_alive() and [j.run_dir for j in stopped] == [run_dir]
    assert box["run"].status == "stopped" and 3 <= _steps(run_dir) < 100000
    assert any(e["event"] == "stop" for e in _events(run_dir))


NOTEBOOK = {"cells": [
    {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "id": "a1",
     "source": f"import alignkit as ak\nak.sft('tiny-llama', {SFT!r}, output_dir='RUN_DIR', background=False, max_steps=100000, lora=4, "
               "per_device_train_batch_size=2, save_steps=100000)"}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.slow
def test_the_notebook_driver_stops_training_a_timed_out_cell_left(tmp_path):
    "A cell training in the foreground times out: the notebook fails, and its training is stopped (a stop event), not left running."
    nb, run_dir = tmp_path/"runaway.ipynb", tmp_path/"run"
    nb.write_text(json.dumps(NOTEBOOK).replace("RUN_DIR", str(run_dir)))
    env = {**os.environ, "ALIGNKIT_QUIET": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(ROOT/"tools/nbtest.py"), "--n-workers", "1", "--cell-timeout", "20", str(nb)],
                         capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert out.returncode == 1 and "FAIL runaway.ipynb" in out.stdout, out.stdout + out.stderr[-3000:]
    assert "stopped 1 job(s) still training" in out.stderr, out.stderr[-3000:]
    assert any(e["event"] == "stop" for e in _events(run_dir)), _events(run_dir)
    assert 0 < _steps(run_dir) < 100000
