"""Property-based tests for `alignkit.lora`: for any choice of target modules (names, presets, MoE expert
parameters) and any valid rank, `lora_budget` counts exactly what PEFT's `get_peft_model` trains on a real model, the
explorer's cached linear-in-r counts agree with it, the adapter file is the size predicted, and invalid ranks or
targets are refused with `ConfigError`s."""
import os, tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from alignkit.core import ConfigError
from alignkit.lora import RankError, lora_budget, lora_explorer, meta_model, resolve_targets

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = {"tiny-llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "self_attn.q_proj", "mlp.down_proj", "attention", "mlp"],
         "tiny-moe": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj", "attention", "experts", "experts.down_proj"]}
MODEL = st.sampled_from(sorted(NAMES))
CASE = MODEL.flatmap(lambda m: st.tuples(st.just(m), st.lists(st.sampled_from(NAMES[m]), min_size=1, max_size=4, unique=True),
                                          st.integers(1, 32)))

_real = {}
def real_model(name):
    "A real (weights in memory) tiny model, loaded once; LoRA is attached to a fresh copy in each example."
    if name not in _real:
        from alignkit.models import load_model
        _real[name] = load_model(name, quant="fp32")[0]
    return _real[name]

@SETTINGS
@given(CASE)
def test_trainable_params_equal_peft_on_real_model(case):
    import copy
    from peft import LoraConfig, get_peft_model
    name, targets, r = case
    b = lora_budget(name, r=r, targets=targets)
    kw = resolve_targets(meta_model(name), targets)
    pm = get_peft_model(copy.deepcopy(real_model(name)), LoraConfig(r=r, lora_alpha=2*r, target_modules=kw["target_modules"] or [],
                                                                      target_parameters=kw["target_parameters"]))
    assert b.trainable_params == pm.get_nb_trainable_parameters()[0]
    with tempfile.TemporaryDirectory() as d:
        pm.save_pretrained(d)
        assert b.adapter_bytes == (Path(d)/"adapter_model.safetensors").stat().st_size

_ex = {}
@SETTINGS
@given(MODEL, st.sets(st.sampled_from(["attention", "mlp", "experts", "all-linear"]), min_size=1), st.integers(1, 4))
def test_explorer_counts_match_budget(name, groups, r):
    ex = _ex.setdefault(name, lora_explorer(name, r=1))
    groups = [g for g in groups if not ex.checks[g].disabled]
    if not groups: return
    for g, box in ex.checks.items(): box.value = g in groups
    ex.rank.value = r
    assert ex.state["r"] == r
    assert ex.state["trainable_params"] == lora_budget(name, r, groups if "all-linear" not in groups else "all-linear").trainable_params

@pytest.mark.parametrize("r", [0, -3, 1.5, True, "8"])
def test_bad_rank(r):
    with pytest.raises(RankError, match="positive integer"): lora_budget("tiny-llama", r=r)

def test_rank_above_dimensions_and_unknown_targets():
    with pytest.raises(RankError, match="r ≤ 32"): lora_budget("tiny-llama", r=33, targets=["k_proj"])
    assert lora_budget("tiny-llama", r=32, targets=["k_proj"]).trainable_params == 2 * 32 * (64 + 32)
    with pytest.raises(ConfigError, match="q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"):
        lora_budget("tiny-llama", r=4, targets=["query"])
    with pytest.raises(ConfigError, match="all-linear"): lora_budget("tiny-llama", r=4, targets=["all-linear", "q_proj"])
    with pytest.raises(ConfigError, match="match no module"): lora_budget("tiny-llama", r=4, targets=["experts"])
