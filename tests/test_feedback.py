"""Feedback loops from the model's own outputs: RLAIF pairs validate as preference data and a judge with total position
bias labels nothing; a self-rewarding run killed in its second round resumes at that round and step (the first round is
not trained again, the second keeps the pairs it was given)."""
import json, subprocess, sys, textwrap
from pathlib import Path
import pytest
from sigkill import env as _sigkill_env, records, kill_after_checkpoints

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = str(ROOT/"datasets/prompts/train.jsonl")

@pytest.fixture(scope="module")
def tiny():
    import alignkit as ak
    return ak.load_model("tiny-llama", seed=0, quant="fp32")

def test_rlaif_pairs_validate_and_a_position_biased_judge_labels_nothing(tiny):
    import alignkit as ak
    model, tok = tiny
    rows = [json.loads(l) for l in open(PROMPTS)][:6]
    ra = ak.rlaif(model, rows, k=3, max_new_tokens=6, seed=1)
    assert len(ra.rows) == 6 and len(ra.pairs) + sum(ra.dropped.values()) == 6
    assert ra.pairs, ra.dropped                                  # the tiny model's own judgement decides some pairs
    data = ak.load_data(ra.pairs, kind="preference").to_list()
    assert len(data) == len(ra.pairs) and all(p["chosen"] != p["rejected"] for p in data)
    assert all(p["source"] == "rlaif" and p["margin"] > 0 for p in ra.pairs)
    always_a = lambda texts: ["A"] * len(texts)                  # says "A" whatever comes first: the swap cancels it
    biased = ak.rlaif(model, rows, judge=always_a, k=2, max_new_tokens=6, seed=1)
    assert biased.pairs == [] and set(biased.dropped) <= {"tie", "all samples the same or empty"}, biased.dropped

SELF = textwrap.dedent("""
    import sys, alignkit as ak
    sr = ak.self_rewarding("tiny-llama", {prompts!r}, rounds=2, k=3, output_dir=sys.argv[1], background=False, lora=8, quant="fp32",
                           max_new_tokens=6, dpo_args=dict(max_steps=16, save_steps=4, learning_rate=1e-3, per_device_train_batch_size=4))
    print(sr.skipped, sr.status)
""")

@pytest.mark.slow
def test_a_killed_self_rewarding_run_resumes_at_its_round_and_step(tmp_path):
    root, env = tmp_path/"sr", _sigkill_env(tmp_path, TQDM_DISABLE="1")
    script = SELF.format(prompts=PROMPTS)
    proc = subprocess.Popen([sys.executable, "-c", script, str(root)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_at = kill_after_checkpoints(proc, root/"round-2", 1)
    out = proc.communicate()[0].decode()
    assert killed_at is not None, f"the run ended before its second round could be killed:\n{out[-3000:]}"
    from alignkit.pipeline import stage_state
    assert [stage_state(root/s) for s in ("round-1", "round-2")] == ["finished", "stopped"]
    pairs2 = (root/"pairs-2.jsonl").read_bytes()
    starts = lambda s: [r["event"] for r in records(root/s) if r["type"] == "event" and r["event"] in ("start", "resume")]
    assert starts("round-1") == ["start"]

    res = subprocess.run([sys.executable, "-c", script, str(root)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    assert res.stdout.strip().splitlines()[-1] == "['round-1'] finished"
    assert starts("round-1") == ["start"]                        # the finished round did not train again
    assert starts("round-2") == ["start", "resume"] and stage_state(root/"round-2") == "finished"
    assert (root/"pairs-2.jsonl").read_bytes() == pairs2         # the resumed round trains on the pairs it was given
    from alignkit.tracking import RunLog
    assert RunLog(root/"round-2").metrics.dropna(subset=["loss"])["step"].tolist() == list(range(1, 17))
