"""Runner benchmarks: alignkit's `sft` and `dpo` vs the same TRL trainer called directly, in tokens per second.

All runs: the embedded SmolLM2-135M with LoRA r=16 on all linear layers (`load_model("smollm2", lora=16)`), the bundled
data (datasets/sft/train.jsonl; for DPO the first (WARMUP+STEPS)·8 pairs of datasets/preference/train.jsonl, so
that a DPO run is one epoch and precomputing reference log-probs covers exactly the rows trained on), WARMUP + STEPS
optimizer steps, seed 0 (alignkit's seed, so every configuration sees the same batches; the seed changes nothing else).

What is compared (three configurations per trainer, interleaved A B C, A B C, … so drift on the shared machine hits
all of them; each figure is the median over repetitions, the spread is the range of the per-repetition ratios):

- alignkit: `alignkit.sft(model, data, max_steps=…)` / `alignkit.dpo(model, pairs, max_steps=…)` with the model from
  `load_model("smollm2", quant="auto", lora=16)` (bf16 weights where the CPU has native bf16) and every other setting
  alignkit's default (see `alignkit.preference._common`: no gradient checkpointing, bf16 where native, batch 8,
  max_length 512, logging every step, precompute_ref_log_probs=True for DPO) — alignkit's RunLog callback included.
- TRL defaults: `SFTTrainer(model, args=SFTConfig(output_dir=…, max_steps=…, report_to="none", use_cpu=True, seed=0),
  train_dataset=…, processing_class=tok)` (DPO likewise with `DPOConfig`/`DPOTrainer`) — TRL's own defaults for
  everything else: gradient_checkpointing=True, bf16=True (autocast; this CPU has bf16), batch 8, max_length 1024,
  logging_steps=10, no precomputed reference (DPO: a reference forward per step, through TRL's "ref" adapter copy),
  with the model from `load_model("smollm2", quant="fp32", lora=16)` (fp32 weights: what a `from_pretrained` without
  `dtype` gives). use_cpu=True and report_to="none" are what it takes to run here at all; max_steps and seed fix the
  length and batches of the measurement.
- TRL at equal settings: the same TRL trainer built directly from exactly the arguments alignkit's runner built
  (`run.config.args`; the resulting config is checked equal to `run.trainer.args` field by field, output_dir aside)
  and the same model precision, without alignkit's wrapper (run directory, RunLog callback). Its ratio shows what the
  wrapper costs.

Measurement: a TrainerCallback records the time at every `on_step_end`; tokens are the non-padding tokens of the
batches actually fed (the sum of `attention_mask` of each batch handed to `training_step`; for DPO that is chosen +
rejected sequences, the prompt counted in both, since both go through the model). tokens/s = tokens of steps
WARMUP+1 … WARMUP+STEPS ÷ the time from the end of step WARMUP to the end of the last step. For DPO with precomputed
reference log-probs, the precompute (done once, inside the trainer's constructor) is charged pro rata: its time per
row × the rows trained in the window is added to the window's time — otherwise moving the reference forward out of
the step would look like a speedup it is not. The per-step figure without that charge is printed for context.

Peak: torch.matmul of 2048×2048 matrices on this CPU, bf16 and fp32, best of a few repetitions, measured in this run.
Fraction of peak = tokens/s × 6·N ÷ bf16 matmul FLOP/s, N = the model's total parameter count (base + LoRA). 6·N per
token is the usual estimate (2N forward, 4N backward); with LoRA the frozen weights get no weight gradient, so the
backward is nearer 2N and the real work nearer 4·N per token (gradient checkpointing adds another 2N forward);
DPO's reference forwards (2N per token) and the lm-head/softmax over the 49k vocabulary are likewise outside 6·N.
The fraction is a context figure, with no goal.

Environment knobs: BENCH_RUNNERS_REPS (default 2), BENCH_RUNNERS_STEPS (default 6), BENCH_RUNNERS_WARMUP (1),
BENCH_RUNNERS_ONLY ("sft" or "dpo")."""
import contextlib, io, os, statistics, tempfile, time, warnings
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ALIGNKIT_QUIET", "1")
os.environ.setdefault("TQDM_DISABLE", "1")          # progress bars off on every side (tqdm reads this)
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

REPS = int(os.environ.get("BENCH_RUNNERS_REPS", "2"))
STEPS = int(os.environ.get("BENCH_RUNNERS_STEPS", "6"))
WARMUP = int(os.environ.get("BENCH_RUNNERS_WARMUP", "1"))
ONLY = os.environ.get("BENCH_RUNNERS_ONLY", "")
BATCH = 8
ROOT = Path(__file__).resolve().parents[2]
SFT_DATA, DPO_DATA = ROOT/"datasets/sft/train.jsonl", ROOT/"datasets/preference/train.jsonl"

# -- peak ---------------------------------------------------------------------------------------------
def matmul_gflops(dtype, n=2048, reps=5):
    "Best GFLOP/s of an n×n @ n×n torch.matmul on the CPU in `dtype`."
    import torch
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter(); torch.matmul(a, b); best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9

# -- measuring one run --------------------------------------------------------------------------------
class Meter:
    "Times every optimizer step and counts the non-padding tokens of every batch fed to `trainer.training_step`."
    def __init__(self): self.times, self.tokens, self.fed, self.ref_s, self.ref_rows = [], [], 0, 0.0, 0

    def attach(self, trainer):
        from transformers import TrainerCallback
        meter, step = self, trainer.training_step
        def training_step(model, inputs, *a, **k):
            m = inputs.get("attention_mask")
            meter.fed += int(m.sum()) if m is not None else int(inputs["input_ids"].numel())
            return step(model, inputs, *a, **k)
        trainer.training_step = training_step
        class Cb(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                meter.times.append(time.perf_counter()); meter.tokens.append(meter.fed)
        trainer.add_callback(Cb())
        return trainer

    def result(self):
        "tokens/s over the measured window (with the pro-rata reference precompute), per-step tokens/s, tokens/step."
        assert len(self.times) == WARMUP + STEPS, f"expected {WARMUP + STEPS} steps, got {len(self.times)}"
        toks, dt = self.tokens[-1] - self.tokens[WARMUP - 1], self.times[-1] - self.times[WARMUP - 1]
        ref = self.ref_s / self.ref_rows * STEPS * BATCH if self.ref_rows else 0.0
        return dict(tps=toks / (dt + ref), tps_steps=toks / dt, tokens_per_step=toks / STEPS, step_s=dt / STEPS, ref_s=ref,
                    step_times=[b - a for a, b in zip(self.times, self.times[1:])], step_tokens=[b - a for a, b in zip(self.tokens, self.tokens[1:])])

_current = None          # the Meter of the run being built: the precompute timer charges its reference forwards to it

def _patch_precompute():
    "Time DPOTrainer's reference precompute (it runs inside the constructor) for the Meter of the run being built."
    from trl import DPOTrainer
    orig = DPOTrainer._precompute_ref_logps
    if getattr(orig, "_bench", False): return
    def timed(self, dataset, name, batch_size):
        t = time.perf_counter(); out = orig(self, dataset, name, batch_size)
        if _current is not None and name == "train": _current.ref_s += time.perf_counter() - t; _current.ref_rows += len(dataset)
        return out
    timed._bench = True
    DPOTrainer._precompute_ref_logps = timed

def _model(quant):
    from alignkit.models import load_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_model("smollm2", quant=quant, lora=16)

def _data(kind):
    from alignkit.data import load_data
    if kind == "sft": return load_data(SFT_DATA)
    d = load_data(DPO_DATA)
    return load_data(d.dataset.select(range((WARMUP + STEPS) * BATCH)), kind="preference")

def run_alignkit(kind, data, out):
    "alignkit's runner with its defaults; returns (Meter result, the Run)."
    global _current
    import alignkit.preference as P
    meter = _current = Meter()
    build = P.TRAINER_BUILDERS[kind]
    P.TRAINER_BUILDERS[kind] = lambda run: meter.attach(build(run))
    try:
        model, tok = _model("auto")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(io.StringIO()):        # transformers prints every log dict
                run = getattr(P, kind)(model, data, output_dir=out, background=False, max_steps=WARMUP + STEPS)
    finally: P.TRAINER_BUILDERS[kind], _current = build, None
    return meter.result(), run

def run_trl(kind, data, out, args=None, quant="fp32"):
    "TRL's trainer called directly: with TRL's defaults (args=None) or with exactly `args` (alignkit's)."
    global _current
    import trl
    cfg_cls, trainer_cls = (trl.SFTConfig, trl.SFTTrainer) if kind == "sft" else (trl.DPOConfig, trl.DPOTrainer)
    if args is None: args = dict(max_steps=WARMUP + STEPS, report_to="none", use_cpu=True, seed=0)
    model, tok = _model(quant)
    meter = _current = Meter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = trainer_cls(model=model, args=cfg_cls(output_dir=str(out), **args), train_dataset=data.dataset, processing_class=tok)
            with contextlib.redirect_stdout(io.StringIO()): meter.attach(trainer).train()
    finally: _current = None
    return meter.result(), trainer

def same_args(a, b):
    "Field-by-field differences of two TRL configs, run-directory fields aside."
    skip = {"output_dir", "logging_dir"}
    da, db = a.to_dict(), b.to_dict()
    return {k: (da.get(k), db.get(k)) for k in set(da) | set(db) if k not in skip and da.get(k) != db.get(k)}

# -- one trainer ----------------------------------------------------------------------------------------
def bench(kind, peak_bf16, n_params):
    data = _data(kind)
    res = dict(alignkit=[], defaults=[], equal=[])
    with tempfile.TemporaryDirectory() as d:
        for i in range(REPS):
            r, run = run_alignkit(kind, data, Path(d)/f"ak{i}"); res["alignkit"].append(r)
            # alignkit's RunLog callback sets logging_nan_inf_filter=False on the config at train begin: the same here
            eq_args = {**run.config.args, "max_steps": WARMUP + STEPS, "logging_nan_inf_filter": False}
            r, _ = run_trl(kind, data, Path(d)/f"trl{i}"); res["defaults"].append(r)
            r, tr = run_trl(kind, data, Path(d)/f"eq{i}", args=eq_args, quant=run.model.alignkit.quant); res["equal"].append(r)
            diff = same_args(run.trainer.args, tr.args)
            assert not diff, f"TRL at equal settings differs from alignkit's config: {diff}"
            del run, tr
    if os.environ.get("BENCH_RUNNERS_DUMP"):
        import json
        Path(os.environ["BENCH_RUNNERS_DUMP"]).with_suffix(f".{kind}.json").write_text(json.dumps(res))
    med = {k: statistics.median(x["tps"] for x in v) for k, v in res.items()}
    def ratio(b):
        rs = [a["tps"] / x["tps"] for a, x in zip(res["alignkit"], res[b])]
        return med["alignkit"] / med[b], min(rs), max(rs)
    def desc(k, key="tps"): return "/".join(f"{x[key]:.0f}" for x in res[k])
    r, lo, hi = ratio("defaults")
    print(f"runners/{kind}_tokens_per_s_vs_trl_defaults: {r:.2f} (goal >= 1.5; per-rep range {lo:.2f}–{hi:.2f}; "
          f"alignkit {med['alignkit']:.0f} tok/s [{desc('alignkit')}], TRL defaults {med['defaults']:.0f} tok/s [{desc('defaults')}])", flush=True)
    r, lo, hi = ratio("equal")
    print(f"runners/{kind}_tokens_per_s_vs_trl_equal: {r:.2f} (goal >= 0.97; per-rep range {lo:.2f}–{hi:.2f}; "
          f"TRL at alignkit's settings {med['equal']:.0f} tok/s [{desc('equal')}])", flush=True)
    frac = med["alignkit"] * 6 * n_params / (peak_bf16 * 1e9)
    fd = med["defaults"] * 6 * n_params / (peak_bf16 * 1e9)
    a0, t0 = res["alignkit"][0], res["defaults"][0]
    extra = (f"; per step without the pro-rata reference precompute: alignkit {statistics.median(x['tps_steps'] for x in res['alignkit']):.0f} tok/s, "
             f"precompute charged {a0['ref_s']:.1f} s per {STEPS}-step window" if kind == "dpo" else "")
    print(f"runners/{kind}_fraction_of_bf16_matmul_peak: {frac:.3f} (goal: context; 6·N·tok/s, N={n_params/1e6:.1f}M; "
          f"TRL defaults {fd:.3f}; {a0['tokens_per_step']:.0f} tokens/step, step {a0['step_s']:.2f} s vs {t0['step_s']:.2f} s{extra})", flush=True)
    return res

def main():
    import torch
    bf16, fp32 = matmul_gflops(torch.bfloat16), matmul_gflops(torch.float32)
    print(f"matmul/bf16_gflops: {bf16:.0f} (goal: context; 2048² torch.matmul, best of 5, {torch.get_num_threads()} threads)", flush=True)
    print(f"matmul/fp32_gflops: {fp32:.0f} (goal: context; bf16/fp32 = {bf16/fp32:.2f})", flush=True)
    _patch_precompute()
    m, _ = _model("auto")
    n_params = sum(p.numel() for p in m.parameters()); del m
    for kind in ("sft", "dpo"):
        if ONLY and ONLY != kind: continue
        bench(kind, bf16, n_params)

if __name__ == "__main__": main()
