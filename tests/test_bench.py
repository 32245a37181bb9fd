"""The runner bench's own machinery (tools/bench/bench_runners.py): a trainer over its time budget is stopped —
between steps, or inside a step that would run on — and the ratio is then taken over the steps both sides did, or
bounded from the step that was cut short. Real TRL training on the tiny random model, a few seconds."""
import sys, threading, time, warnings
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/"tools/bench"))


def _trainer(tmp_path, max_steps):
    import trl
    from alignkit.data import load_data
    from alignkit.models import load_model
    model, tok = load_model("tiny-llama", lora=4, seed=0)
    data = load_data(ROOT/"datasets/sft/train.jsonl", kind="sft")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trl.SFTTrainer(model=model, processing_class=tok, train_dataset=data.dataset,
                              args=trl.SFTConfig(output_dir=str(tmp_path), max_steps=max_steps, report_to="none", use_cpu=True,
                                                 per_device_train_batch_size=2, save_strategy="no", bf16=False, disable_tqdm=True))


def _train_metered(trainer, budget, slow_s=0.0, abort=True):
    "Train `trainer` alone under a Meter with `budget` seconds; `slow_s` makes each decoder layer's forward that much slower."
    import bench_runners as b
    gate = b.Turnstile(["x"])
    meter = b.Meter("x", gate, budget=budget)
    meter.attach(trainer, abort=abort)
    if slow_s:
        for mod in trainer.model.modules():
            if type(mod).__name__.endswith("DecoderLayer"): mod.register_forward_pre_hook(lambda *_: time.sleep(slow_s))
    gate.open()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.train()
    except b.OverBudget: meter.stopped_in_step()
    finally: gate.finish("x")
    return meter


def test_a_trainer_over_budget_stops_between_steps(tmp_path):
    m = _train_metered(_trainer(tmp_path, max_steps=50), budget=0.0, abort=False)   # as alignkit's side is metered
    assert len(m.times) == 1 and m.partial is None            # one step done, then stopped at its end, not 50
    assert m.tokens[0] > 0 and m.labelled[0] > 0 and m.sumsq[0] >= m.tokens[0]


def test_a_step_that_runs_past_the_budget_is_cut_short(tmp_path):
    t = time.perf_counter()
    m = _train_metered(_trainer(tmp_path, max_steps=3), budget=0.3, slow_s=0.5)   # a step: ≥ 2 layers × 0.5 s
    assert time.perf_counter() - t < 3                          # it did not run the 3 s of its steps
    assert m.times == [] and m.partial is not None and m.partial[1] > 0


def test_ratios_pair_the_steps_both_did():
    from bench_runners import pair_ratio
    fast = [(1.0, 100)] * 6
    r = pair_ratio(fast, [(2.0, 100)] * 3)                     # the slow side did 3 steps within its budget
    assert r[0] == pytest.approx(2.0) and r[4] == 3 and r[5] is False
    r = pair_ratio(fast, [], partial=(10.0, 100))              # it did none: a lower bound from its unfinished step
    assert r[0] == pytest.approx(10.0) and r[4] == 0 and r[5] is True
    assert pair_ratio(fast, []) is None


def test_the_work_formula_counts_what_lora_training_must_do():
    "4·N_body + 6·N_lora per token, 4·V·d per labelled position, 6·L·D·Σ len²; DPO adds the reference forward."
    import bench_runners as b
    from alignkit.models import load_model
    model, _ = load_model("tiny-llama", lora=4, seed=0)
    terms = b.work_terms(model)
    cfg = model.get_base_model().config
    assert terms["head"] == cfg.vocab_size * cfg.hidden_size and terms["adapter"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0 < terms["body"] < sum(p.numel() for p in model.parameters())
    m = b.Meter("x", b.Turnstile(["x"]))
    m.tokens, m.labelled, m.sumsq = [0, 10], [0, 4], [0, 50]              # the first is the warm-up step, left out
    sft, = m.work(terms, dpo=False); dpo, = m.work(terms, dpo=True)
    assert sft == 10 * (4 * terms["body"] + 6 * terms["adapter"]) + 4 * 4 * terms["head"] + 6 * 50 * terms["attn"]
    assert dpo - sft == 10 * 2 * terms["body"] + 4 * 2 * terms["head"] + 2 * 50 * terms["attn"]
