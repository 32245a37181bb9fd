"""Loader benchmarks: NF4+double-quant ÷ bf16 footprint of SmolLM2, cold (first conversion) vs warm load,
and `import alignkit` ÷ `import torch` time. Each figure is measured side by side in this one run."""
import os, statistics, subprocess, sys, tempfile, time
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ALIGNKIT_QUIET", "1")

def import_time(module, n=5):
    "Median seconds that `import module` takes inside a fresh interpreter."
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout) for _ in range(n)]
    return statistics.median(runs)

def timed_load(**kw):
    from alignkit.models import load_model
    t = time.perf_counter(); m, _ = load_model("smollm2", **kw); dt = time.perf_counter() - t
    del m
    return dt

def main():
    ak, torch_t = import_time("alignkit"), import_time("torch")
    print(f"import/alignkit_vs_torch: {ak/torch_t:.4f} (goal < 0.05; import alignkit {ak*1000:.1f} ms, import torch {torch_t*1000:.0f} ms)", flush=True)

    from alignkit.models import quant_compare
    cmp = quant_compare("smollm2")
    print(f"footprint/nf4dq_vs_bf16: {cmp.ratio('nf4+dq', 'bf16'):.3f} (goal <= 0.45)", flush=True)
    print(f"footprint/nf4_vs_bf16: {cmp.ratio('nf4', 'bf16'):.3f} (goal: context, no goal)", flush=True)
    print(f"footprint/int8_vs_bf16: {cmp.ratio('int8', 'bf16'):.3f} (goal: context, no goal)", flush=True)

    with tempfile.TemporaryDirectory() as d:       # a cache of our own: the first load converts the GGUF
        old = os.environ.get("ALIGNKIT_CACHE"); os.environ["ALIGNKIT_CACHE"] = d
        try:
            cold = timed_load(quant="bf16")   # bf16 on purpose: load time, nothing computed
            warm = statistics.median(timed_load(quant="bf16") for _ in range(3))   # bf16 on purpose
        finally:
            if old is None: os.environ.pop("ALIGNKIT_CACHE")
            else: os.environ["ALIGNKIT_CACHE"] = old
    print(f"load/warm_vs_cold: {warm/cold:.3f} (goal < 0.25; cold {cold:.1f} s with GGUF conversion, warm {warm:.1f} s)", flush=True)

if __name__ == "__main__": main()
