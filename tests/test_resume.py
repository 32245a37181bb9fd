"""Kill a real training process with SIGKILL mid-run; a new process resumes from the last checkpoint with the same
step numbering, and the run log then has every step exactly once."""
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOTAL = 120

TRAIN = textwrap.dedent(f"""
    import sys, alignkit as ak
    model, tok = ak.load_model("tiny-llama", seed=0, quant="fp32")
    ak.sft(model, {str(ROOT/'datasets/sft/train.jsonl')!r}, output_dir=sys.argv[1], background=False,
           max_steps={TOTAL}, save_steps=10, learning_rate=1e-3, per_device_train_batch_size=4)
""")
RESUME = textwrap.dedent("""
    import sys, alignkit as ak
    run = ak.Run.open(sys.argv[1])
    run.resume(background=False)
    print(run.status)
""")

from sigkill import env as _env, records as _records, kill_after_checkpoints

@pytest.mark.slow
def test_sigkill_then_resume(tmp_path):
    run_dir = tmp_path/"run"
    env = _env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", TRAIN, str(run_dir)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_at = kill_after_checkpoints(proc, run_dir, 2, past=3)   # once two checkpoints exist and training is past them
    out = proc.communicate()[0].decode()
    assert killed_at is not None, f"training ended before it could be killed:\n{out[-3000:]}"
    assert proc.returncode == -signal.SIGKILL
    before = _records(run_dir)
    last_ckpt = max(r["step"] for r in before if r["type"] == "event" and r["event"] == "checkpoint")
    assert killed_at < TOTAL and last_ckpt < killed_at

    res = subprocess.run([sys.executable, "-c", RESUME, str(run_dir)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    assert res.stdout.strip().endswith("finished")

    from alignkit.tracking import RunLog
    log = RunLog(run_dir)
    m = log.metrics
    train_steps = m.dropna(subset=["loss"])["step"].tolist()
    assert train_steps == list(range(1, TOTAL + 1))                 # no duplicated and no missing steps
    ev = log.events
    resume = ev[ev.event == "resume"]
    assert len(resume) == 1 and int(resume.step.iloc[0]) == last_ckpt  # resumed from the last checkpoint, same numbering
    # The steps trained twice (after the checkpoint, before the kill) give the same losses again: the resumed run
    # continued the same trajectory (weights, optimizer, scheduler, data order and RNG restored).
    first = {r["step"]: r["values"]["loss"] for r in before if r["type"] == "metric" and "loss" in r["values"]}
    again = dict(zip(m.step, m.loss))
    replayed = [s for s in first if last_ckpt < s <= killed_at]
    assert replayed
    for s in replayed: assert again[s] == pytest.approx(first[s], rel=1e-3, abs=1e-4), s
