"""What the SIGKILL-and-resume tests share: a clean environment for the training subprocess, the run log's records,
and killing the process once it has checkpointed and trained past its last checkpoint."""
import os, signal, time

def env(tmp, **extra):
    "The training subprocess's environment: its own model cache under `tmp`, no hub, one thread, quiet."
    return {**os.environ, "ALIGNKIT_CACHE": str(tmp/"cache"), "HF_HUB_OFFLINE": "1", "ALIGNKIT_QUIET": "1",
            "OMP_NUM_THREADS": "1", **extra}

def records(run_dir):
    from alignkit.tracking import RunLog
    return RunLog.read(run_dir)

def kill_after_checkpoints(proc, run_dir, n_ckpt:int=2, past:int=2, timeout:float=300):
    "SIGKILL `proc` once `run_dir` has `n_ckpt` checkpoints and training is `past` steps beyond the last; the step it was killed at (None if it ended first)."
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if (run_dir/"log.jsonl").exists():
            recs = records(run_dir)
            ck = [r["step"] for r in recs if r["type"] == "event" and r["event"] == "checkpoint"]
            steps = [r["step"] for r in recs if r["type"] == "metric"]
            if len(ck) >= n_ckpt and steps and steps[-1] >= ck[-1] + past:
                proc.send_signal(signal.SIGKILL)
                return steps[-1]
        time.sleep(0.02)
    return None
