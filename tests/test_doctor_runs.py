"""The run doctor on real runs (tiny random Llama, real TRL training, fixed seeds): an SFT on one row for many steps
overfits against an eval set, and a GRPO rewarded for long completions hacks its reward while the held-out exact match
of answers it had learned falls — each diagnosed, logged as a `diagnosis` event, and shown again when the run is reopened."""
import json, os
from pathlib import Path
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import alignkit as ak
from alignkit.tracking import RunLog

ROOT = Path(__file__).resolve().parents[1]
Q = dict(background=False, save_steps=1000, disable_tqdm=True)

def _logged(run_dir):
    return [e["data"]["rule"] for e in RunLog.read(run_dir) if e["type"] == "event" and e["event"] == "diagnosis"]

def test_sft_on_one_row_overfits(tmp_path):
    rows = ak.load_data(ROOT/"datasets/sft/train.jsonl", kind="sft").to_list()
    model, _ = ak.load_model("tiny-llama", seed=0, quant="fp32")
    run = ak.sft(model, rows[:1] * 8, eval_data=rows[1:33], output_dir=tmp_path/"sft", max_steps=90, learning_rate=5e-3,
                 per_device_train_batch_size=8, eval_strategy="steps", eval_steps=3, **Q)
    m = run.metrics.dropna(subset=["eval_loss"])
    assert m.loss.iloc[-1] < m.loss.iloc[0] / 10 and m.eval_loss.iloc[-1] > m.eval_loss.min() * 1.05   # what overfitting is
    found = run.diagnose()
    over = [d for d in found.rows if d["rule"] == "overfitting"]
    # an early bump that falls back is an episode of its own (how many depends on the machine's float sums: 1 thread or 2);
    # exactly one runs to the end of the run, and its fix stops at the best eval step
    last = [d for d in over if d["end"] == int(m.step.iloc[-1])]
    assert len(last) == 1 and last[0]["fixes"][0]["max_steps"] == int(m.step[m.eval_loss.idxmin()]), found.rows
    assert _logged(tmp_path/"sft").count("overfitting") == len(over)
    again = ak.doctor.diagnose(tmp_path/"sft")              # a reopened run: the same diagnoses, not logged twice
    assert [d["rule"] for d in again.rows].count("overfitting") == len(over) and _logged(tmp_path/"sft").count("overfitting") == len(over)

def test_grpo_length_reward_hacks_against_held_out_exact_match(tmp_path):
    rows = [json.loads(l) for l in open(ROOT/"datasets/prompts/train.jsonl")]
    known = rows[:8]                                        # answers the model learns first: exact match 1.0 held out
    model, tok = ak.load_model("tiny-llama", seed=0, quant="fp32")
    ak.sft(model, [{"prompt": r["prompt"], "completion": [{"role": "assistant", "content": r["answer"]}]} for r in known] * 8,
           output_dir=tmp_path/"sft", max_steps=150, learning_rate=3e-3, per_device_train_batch_size=8, **Q)
    assert ak.evaluate_rewards(model, known, tokenizer=tok, max_new_tokens=8)["exact_match"] == 1.0
    def long(completions, **kw): return [min(len(ak.completion_text(c)), 40) / 40 for c in completions]
    run = ak.grpo(model, rows[8:], rewards=[long], eval_data=known, held_out_every=4, lora=0, output_dir=tmp_path/"g",
                  max_steps=24, learning_rate=3e-3, max_completion_length=16, **Q)
    m = run.metrics
    ho = m.dropna(subset=["heldout/exact_match"])
    assert ho["heldout/exact_match"].iloc[0] == 1.0 and ho["heldout/exact_match"].iloc[-1] < 0.5      # the task is lost…
    assert m.reward.dropna().iloc[-4:].mean() > m.reward.dropna().iloc[:2].mean()                    # …while the reward rises
    hack = [d for d in run.diagnose().rows if d["rule"] == "heldout_reward_falls"]
    assert len(hack) == 1 and hack[0]["evidence"]["best_heldout"] == 1.0, hack
    assert _logged(tmp_path/"g").count("heldout_reward_falls") == 1
