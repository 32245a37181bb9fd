"""Every PEFT method through PEFT: load_model(peft=…) trains what PEFT itself would train; a short SFT run moves each
method's adapter; a run of prefix tuning and of IA³ killed with SIGKILL resumes in a fresh process with the same step
numbering and trajectory; a run directory naming a PEFT config class outside the whitelist is refused; a bad peft_args
field fails before any weights load."""
import json, signal, subprocess, sys, textwrap
from pathlib import Path
import pytest
from sigkill import env as _sigkill_env, records, kill_after_checkpoints

ROOT = Path(__file__).resolve().parents[1]
SFT = str(ROOT/"datasets/sft/train.jsonl")
METHODS = ("lora", "dora", "rslora", "pissa", "loraplus", "ia3", "prefix", "prompt", "ptuning")   # loftq: CUDA only, refused below

def _tiny(**kw):
    import alignkit as ak
    return ak.load_model("tiny-llama", seed=0, quant="fp32", **kw)

@pytest.mark.parametrize("method", METHODS)
def test_trainable_count_is_pefts_own(method):
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM
    from alignkit.models import peft_choice, resolve
    model, _ = _tiny(peft=method)
    cfg = peft_choice(method).config                       # the same config, applied by PEFT directly to the same weights
    with torch.random.fork_rng():
        ref = get_peft_model(AutoModelForCausalLM.from_pretrained(resolve("tiny-llama", 0), dtype=torch.float32), cfg)
    assert model.alignkit.peft == method
    assert type(model.peft_config["default"]) is type(cfg)
    assert model.get_nb_trainable_parameters() == ref.get_nb_trainable_parameters()
    assert model.get_nb_trainable_parameters()[0] > 0

def _sft(model, tok, out, **kw):
    import alignkit as ak
    return ak.sft(model, SFT, tokenizer=tok, output_dir=out, background=False, preflight=False,
                  **{"max_steps": 4, "learning_rate": 1e-2, "per_device_train_batch_size": 4, "save_strategy": "no", **kw})

@pytest.mark.parametrize("method", METHODS)
def test_short_sft_run_trains_each_method(method, tmp_path):
    import torch
    model, tok = _tiny(peft=method)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    run = _sft(model, tok, tmp_path/"run")
    assert str(run.status) == "finished", run.status
    losses = run.metrics["loss"].dropna().tolist()
    assert len(losses) == 4 and all(l == l for l in losses)
    changed = [n for n, p in model.named_parameters() if n in before and not torch.equal(before[n], p.detach())]
    assert changed, f"{method}: no adapter weight changed"
    spec = json.loads((tmp_path/"run"/"run.json").read_text())["model"]["peft"]
    assert spec["method"] == method
    groups = run.trainer.optimizer.param_groups
    lrs = sorted({g["initial_lr"] for g in groups if g["params"]})   # the schedule has decayed "lr" to 0 by the end
    if method == "loraplus": assert len(lrs) == 2 and lrs[1] == pytest.approx(16 * lrs[0])   # B at 16× A's rate
    else: assert len(lrs) == 1

def test_unknown_config_class_in_a_run_dir_is_refused(tmp_path):
    import alignkit as ak
    from alignkit.core import ConfigError
    model, tok = _tiny(peft="ia3")
    _sft(model, tok, tmp_path/"run", max_steps=1)
    p = tmp_path/"run"/"run.json"
    d = json.loads(p.read_text())
    ak.Run.open(tmp_path/"run")                               # as written: it opens (and rebuilds IA³)
    for name in ("os.system", "VeraConfig", ["LoraConfig"]):
        d["model"]["peft"]["config_class"] = name
        p.write_text(json.dumps(d))
        with pytest.raises(ConfigError, match="does not rebuild"): ak.Run.open(tmp_path/"run")
    d["model"]["peft"].update(config_class="PromptTuningConfig", config=dict(task_type="CAUSAL_LM", num_virtual_tokens=4,
                              prompt_tuning_init="TEXT", prompt_tuning_init_text="hi", tokenizer_name_or_path="org/elsewhere"))
    p.write_text(json.dumps(d))
    with pytest.raises(ConfigError, match="loads a tokenizer"): ak.Run.open(tmp_path/"run")

def test_bad_peft_args_fail_before_any_weights_load(monkeypatch):
    import alignkit.models as M
    from alignkit.core import ConfigError, UnknownNameError
    def no_weights(*a, **k): raise AssertionError("resolve() ran: the check came after loading began")
    monkeypatch.setattr(M, "resolve", no_weights)
    with pytest.raises(ConfigError, match="'target_modulez'"): M.load_model("tiny-llama", peft="ia3", peft_args={"target_modulez": ["k_proj"]})
    with pytest.raises(ConfigError, match="'alpha'"): M.load_model("tiny-llama", peft="dora", peft_args={"alpha": 8})
    with pytest.raises(ConfigError, match="give one"): M.load_model("tiny-llama", lora=8, peft="ia3")
    with pytest.raises(ConfigError, match="CUDA"): M.load_model("tiny-llama", peft="loftq", device="cpu")
    with pytest.raises(ConfigError, match="checkpointing"): M.load_model("tiny-llama", peft="prefix", gradient_checkpointing=True)
    with pytest.raises(UnknownNameError, match="unknown PEFT method 'houlsby'"): M.load_model("tiny-llama", peft="houlsby")

def test_lora_keeps_working_as_before():
    model, _ = _tiny(lora=4)
    cfg = model.peft_config["default"]
    short = {t.rpartition(".")[2] for t in cfg.target_modules}          # "all-linear", as PEFT expands it
    assert (cfg.r, cfg.lora_alpha, short, cfg.lora_dropout, cfg.use_dora) == (4, 8, {"o_proj", "up_proj", "down_proj", "q_proj", "k_proj", "v_proj", "gate_proj"}, 0.0, False)
    assert (model.alignkit.lora_r, model.alignkit.peft) == (4, "lora")

TRAIN = textwrap.dedent("""
    import sys, alignkit as ak
    model, tok = ak.load_model("tiny-llama", seed=0, quant="fp32", peft=sys.argv[2])
    ak.sft(model, {sft!r}, output_dir=sys.argv[1], background=False, max_steps=40, save_steps=10, learning_rate=1e-2,
           per_device_train_batch_size=4, preflight=False)
""").format(sft=SFT)
RESUME = textwrap.dedent("""
    import sys, alignkit as ak
    run = ak.Run.open(sys.argv[1])                  # the model rebuilt from run.json's PEFT config
    print(run.model.alignkit.peft)
    run.resume(background=False)
    print(run.status)
""")

@pytest.mark.slow
@pytest.mark.parametrize("method", ["prefix", "ia3"])
def test_sigkill_then_resume(method, tmp_path):
    run_dir, env = tmp_path/"run", _sigkill_env(tmp_path, TQDM_DISABLE="1")
    proc = subprocess.Popen([sys.executable, "-c", TRAIN, str(run_dir), method], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_at = kill_after_checkpoints(proc, run_dir, 2, past=3)
    out = proc.communicate()[0].decode()
    assert killed_at is not None, f"training ended before it could be killed:\n{out[-3000:]}"
    assert proc.returncode == -signal.SIGKILL
    before = records(run_dir)
    last_ckpt = max(r["step"] for r in before if r["type"] == "event" and r["event"] == "checkpoint")
    assert last_ckpt < killed_at < 40
    res = subprocess.run([sys.executable, "-c", RESUME, str(run_dir)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    assert res.stdout.strip().splitlines()[-2:] == [method, "finished"]
    from alignkit.tracking import RunLog
    m = RunLog(run_dir).metrics
    assert m.dropna(subset=["loss"])["step"].tolist() == list(range(1, 41))          # every step once
    first = {r["step"]: r["values"]["loss"] for r in before if r["type"] == "metric" and "loss" in r["values"]}
    again = m.set_index("step")
    replayed = [s for s in first if last_ckpt < s <= killed_at]
    assert replayed
    for s in replayed: assert again.loc[s, "loss"] == pytest.approx(first[s], rel=1e-3, abs=1e-4), s   # the adapter was restored

@pytest.mark.parametrize("method", ["prefix", "ia3", "prompt"])
def test_dpo_trains_with_prefix_ia3_and_prompt(method, tmp_path):
    "TRL's DPOTrainer keeps a frozen copy of the adapter as its reference ('ref'); the policy's adapter moves away from it."
    import torch, alignkit as ak
    model, tok = _tiny(peft=method)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad and ".default" in n}
    run = ak.dpo(model, str(ROOT/"datasets/preference/train.jsonl"), tokenizer=tok, output_dir=tmp_path/"run", background=False,
                 preflight=False, max_steps=6, learning_rate=5e-2, per_device_train_batch_size=4, save_strategy="no")
    assert str(run.status) == "finished"
    assert "ref" in model.peft_config
    margins = run.metrics["rewards/margins"].dropna().tolist()
    assert margins[0] == pytest.approx(0, abs=1e-5) and margins[-1] > 1e-3                      # policy == reference at step 1, then preferred answers gain
    assert any(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters() if n in before)

def test_prefix_with_gradient_checkpointing_in_trl_args_is_refused(tmp_path):
    "Prefix tuning's past key/values are dropped under checkpointing (attention masks no longer fit): refused with the reason."
    from alignkit.core import ConfigError
    model, tok = _tiny(peft="prefix")
    with pytest.raises(ConfigError, match="prefix tuning with gradient checkpointing"):
        _sft(model, tok, tmp_path/"run", gradient_checkpointing=True)
