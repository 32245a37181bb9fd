"""Runs survive SIGKILL: a real training process is killed mid-run; a new process resumes from the last checkpoint with
the same step numbering and the same trajectory, and the run log ends with every step exactly once. One flow for every
runner (SFT, GRPO with library rewards, PPO with an imported reward and with library rewards), the rlhf pipeline
killed in its RL stage (GRPO and PPO), and DPO resumed in the same process and in a fresh one giving the same losses."""
import json, os, shutil, signal, subprocess, sys, textwrap
from pathlib import Path
import pytest
from sigkill import env as _sigkill_env, records, kill_after_checkpoints

ROOT = Path(__file__).resolve().parents[1]
SFT, PAIRS, PROMPTS = (str(ROOT/f"datasets/{d}/train.jsonl") for d in ("sft", "preference", "prompts"))

DIGITS = textwrap.dedent("""
    def digits(prompts, completions, **kwargs):
        "Number of digit characters in each completion."
        text = lambda c: c if isinstance(c, str) else c[-1]["content"]
        return [float(sum(ch.isdigit() for ch in text(c))) for c in completions]
""")
PPO = "max_steps=30, save_steps=5, learning_rate=1e-3, per_device_train_batch_size=8, num_mini_batches=2, max_completion_length=8, temperature=1.0"
CASES = {   # name: (training script, total steps, metrics that must repeat on the steps trained twice)
    "sft": (f"""
        model, tok = ak.load_model("tiny-llama", seed=0, quant="fp32")
        ak.sft(model, {SFT!r}, output_dir=sys.argv[1], background=False, max_steps=120, save_steps=10, learning_rate=1e-3,
               per_device_train_batch_size=4)""", 120, ("loss",)),
    "grpo": (f"""
        model, tok = ak.load_model("tiny-llama", seed=0, quant="fp32")
        ak.grpo(model, {PROMPTS!r}, rewards=[ak.char_fraction("aeiou"), ak.length_penalty(16)], lora=0, output_dir=sys.argv[1],
                background=False, max_steps=40, save_steps=10, learning_rate=1e-2, max_completion_length=16)""", 40, ("reward",)),
    "ppo": (f"""
        from resume_test_rewards import digits
        model, tok = ak.load_model("tiny-llama", seed=0, quant="fp32", lora=8)
        ak.ppo(model, {PROMPTS!r}, rewards=digits, output_dir=sys.argv[1], background=False, {PPO})""", 30,
            ("loss", "objective/scores", "objective/kl")),
    # library rewards are closures: rebuilt from their spec in run.json, not imported
    "ppo-library-rewards": (f"""
        model, tok = ak.load_model("tiny-llama", seed=0, quant="fp32", lora=8)
        ak.ppo(model, {PROMPTS!r}, rewards=[ak.format_reward(r".*[0-9].*", name="has_digit"), ak.length_penalty(8)],
               output_dir=sys.argv[1], background=False, {PPO})""", 30, ("loss", "objective/scores", "objective/kl")),
}
RESUME = textwrap.dedent("""
    import sys, alignkit as ak
    run = ak.Run.open(sys.argv[1], trust=True)   # no runner module imported: the registry finds it; trust: its reward module is ours
    run.resume(background=False)
    print([type(r).__name__ + ':' + r.__name__ for r in (run.rewards or [])])
    print(run.status)
""")

def _env(tmp):
    (tmp/"resume_test_rewards.py").write_text(DIGITS)
    return _sigkill_env(tmp, TQDM_DISABLE="1", PYTHONPATH=os.pathsep.join([str(tmp), os.environ.get("PYTHONPATH", "")]))

def _script(body): return "import sys, alignkit as ak\n" + textwrap.dedent(body)

def _resume(run_dir, env, cwd):
    res = subprocess.run([sys.executable, "-c", RESUME, str(run_dir)], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    return res.stdout.strip().splitlines()

def _values(recs): return {r["step"]: r["values"] for r in recs if r["type"] == "metric" and "loss" in r["values"]}

@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_sigkill_then_resume(case, tmp_path):
    body, total, repeat = CASES[case]
    run_dir, env = tmp_path/"run", _env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", _script(body), str(run_dir)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_at = kill_after_checkpoints(proc, run_dir, 2, past=3)   # once two checkpoints exist and training is past them
    out = proc.communicate()[0].decode()
    assert killed_at is not None, f"training ended before it could be killed:\n{out[-3000:]}"
    assert proc.returncode == -signal.SIGKILL
    from alignkit.runners import run_dir_busy
    assert not run_dir_busy(run_dir)                              # the OS lock died with the process
    half = [c.name for c in run_dir.glob("checkpoint-*") if not (c/"trainer_state.json").exists()]
    assert half == [], f"a checkpoint-N folder was left half written: {half}"   # PPO writes into a hidden temp folder, then renames
    before = records(run_dir)
    last_ckpt = max(r["step"] for r in before if r["type"] == "event" and r["event"] == "checkpoint")
    assert last_ckpt < killed_at < total

    lines = _resume(run_dir, env, tmp_path)
    assert lines[-1] == "finished"
    if case == "ppo-library-rewards": assert lines[-2] == "['function:has_digit', 'function:length']"   # built from run.json
    from alignkit.tracking import RunLog
    log = RunLog(run_dir)
    m = log.metrics
    assert m.dropna(subset=["loss"])["step"].tolist() == list(range(1, total + 1))    # every step once, none missing
    assert log.stop_reason == "finished"
    ev = log.events
    resume = ev[ev.event == "resume"]
    assert len(resume) == 1 and int(resume.step.iloc[0]) == last_ckpt               # resumed from the last checkpoint
    # The steps trained twice (after the checkpoint, before the kill) repeat: weights, optimizer, scheduler, data order
    # and RNG (so the sampled completions) were restored.
    first, again = _values(before), m.set_index("step")
    replayed = [s for s in first if last_ckpt < s <= killed_at]
    assert replayed
    for s in replayed:
        for k in repeat: assert again.loc[s, k] == pytest.approx(first[s][k], rel=1e-3, abs=1e-4), (s, k)

RLHF = """
    p = ak.rlhf("tiny-llama", {sft!r}, {pairs!r}, {prompts!r}, rl={rl!r}, output_dir=sys.argv[1], lora=8, quant="fp32",
                sft_args=dict(max_steps=6, save_steps=3), reward_args=dict(max_steps=6, save_steps=3),
                rl_args=dict(max_steps=30, save_steps=5, max_completion_length=8))
    print(p.skipped, p.status)
"""

@pytest.mark.slow
@pytest.mark.parametrize("rl", ["grpo", "ppo"])
def test_rlhf_skips_finished_stages_and_resumes_the_killed_one(rl, tmp_path):
    root, env = tmp_path/"rlhf", _env(tmp_path)
    script = _script(RLHF.format(sft=SFT, pairs=PAIRS, prompts=PROMPTS, rl=rl))
    proc = subprocess.Popen([sys.executable, "-c", script, str(root)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_at = kill_after_checkpoints(proc, root/rl, 1)
    out = proc.communicate()[0].decode()
    assert killed_at is not None, f"the pipeline ended before its RL stage could be killed:\n{out[-3000:]}"
    from alignkit.pipeline import stage_state
    assert [stage_state(root/s) for s in ("sft", "reward", rl)] == ["finished", "finished", "stopped"]
    starts = lambda s: len([r for r in records(root/s) if r["type"] == "event" and r["event"] in ("start", "resume")])
    n = {s: starts(s) for s in ("sft", "reward")}

    res = subprocess.run([sys.executable, "-c", script, str(root)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    assert res.stdout.strip().splitlines()[-1] == "['sft', 'reward'] finished"
    assert {s: starts(s) for s in n} == n                    # the finished stages did not train again
    ev = [r["event"] for r in records(root/rl) if r["type"] == "event" and r["event"] in ("start", "resume")]
    assert ev == ["start", "resume"] and stage_state(root/rl) == "finished"
    from alignkit.runners import RunConfig
    from alignkit.tracking import RunLog
    assert RunLog(root/rl).metrics.dropna(subset=["loss"])["step"].tolist() == list(range(1, 31))
    specs = RunConfig.load(root/rl).rewards
    assert specs[0]["kind"] == "reward_model" and (root/rl/specs[0]["path"]).exists()   # the RL reward is the trained RM, rebuilt

DPO_RESUME = textwrap.dedent("""
    import sys, alignkit as ak
    run = ak.Run.open(sys.argv[1])
    run.resume(background=False)
    print(run.status)
""")

@pytest.mark.slow
def test_dpo_resumes_the_same_in_this_process_and_in_a_fresh_one(tmp_path):
    "The reference of a resumed DPO run is the model the run started from, wherever it resumes (not the trained adapter)."
    import alignkit as ak
    from alignkit.tracking import RunLog
    model, tok = ak.load_model("tiny-llama", seed=0, quant="fp32", lora=8)
    a = tmp_path/"a"
    run = ak.dpo(model, PAIRS, output_dir=a, background=False, max_steps=4, save_steps=2, learning_rate=5e-3,
                 per_device_train_batch_size=4)
    assert run.status == "finished" and run.config.options == {"reference": "base"}
    b = tmp_path/"b"
    shutil.copytree(a, b, ignore=shutil.ignore_patterns("datasets"))   # TRL's caches stay behind: the copy computes its own
    cfg = json.loads((b/"run.json").read_text()); cfg["args"]["max_steps"] = 8; (b/"run.json").write_text(json.dumps(cfg))
    run.config.args["max_steps"] = 8
    run.resume(background=False)                                          # in this process: the model has trained
    res = subprocess.run([sys.executable, "-c", DPO_RESUME, str(b)], env=_sigkill_env(tmp_path), cwd=tmp_path,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0 and res.stdout.strip().endswith("finished"), res.stderr[-4000:]
    la, lb = (RunLog(d).metrics.dropna(subset=["loss"]).set_index("step") for d in (a, b))
    assert la.index.tolist() == lb.index.tolist() == list(range(1, 9))
    for s in range(5, 9):
        for k in ("loss", "rewards/margins", "rewards/chosen"):
            assert la.loc[s, k] == pytest.approx(lb.loc[s, k], abs=1e-4), (s, k, la.loc[s, k], lb.loc[s, k])
    assert la.loc[8, "loss"] != pytest.approx(la.loc[5, "loss"], abs=1e-3)   # and it did train
