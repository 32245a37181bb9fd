"GRPO/RLOO generate with the LoRA adapters merged (alignkit.online.merged_lora): active, same greedy completions, still trains."
import os, warnings
from pathlib import Path
import pytest
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
PROMPTS = Path(__file__).resolve().parents[1]/"datasets/prompts/train.jsonl"

def _tiny():
    from alignkit.models import load_model
    return load_model("tiny-llama", lora=16, seed=0, quant="fp32")

def _lora(model): return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}

@pytest.mark.parametrize("kind", ["grpo", "rloo"])
def test_merged_generation_active_and_training_learns(tmp_path, kind):
    import alignkit.online as O
    from alignkit.rewards import char_fraction
    model, tok = _tiny()
    before = _lora(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = getattr(O, kind)(model, str(PROMPTS), rewards=[char_fraction("aeiou")], output_dir=tmp_path, background=False,
                               max_steps=2, max_completion_length=8, learning_rate=1e-2, save_steps=1000, disable_tqdm=True)
    assert isinstance(run.trainer, O.MergedGeneration)
    assert run.trainer.merged_generations >= 1
    after = _lora(model)
    assert any(not torch.equal(before[n], after[n]) for n in before), "no adapter weight changed in 2 steps"
    assert all(torch.isfinite(p).all() for p in after.values())
    assert run.log.last_step == 2

def test_greedy_same_with_and_without_merge_and_weights_restored():
    from alignkit.online import merged_lora
    model, tok = _tiny()
    torch.manual_seed(0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n: p.normal_(0, 0.02)
    base = {n: p for n, p in model.named_parameters() if "base_layer" in n}
    ptrs = {n: p.data_ptr() for n, p in base.items()}
    copies = {n: p.detach().clone() for n, p in base.items()}
    tok.padding_side = "left"
    b = tok(["The cat", "A dog ran far", "One"], return_tensors="pt", padding=True)
    torch.manual_seed(0)
    greedy = lambda: model.generate(**b, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id)
    ref = greedy()
    with merged_lora(model) as merged:
        assert merged
        assert all(not torch.equal(p, copies[n]) for n, p in base.items())       # the merged weights are in use
        assert torch.equal(greedy(), ref)
    assert all(p.data_ptr() == ptrs[n] and torch.equal(p, copies[n]) for n, p in base.items())  # the same tensors, bit for bit
    assert torch.equal(greedy(), ref)

def test_not_plain_lora_changes_nothing():
    from alignkit.online import merged_lora
    model, _ = _tiny()
    with merged_lora(model.get_base_model()) as merged: assert merged is False
    model.merge_adapter()
    with merged_lora(model) as merged: assert merged is False                   # already merged by PEFT: left alone

def test_bf16_weights_left_alone():
    "bf16 would round W + ΔW to 8 mantissa bits and drop a young adapter's update: no merge there."
    from alignkit.online import merged_lora
    model, _ = _tiny()
    model.to(torch.bfloat16)
    with merged_lora(model) as merged: assert merged is False
