"""Both kinds of CPU on one machine: with native bf16 (where this CPU has it) and without it (simulated with
ALIGNKIT_NO_NATIVE_BF16=1). Under the simulation every default must pick fp32 and nothing may ask for bf16 compute:
a `PrecisionWarning` is an error here, so a bf16 assumption reintroduced into the loader, a runner's defaults or the
notebooks fails on this machine, not on the next one. A static check finds hard-coded bf16 in the sources."""
import ast, json, re, warnings
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SFT, PAIRS, PROMPTS = (str(ROOT/p) for p in ("datasets/sft/train.jsonl", "datasets/preference/train.jsonl", "datasets/prompts/train.jsonl"))


def _cpu_has_bf16() -> bool:
    import torch
    return any(getattr(torch.cpu, f, lambda: False)() for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


@pytest.fixture
def no_bf16(monkeypatch):
    "A CPU without native bf16, simulated; alignkit's precision warnings become errors."
    monkeypatch.setenv("ALIGNKIT_NO_NATIVE_BF16", "1")
    monkeypatch.setenv("ALIGNKIT_QUIET", "1")
    from alignkit.core import PrecisionWarning
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        yield


def test_loader_follows_the_machine(no_bf16):
    import torch
    from alignkit.models import best_precision, bf16_native, load_model, footprint
    assert (best_precision("cpu"), bf16_native("cpu")) == ("fp32", False)
    m, _ = load_model("tiny-llama", seed=0)
    assert (m.alignkit.quant, m.alignkit.dtype, next(m.parameters()).dtype) == ("fp32", "float32", torch.float32)
    q, _ = load_model("tiny-llama", quant="nf4", lora=4, seed=0)
    emb = q.get_input_embeddings()
    assert emb.weight.dtype == torch.bfloat16 and emb.weight is q.get_output_embeddings().weight
    assert q.alignkit.dtype == "float32"
    assert footprint(q).bytes["full-precision weights"] < footprint(m).bytes["full-precision weights"] * 0.6


def test_explicit_bf16_warns_before_loading(no_bf16):
    from alignkit.core import PrecisionWarning
    from alignkit.models import load_model
    from alignkit.preference import sft
    with pytest.raises(PrecisionWarning, match="without native bf16"): load_model("tiny-llama", quant="bf16")
    with pytest.raises(PrecisionWarning, match="bf16=True"): sft("tiny-llama", SFT, bf16=True, max_steps=1, background=False)


@pytest.mark.parametrize("runner", ["sft", "dpo", "grpo", "ppo"])
def test_runner_defaults_follow_the_machine(runner, no_bf16, tmp_path):
    "One real step of each runner family on a tiny model: its TRL config has bf16 off and the step ran in fp32."
    run = _one_step(runner, tmp_path)
    assert run.status == "finished", run.error
    assert run.trainer.args.bf16 is False
    assert len(run.metrics) >= 1


@pytest.mark.skipif(not _cpu_has_bf16(), reason="this CPU has no native bf16")
def test_native_bf16_is_used_where_the_cpu_has_it(tmp_path, monkeypatch):
    monkeypatch.delenv("ALIGNKIT_NO_NATIVE_BF16", raising=False)
    monkeypatch.setenv("ALIGNKIT_QUIET", "1")
    from alignkit.models import best_precision, load_model
    assert best_precision("cpu") == "bf16"
    m, _ = load_model("tiny-llama", seed=0)
    assert m.alignkit.dtype == "bfloat16"
    run = _one_step("sft", tmp_path)
    assert run.trainer.args.bf16 is True


def _one_step(runner, tmp_path):
    import alignkit as ak
    common = dict(output_dir=tmp_path/runner, background=False, max_steps=1, lora=4)
    if runner == "sft": return ak.sft("tiny-llama", SFT, per_device_train_batch_size=2, **common)
    if runner == "dpo": return ak.dpo("tiny-llama", PAIRS, per_device_train_batch_size=2, **common)
    if runner == "grpo":
        return ak.grpo("tiny-llama", PROMPTS, rewards=[ak.length_penalty(8)], per_device_train_batch_size=4, num_generations=4,
                       max_completion_length=8, **common)
    return ak.ppo("tiny-llama", PROMPTS, rewards=ak.length_penalty(8), per_device_train_batch_size=4, num_mini_batches=1,
                  max_completion_length=8, **common)


# -- static: no hard-coded bf16 ----------------------------------------------------------------------------
MARK = "# bf16 on purpose"

def _is_bf16_choice(kw: ast.keyword) -> bool:
    v = kw.value
    if kw.arg == "quant": return isinstance(v, ast.Constant) and v.value == "bf16"
    if kw.arg == "bf16": return isinstance(v, ast.Constant) and v.value is True
    if kw.arg == "dtype": return isinstance(v, ast.Attribute) and v.attr == "bfloat16"
    return False

def hard_coded_bf16(source: str) -> list[int]:
    "Lines of `source` (Python, or a notebook cell) that pass quant='bf16', bf16=True or dtype=torch.bfloat16 without the marker."
    lines = source.splitlines()
    code = "\n".join("" if l.lstrip().startswith(("%", "!")) else l for l in lines)
    try: tree = ast.parse(code)
    except SyntaxError: return []
    hits = {kw.value.lineno for node in ast.walk(tree) if isinstance(node, ast.Call) for kw in node.keywords if _is_bf16_choice(kw)}
    return sorted(n for n in hits if MARK not in lines[n - 1])

def _sources():
    for nb in sorted((ROOT/"nbs").glob("*.ipynb")):
        for i, c in enumerate(json.loads(nb.read_text())["cells"]):
            if c["cell_type"] == "code": yield f"{nb.name} cell {i}", "".join(c["source"])
    for py in sorted([*(ROOT/"tools").rglob("*.py"), *(ROOT/"tests").glob("*.py")]):
        if py.name != Path(__file__).name: yield str(py.relative_to(ROOT)), py.read_text()

def test_the_static_check_finds_a_hard_coded_bf16():
    assert hard_coded_bf16('m, t = load_model("smollm2", quant="bf16", lora=16)') == [1]
    assert hard_coded_bf16('sft(m, d,\n    bf16=True)') == [2]
    assert hard_coded_bf16('x = torch.zeros(2, dtype=torch.bfloat16)') == [1]
    assert hard_coded_bf16(f'm = load_model("smollm2", quant="bf16")  {MARK}: measured, not trained') == []
    assert hard_coded_bf16('m = load_model("smollm2")\nwarn("use quant=\'bf16\'")') == []

def test_no_hard_coded_bf16_in_notebooks_tools_or_tests():
    found = [f"{where}, line {n}" for where, src in _sources() for n in hard_coded_bf16(src)]
    assert not found, ("bf16 hard-coded (use quant='auto' / best_precision(), or mark the line "
                       f"'{MARK}' when it is deliberate): " + "; ".join(found))


BENCH_PEAK = """
import json, sys
sys.path.insert(0, sys.argv[1])
import bench_runners as b, machine
b.matmul_gflops(n=256, reps=1)
print(json.dumps(dict(counts={k: len(v) for k, v in b.PEAKS.items()}, precision=machine.precision()[0])))
"""

@pytest.mark.parametrize("simulate", [True, False])
def test_bench_measures_the_peak_of_the_machine(simulate, tmp_path):
    "The runners bench measures both peaks (bf16 in bounded time even where emulated) and divides by the one alignkit trains in: fp32 without native bf16."
    import os, subprocess, sys
    if not simulate and not _cpu_has_bf16(): pytest.skip("this CPU has no native bf16")
    env = {k: v for k, v in os.environ.items() if k != "ALIGNKIT_NO_NATIVE_BF16"}
    if simulate: env["ALIGNKIT_NO_NATIVE_BF16"] = "1"
    out = subprocess.run([sys.executable, "-c", BENCH_PEAK, str(ROOT/"tools/bench")], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    got = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else out.stderr
    assert got == dict(counts={"bf16": 1, "fp32": 1}, precision="fp32" if simulate else "bf16"), got

def test_bench_bounds_an_emulated_matmul():
    "A matmul that would take long (emulated bf16) is measured at a smaller size, so the peak takes bounded time."
    import sys, torch
    sys.path.insert(0, str(ROOT/"tools/bench"))
    import machine
    g, n = machine.matmul_gflops(torch.float32, n=8192, reps=1, max_s=0.01)
    assert 256 <= n < 8192 and g > 0
    c = machine.cpu_info()
    assert set(c["features"]) == {"AVX2", "AVX-512", "AVX-512 BF16", "AMX"} and c["cores"] >= 1
    assert c["features"]["AVX-512 BF16"] or c["features"]["AMX"] or not _cpu_has_bf16()
