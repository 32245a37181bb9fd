"""The shape of the package: the module import graph (lazy imports included) has no cycle and no edge from the base
layer up to a runner or an analysis module; every public name resolves from `alignkit`; internals are private; and a
private TRL name that alignkit patches is checked, so a TRL release that renames it fails loudly, not silently."""
import ast, importlib, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT/"alignkit"
# the runs core and what it stands on; nothing here may import a runner, a view or an analysis module
BASE = {"core", "models", "data", "data_lab", "tracking", "_compat", "runners"}

def module_name(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) or "__init__"

def imports_of(path: Path) -> set[str]:
    "Every alignkit module `path` imports, at the top or inside a function (relative and absolute forms)."
    me = module_name(path).split(".")
    pkg = me if path.name == "__init__.py" else me[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name[len("alignkit."):] for a in node.names if a.name.startswith("alignkit.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("alignkit"): mod = node.module[len("alignkit."):] if node.module != "alignkit" else ""
            else: continue
            names = [a.name for a in node.names]
            subs = [f"{mod}.{n}" if mod else n for n in names]
            found = [s for s in subs if (PKG/(s.replace(".", "/") + ".py")).exists() or (PKG/s.replace(".", "/")/"__init__.py").exists()]
            out |= set(found) if found else ({mod} if mod else set())
    return {m for m in out if m and m != module_name(path) and m != "_modidx"}

def graph() -> dict[str, set[str]]:
    files = [p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts and p.name != "_modidx.py"]
    return {module_name(p): imports_of(p) for p in files}

def top(m): return m.split(".")[0]

def test_no_import_cycle():
    g = graph()
    # cycles between top-level modules (a subpackage counts as one module; its __init__ re-exporting its parts is fine)
    tg = {}
    for m, deps in g.items(): tg.setdefault(top(m), set()).update(top(d) for d in deps if top(d) != top(m))
    tg.pop("__init__", None)
    seen, stack, cycles = set(), [], []
    def visit(n):
        if n in stack: cycles.append(stack[stack.index(n):] + [n]); return
        if n in seen: return
        seen.add(n); stack.append(n)
        for d in sorted(tg.get(n, ())): visit(d)
        stack.pop()
    for n in sorted(tg): visit(n)
    assert not cycles, cycles

def test_base_layer_imports_only_the_base_layer():
    bad = {m: sorted(d for d in deps if top(d) not in BASE) for m, deps in graph().items() if top(m) in BASE}
    assert not any(bad.values()), {m: d for m, d in bad.items() if d}

def test_the_graph_walker_sees_lazy_imports(tmp_path):
    p = PKG/"_probe_for_test.py"
    p.write_text("def f():\n    from alignkit.online import grpo\n    import alignkit.dashboard\n    from .rewards import exact_match\n")
    try: assert imports_of(p) == {"online", "dashboard", "rewards"}
    finally: p.unlink()

def test_every_public_name_resolves_and_internals_are_private():
    code = """
import alignkit as ak, importlib
from alignkit.core import public_api, module_exports, NAMESPACES, FLAT
api = public_api()
missing = [n for n in api if not hasattr(ak, n)]
ns = {m: module_exports(m) for m in NAMESPACES}
ns_missing = [f"{m}.{n}" for m, names in ns.items() for n in names if not hasattr(getattr(ak, m), n)]
# once every module is imported (a runner lookup imports them all), a submodule must not shadow a public name
from alignkit.runners import all_runners, load_extensions
all_runners(); load_extensions()
for m in (*FLAT, *NAMESPACES): importlib.import_module(f"alignkit.{m}")
shadowed = [n for n in api if type(getattr(ak, n)).__name__ == "module"]
print(len(api), sum(map(len, ns.values())), missing, ns_missing + shadowed)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={"HF_HUB_OFFLINE": "1", "PATH": ""}).stdout
    assert out.strip().endswith("[] []"), out
    from alignkit.core import public_api, module_exports
    api = public_api()
    assert len(api) > 150 and {"load_model", "sft", "dpo", "grpo", "ppo", "rlhf", "Run", "RewardScorer", "scorer", "before_after"} <= set(api)
    assert {"train", "Agent", "reinforce"} <= set(module_exports("rl"))          # ak.rl.*, not flattened
    internals = {"RUNNER_MODULES", "LOGITS_AT_ONCE", "TrainerHooks", "SB3Hooks", "CHROMIUM_FLAGS", "TRAINER_BUILDERS",
                 "LAZY_API", "trainer_classes", "LEARNING_RATES", "build_trainer"}
    assert not internals & set(api), internals & set(api)

def test_a_private_trl_name_that_disappears_fails_the_run(monkeypatch, tmp_path):
    import trl.trainer.utils as U
    from alignkit import _compat
    from alignkit.core import ConfigError
    monkeypatch.delattr(U, "_ChunkedLogProbFunction")
    with pytest.raises(_compat.CompatError, match="trl.trainer.utils._ChunkedLogProbFunction"):
        with _compat.compact_lm_head(): pass
    import alignkit as ak
    model, tok = ak.load_model("tiny-llama", quant="fp32", lora=0, seed=0)
    with pytest.raises(_compat.CompatError, match="_ChunkedLogProbFunction"):
        ak.sft(model, [{"prompt": "2+2?", "completion": "4"}] * 4, output_dir=tmp_path/"r", background=False, max_steps=1)

def test_the_lm_head_patch_takes_effect_in_a_real_run(tmp_path):
    "An alignkit SFT run on the CPU reaches `cpu_logprobs` through TRL's own code; if TRL stopped calling through the patched names, this fails."
    import alignkit as ak
    from alignkit import _compat
    n = _compat._LogProbSwitch.calls
    model, tok = ak.load_model("tiny-llama", quant="fp32", lora=0, seed=0)
    run = ak.sft(model, [{"prompt": "2+2?", "completion": "4"}] * 8, output_dir=tmp_path/"r", background=False, max_steps=2)
    assert run.status == "finished" and _compat._LogProbSwitch.calls >= n + 2
