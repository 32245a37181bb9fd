"""PPO (alignkit.ppo) in real processes: SIGKILL mid-run, then `Run.open(dir).resume()` in a fresh process continues with
the same step numbering and the same trajectory; the run log ends with every step exactly once."""
import os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOTAL = 30

REWARDS = textwrap.dedent("""
    def digits(prompts, completions, **kwargs):
        "Number of digit characters in each completion."
        text = lambda c: c if isinstance(c, str) else c[-1]["content"]
        return [float(sum(ch.isdigit() for ch in text(c))) for c in completions]
""")
TRAIN = textwrap.dedent(f"""
    import sys, alignkit as ak
    from alignkit.ppo import ppo
    from ppo_test_rewards import digits
    model, tok = ak.load_model("tiny-llama", seed=0, quant="fp32", lora=8)
    ppo(model, {str(ROOT/'datasets/prompts/train.jsonl')!r}, reward=digits, output_dir=sys.argv[1], background=False,
        max_steps={TOTAL}, save_steps=5, learning_rate=1e-3, per_device_train_batch_size=8, num_mini_batches=2,
        max_completion_length=8, temperature=1.0)
""")
RESUME = textwrap.dedent("""
    import sys, alignkit as ak
    run = ak.Run.open(sys.argv[1])
    run.resume(background=False)
    print(run.status)
""")

from sigkill import records as _records, kill_after_checkpoints, env as _sigkill_env

def _env(tmp): return _sigkill_env(tmp, PYTHONPATH=os.pathsep.join([str(tmp), os.environ.get("PYTHONPATH", "")]))

@pytest.mark.slow
def test_ppo_sigkill_then_resume(tmp_path):
    (tmp_path/"ppo_test_rewards.py").write_text(REWARDS)
    run_dir, env = tmp_path/"run", _env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", TRAIN, str(run_dir)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_at = kill_after_checkpoints(proc, run_dir, 2)   # once two checkpoints exist and training is past them
    out = proc.communicate()[0].decode()
    assert killed_at is not None, f"training ended before it could be killed:\n{out[-3000:]}"
    assert proc.returncode == -signal.SIGKILL
    before = _records(run_dir)
    last_ckpt = max(r["step"] for r in before if r["type"] == "event" and r["event"] == "checkpoint")
    assert killed_at < TOTAL and last_ckpt < killed_at
    ck = run_dir/f"checkpoint-{last_ckpt}"
    for f in ("adapter_model.safetensors", "value_head.pt", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"):
        assert (ck/f).exists(), f

    res = subprocess.run([sys.executable, "-c", RESUME, str(run_dir)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    assert res.stdout.strip().endswith("finished")

    from alignkit.tracking import RunLog
    log = RunLog(run_dir)
    m = log.metrics
    assert m.dropna(subset=["loss"])["step"].tolist() == list(range(1, TOTAL + 1))      # no duplicated and no missing steps
    for k in ("objective/kl", "objective/scores", "objective/rlhf_reward", "policy/approxkl", "policy/clipfrac", "policy/entropy",
              "entropy", "loss/policy", "loss/value", "val/clipfrac", "learning_rate"):
        assert m[k].notna().all(), k
    ev = log.events
    resume = ev[ev.event == "resume"]
    assert len(resume) == 1 and int(resume.step.iloc[0]) == last_ckpt
    # The steps trained twice (after the checkpoint, before the kill) repeat exactly: same prompts, same sampled
    # completions (RNG restored), same weights, optimizer and scheduler, so the same scores and losses.
    first = {r["step"]: r["values"] for r in before if r["type"] == "metric" and "loss" in r["values"]}
    again = m.set_index("step")
    replayed = [s for s in first if last_ckpt < s <= killed_at]
    assert replayed
    for s in replayed:
        for k in ("loss", "objective/scores", "objective/kl"):
            assert again.loc[s, k] == pytest.approx(first[s][k], rel=1e-4, abs=1e-5), (s, k)
    assert len(log.samples) > 0
