"""GRPO and the rlhf pipeline survive SIGKILL: a real training process is killed mid-run; a new process resumes from the
last checkpoint with the same step numbering (rewards rebuilt from run.json), and `rlhf` called again skips its finished
stages and resumes the one that was killed."""
import os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOTAL = 40
PROMPTS = str(ROOT/"datasets/prompts/train.jsonl")

TRAIN = textwrap.dedent(f"""
    import sys, alignkit as ak
    from alignkit.online import grpo, char_fraction, length_penalty
    model, tok = ak.load_model("tiny-llama", seed=0, quant="fp32")
    grpo(model, {PROMPTS!r}, rewards=[char_fraction("aeiou"), length_penalty(16)], lora=0, output_dir=sys.argv[1],
         background=False, max_steps={TOTAL}, save_steps=10, learning_rate=1e-2, max_completion_length=16)
""")
RESUME = textwrap.dedent("""
    import sys, alignkit as ak
    run = ak.Run.open(sys.argv[1])
    run.resume(background=False)
    print([type(r).__name__ + ':' + r.__name__ for r in run.rewards])
    print(run.status)
""")
RLHF = textwrap.dedent(f"""
    import sys
    from alignkit.online import rlhf
    p = rlhf("tiny-llama", {str(ROOT/'datasets/sft/train.jsonl')!r}, {str(ROOT/'datasets/preference/train.jsonl')!r}, {PROMPTS!r},
             output_dir=sys.argv[1], lora=8, quant="fp32", sft_args=dict(max_steps=6, save_steps=3),
             reward_args=dict(max_steps=6, save_steps=3), rl_args=dict(max_steps=30, save_steps=5, max_completion_length=8))
    print(p.skipped, p.status)
""")

from sigkill import records as _records, kill_after_checkpoints as _kill_after_checkpoints, env as _sigkill_env

def _env(tmp): return _sigkill_env(tmp, TQDM_DISABLE="1")

@pytest.mark.slow
def test_grpo_sigkill_then_resume(tmp_path):
    run_dir, env = tmp_path/"run", _env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", TRAIN, str(run_dir)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_at = _kill_after_checkpoints(proc, run_dir, 2)
    out = proc.communicate()[0].decode()
    assert killed_at is not None, f"training ended before it could be killed:\n{out[-3000:]}"
    assert proc.returncode == -signal.SIGKILL
    before = _records(run_dir)
    last_ckpt = max(r["step"] for r in before if r["type"] == "event" and r["event"] == "checkpoint")
    assert last_ckpt < killed_at < TOTAL

    res = subprocess.run([sys.executable, "-c", RESUME, str(run_dir)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    lines = res.stdout.strip().splitlines()
    assert lines[-1] == "finished"
    assert "char_fraction" in lines[-2] and "length" in lines[-2]          # the library rewards were rebuilt from run.json

    from alignkit.tracking import RunLog
    log = RunLog(run_dir)
    m = log.metrics
    assert m.dropna(subset=["loss"])["step"].tolist() == list(range(1, TOTAL + 1))    # every step once, none missing
    ev = log.events
    resume = ev[ev.event == "resume"]
    assert len(resume) == 1 and int(resume.step.iloc[0]) == last_ckpt
    # the resumed run continued the same trajectory: generation RNG, weights and optimizer were restored, so the
    # steps trained twice (after the checkpoint, before the kill) sampled the same completions and got the same rewards
    first = {r["step"]: r["values"]["reward"] for r in before if r["type"] == "metric" and "reward" in r["values"]}
    again = dict(zip(m.step, m["reward"]))
    replayed = [s for s in first if last_ckpt < s <= killed_at]
    assert replayed
    for s in replayed: assert again[s] == pytest.approx(first[s], rel=1e-3, abs=1e-4), s
    assert len(log.samples) > 0 and set(log.samples.rewards.iloc[0]) == {"char_fraction", "length"}

@pytest.mark.slow
def test_rlhf_skips_finished_stages_and_resumes_the_killed_one(tmp_path):
    root, env = tmp_path/"rlhf", _env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", RLHF, str(root)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_at = _kill_after_checkpoints(proc, root/"grpo", 1)
    out = proc.communicate()[0].decode()
    assert killed_at is not None, f"the pipeline ended before its RL stage could be killed:\n{out[-3000:]}"
    from alignkit.online import stage_state
    assert [stage_state(root/s) for s in ("sft", "reward", "grpo")] == ["finished", "finished", "stopped"]
    starts = {s: len([r for r in _records(root/s) if r["type"] == "event" and r["event"] in ("start", "resume")]) for s in ("sft", "reward")}

    res = subprocess.run([sys.executable, "-c", RLHF, str(root)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    assert res.stdout.strip().splitlines()[-1] == "['sft', 'reward'] finished"
    for s, n in starts.items():          # the finished stages did not train again
        assert len([r for r in _records(root/s) if r["type"] == "event" and r["event"] in ("start", "resume")]) == n
    ev = [r for r in _records(root/"grpo") if r["type"] == "event"]
    assert [e["event"] for e in ev if e["event"] in ("start", "resume")] == ["start", "resume"]
    assert stage_state(root/"grpo") == "finished"
    from alignkit.runners import RunConfig
    specs = RunConfig.load(root/"grpo").extra["rewards"]
    assert specs[0]["kind"] == "reward_model" and (root/"grpo"/specs[0]["path"]).exists()   # the RL reward is the trained RM
