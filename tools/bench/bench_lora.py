"""LoRA explorer benchmarks (one torch thread; BENCH_TORCH_THREADS to change), measured in this one run:

- lora/spectrum_linear_s: `delta_spectrum` over all 210 linear layers of SmolLM2-135M (fp32 `torch.linalg.svdvals`,
  one batched call per shape); ΔW is the embedded model against a perturbed copy (SVD time does not depend on the
  values). Median of 3. lora/spectrum_all2d_s adds the 49,152×576 embedding (every 2-D weight).
- lora/adapter_qr_speedup: the spectrum of a rank-16 all-linear adapter on SmolLM2 through the QR trick (r×r SVDs) ÷
  the same spectrum from its merged ΔW (full SVDs), alternating A/B, ratio of medians.
- lora/explorer_update_ms: one slider change of `lora_explorer` (table + two charts) on the SmolLM2 and Mixtral-8x7B
  configs, median of 20 changes each; opening the explorer is printed for context.
- lora/budget_70b_s: `lora_budget("llama-3-70b", r=16, targets="all-linear")` — meta model + PEFT + memory; median of 3."""
import copy, os, statistics, time
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ALIGNKIT_QUIET", "1")
THREADS = int(os.environ.get("BENCH_TORCH_THREADS", "1"))

def timed(f, n=3):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)

def spectra():
    import torch
    from alignkit.models import load_model
    from alignkit.lora import delta_spectrum
    base, _ = load_model("smollm2", quant="fp32")
    tuned = copy.deepcopy(base)
    with torch.no_grad():
        for p in tuned.parameters(): p.add_(1e-3 * torch.randn_like(p))
    t = timed(lambda: delta_spectrum(base, tuned))
    print(f"lora/spectrum_linear_s: {t:.2f} (goal < 10 s at one thread; 210 matrices, fp32 svdvals)")
    t = timed(lambda: delta_spectrum(base, tuned, weights="all-2d"), 1)
    print(f"lora/spectrum_all2d_s: {t:.2f} (goal < 15 s at one thread; 211 matrices incl. the 49152×576 embedding)")
    del tuned
    pm, _ = load_model("smollm2", quant="fp32", lora=16)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n: p.normal_(std=1e-3)
    merged = copy.deepcopy(pm).merge_and_unload()
    qr, full = [], []
    for i in range(3):
        for mode in ((0, 1) if i % 2 == 0 else (1, 0)):
            if mode == 0: qr.append(timed(lambda: delta_spectrum(None, pm), 1))
            else: full.append(timed(lambda: delta_spectrum(base, merged), 1))
    print(f"lora/adapter_qr_speedup: {statistics.median(full)/statistics.median(qr):.0f}x (goal >= 10x; QR {statistics.median(qr):.3f} s "
          f"vs full SVD of the merged ΔW {statistics.median(full):.2f} s, 210 matrices, r=16)")

def explorer():
    from alignkit.lora import lora_explorer, lora_budget
    for name in ("smollm2-135m", "mixtral-8x7b"):
        t0 = time.perf_counter(); ex = lora_explorer(name, r=8, targets=("attention",)); t_open = time.perf_counter() - t0
        ex.per_unit("experts" if name.startswith("mixtral") else "mlp")       # first use of a group asks PEFT once
        ts = []
        for i in range(20):
            t0 = time.perf_counter(); ex.rank.value = 1 + (i % 8); ts.append(time.perf_counter() - t0)
        print(f"lora/explorer_update_ms[{name}]: {1000*statistics.median(ts):.1f} (goal < 100 ms; open {t_open:.2f} s)")
    t = timed(lambda: lora_budget("llama-3-70b", r=16, targets="all-linear"))
    print(f"lora/budget_70b_s: {t:.2f} (goal < 10 s; 70.6 B parameters on the meta device, no memory)")

def main():
    import torch
    torch.set_num_threads(THREADS)
    import warnings; warnings.simplefilter("ignore")
    explorer()
    spectra()

if __name__ == "__main__": main()
