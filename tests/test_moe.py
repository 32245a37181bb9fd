"""Tests for `alignkit.moe` that a notebook cannot express well: property-based checks of the routing statistics
against transformers' `load_balancing_loss_func` (random logits, random padding, already-softmaxed outputs), padding
invariance of `inspect` on a real model, and the training callback inside a real `transformers.Trainer` run (with
gradient accumulation, and its hooks removed afterwards)."""
import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ALIGNKIT_QUIET", "1")

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

from alignkit.moe import (NoRouterError, RouterStats, RouterStatsCallback, drift, freeze_experts, inspect, moe_blocks,
                          router_probs, tiny_moe, upcycle)

torch.set_num_threads(1)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

@st.composite
def routing(draw):
    "Random router logits for L layers of a [B, S] batch, an attention mask with some padding, E experts, top-k."
    L, B, S, E = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 7)), draw(st.integers(2, 8))
    k = draw(st.integers(1, E))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    scale = draw(st.sampled_from([0.1, 1.0, 10.0]))
    logits = tuple(scale * torch.randn(B * S, E, generator=g) for _ in range(L))
    lens = [draw(st.integers(1, S)) for _ in range(B)]
    mask = torch.tensor([[1] * n + [0] * (S - n) for n in lens])
    if draw(st.booleans()): mask = mask.flip(1)                       # left padding
    return logits, mask, E, k

def stats_of(logits, mask, E, k, softmaxed=False):
    s = RouterStats(len(logits), E, k)
    for i, l in enumerate(logits):
        p, idx, soft = router_probs(l.softmax(-1) if softmaxed else l, E)
        assert soft == softmaxed
        s.add(i, p, None, mask.reshape(-1).bool())
    return s

@SETTINGS
@given(routing())
def test_aux_loss_equals_transformers(r):
    logits, mask, E, k = r
    s = stats_of(logits, mask, E, k)
    ref = load_balancing_loss_func(logits, E, k, mask)
    assert s.aux_loss == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    n = int(mask.sum())
    assert (s.tokens == n).all()
    np.testing.assert_allclose(s.share.sum(1), k, rtol=1e-9)
    np.testing.assert_allclose(s.load.sum(1), 1, rtol=1e-9)
    assert ((s.entropy >= -1e-9) & (s.entropy <= np.log(E) + 1e-6)).all()

@SETTINGS
@given(routing())
def test_softmaxed_router_outputs_are_not_softmaxed_twice(r):
    logits, mask, E, k = r
    a, b = stats_of(logits, mask, E, k), stats_of(logits, mask, E, k, softmaxed=True)
    np.testing.assert_allclose(a.mean_prob, b.mean_prob, atol=1e-6)
    assert a.aux_loss == pytest.approx(b.aux_loss, rel=1e-5)

@SETTINGS
@given(routing())
def test_padding_rows_do_not_count(r):
    "Changing what sits in padded positions changes nothing."
    logits, mask, E, k = r
    flat = mask.reshape(-1).bool()
    noisy = tuple(torch.where(flat[:, None], l, 1e3 * torch.randn_like(l)) for l in logits)
    a, b = stats_of(logits, mask, E, k), stats_of(noisy, mask, E, k)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_allclose(a.prob_sum, b.prob_sum, rtol=1e-6)

@pytest.fixture(scope="module")
def moe():
    from alignkit.models import load_model
    return load_model("tiny-moe", seed=0, quant="fp32")

TEXTS = ["The capital of France is Paris.", "Write the word 'out' in uppercase letters.",
         "What is the smaller of 99 and 69? Respond with the number and nothing else, please, thank you."]

@pytest.mark.parametrize("side", ["right", "left"])
def test_inspect_is_padding_invariant(moe, side):
    "Texts inspected together (padded) route exactly as texts inspected one by one."
    model, tok = moe
    tok.padding_side, old = side, tok.padding_side
    try:
        together = inspect(model, TEXTS, batch_size=8)
        alone = [inspect(model, [t]) for t in TEXTS]
    finally: tok.padding_side = old
    np.testing.assert_array_equal(together.counts, sum(a.counts for a in alone))
    assert together.tokens == sum(a.tokens for a in alone)
    np.testing.assert_allclose(together.mean_prob * together.tokens, sum(a.mean_prob * a.tokens for a in alone), rtol=1e-4)
    assert drift(together, together).kl.max() == pytest.approx(0, abs=1e-9)

def test_dense_model_is_refused_before_any_work():
    from alignkit.models import load_model
    dense, tok = load_model("tiny-llama", seed=0, quant="fp32")
    with pytest.raises(NoRouterError, match="no router found"): inspect(dense, ["hello"])
    with pytest.raises(ValueError): freeze_experts(dense, keep=[0])

def test_callback_in_a_trainer(tmp_path):
    "Inside a real Trainer run (with gradient accumulation) the callback logs moe/... every 2 steps, then unhooks."
    from transformers import Trainer, TrainingArguments, default_data_collator
    from alignkit.tracking import RunLog
    model = tiny_moe("qwen3_moe")
    data = [{"input_ids": (torch.arange(12) + i) % 120 + 3, "labels": (torch.arange(12) + i) % 120 + 3,
             "attention_mask": torch.tensor([1] * (12 - i % 4) + [0] * (i % 4))} for i in range(64)]
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=5, per_device_train_batch_size=4, gradient_accumulation_steps=2,
                             learning_rate=1e-3, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, logging_steps=100)
    model(input_ids=data[0]["input_ids"][None])                                 # transformers installs its own capture hooks
    hooks = lambda: [len(b.router._forward_hooks) for b in moe_blocks(model)] + [len(model._forward_pre_hooks)]
    n_hooks = hooks()
    cb = RouterStatsCallback(tmp_path, every=2)
    Trainer(model=model, args=args, train_dataset=data, data_collator=default_data_collator, callbacks=[cb]).train()
    m = RunLog(tmp_path).metrics
    logged = m.dropna(subset=["moe/aux_loss"])
    assert logged.step.tolist() == [2, 4, 5]                                   # every 2 steps, and the rest at the end
    assert all(0 < v <= 1 for v in logged["moe/layer0/max_expert_share"])
    assert all(0 <= v <= np.log(4) + 1e-6 for v in logged["moe/entropy"])
    assert hooks() == n_hooks                                                   # ours are removed

def test_upcycle_keeps_function_and_trains():
    "An upcycled tiny Llama computes what the dense one did; after a few steps its experts differ."
    from alignkit.models import load_model
    dense, tok = load_model("tiny-llama", seed=0, quant="fp32")
    up = upcycle(dense, num_experts=4, top_k=2, expert_noise=0.0)
    b = tok(TEXTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        torch.testing.assert_close(up.eval()(**b).logits, dense.eval()(**b).logits, atol=1e-4, rtol=1e-4)
    assert not any(p.data_ptr() == q.data_ptr() for p in up.parameters() for q in dense.parameters())   # no shared storage
    up.train()
    opt = torch.optim.AdamW(up.parameters(), lr=1e-2)
    for _ in range(3):
        up(**b, labels=b["input_ids"]).loss.backward(); opt.step(); opt.zero_grad()
    w = up.model.layers[0].mlp.experts.gate_up_proj
    assert (w[0] - w[1]).abs().max() > 0
