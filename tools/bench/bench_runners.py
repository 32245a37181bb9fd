"""Runner benchmarks: alignkit's `sft` and `dpo` vs the same TRL trainer called directly, in trained tokens per second.

All runs: the embedded SmolLM2-135M with LoRA r=16 on all linear layers (`load_model("smollm2", lora=16)`), the bundled
data (datasets/sft/train.jsonl, 180 chats; datasets/preference/train.jsonl, 250 pairs), WARMUP + STEPS optimizer steps,
seed 0 everywhere. alignkit groups batches by length (transformers' LengthGroupedSampler: mega-batches of ≥ 4 batches
sorted by length), so its batches are not TRL's random ones; hence tokens/s, not step time.

The three configurations of each trainer:

- alignkit: `alignkit.sft(model, data, max_steps=…)` / `alignkit.dpo(model, pairs, max_steps=…)`, the model from
  `load_model("smollm2", quant="auto", lora=16)` (bf16 weights where the CPU runs bf16 natively, as here), every other
  setting alignkit's default (`alignkit.runners.runner_defaults`: no gradient checkpointing, bf16 where native, batch 8,
  max_length 512, a log record every step; SFT and DPO: group_by_length batches; DPO: precompute_ref_log_probs=True;
  on a CPU eager attention and TRL's LM head scoring only labelled positions, by plain autograd, see nbs/30_runners),
  alignkit's RunLog callback included.
- TRL defaults: `SFTTrainer(model, args=SFTConfig(output_dir=…, max_steps=…, report_to="none", use_cpu=True, seed=0),
  train_dataset=data, processing_class=tok)` (DPO: `DPOConfig`/`DPOTrainer` alike), the model from
  `load_model("smollm2", quant="fp32", lora=16)` (fp32 weights: what `from_pretrained` gives without a dtype). All else
  is TRL 1.16's default: gradient_checkpointing=True, bf16=True (autocast over fp32 weights; this CPU has bf16),
  batch 8, max_length 1024, logging_steps=10; DPO computes the reference log-probs in every step (through the frozen
  "ref" copy of the adapter TRL adds). use_cpu=True and report_to="none" are what running here at all takes; max_steps
  and seed fix the measurement's length and batches (the seed changes nothing else).
- TRL at equal settings: the trainer class alignkit builds (TRL's; for DPO TRL's DPOTrainer plus the pair lengths
  its sampler needs for group_by_length, `alignkit.runners.get_runner(kind).classes()`) built directly from exactly the arguments alignkit's runner built
  (`run.config.args`, plus logging_nan_inf_filter=False, which alignkit's callback sets; the resulting config is
  checked equal to `run.trainer.args` field by field, output_dir aside) on a model of the same precision, set up
  the way an alignkit run sets it up on a CPU (`cpu_attention`: eager attention; built and trained inside
  `compact_lm_head()`: only labelled positions scored, by `cpu_logprobs`), without alignkit's wrapper (run directory,
  RunLog callback, data checks). Its ratio shows what the wrapper costs.

Method. The machine is shared and its load swings by several × within a minute, so the three trainers of a
repetition train side by side in lock-step: each in its own thread, taking turns one optimizer step at a time
under a turnstile, so the k-th steps of the three are measured seconds apart, on the same batch. The order within a
round changes every round through all 6 permutations (a step ran measurably faster, ~5%, right after the fp32
trainer's step than after a bf16 one, so a fixed order would bias the ratios); every 6 measured steps = each order once.
Each trainer frees its thread's OpenMP worker pool (`alignkit.core.release_openmp_pool`) as its step ends, before it
waits for its next turn, and the main thread frees its own before the first turn: GNU OpenMP counts idle pools too,
and with more pool threads than CPUs every pool sleeps between parallel regions instead of spinning, which slowed
every trainer's steps by ~30-45 % and pulled the ratios towards 1. So each step runs as it would alone.
A step's time runs from when the trainer gets its turn (right after its previous step ended) to its `on_step_end`,
so it holds everything the trainer does per step: fetching and collating the batch, forward, backward, optimizer,
logging, callbacks. Tokens are the non-padding tokens of the batches handed to
`training_step` (the sum of `attention_mask`; for DPO the chosen and rejected sequences, the prompt counted in both,
as both go through the model). The first WARMUP steps are left out. DPO with precomputed reference log-probs
(alignkit's default) does the reference forwards once, in the trainer's constructor, where no other trainer runs
beside it to pair with; so its share is measured in lock-step instead: in each step the bench also runs the
trainer's own `compute_ref_log_probs` (the function the precompute calls, same batch size) on that step's batch,
times it apart and adds it to the step's time, else moving the reference forward out of the step would pass for a
speedup (for one epoch the work is the same; the constructor scores all 250 pairs, of which a run of WARMUP + STEPS
steps trains on (WARMUP + STEPS)·8, and that surplus is not charged). The ratio without it, and the constructor's precompute time per
batch, are printed for context.
A ratio is the median over the measured steps (pooled over repetitions) of alignkit's tokens/s in its k-th step ÷
TRL's in its k-th step (with equal batches, TRL's step time ÷ alignkit's; SFT's length-grouped batches are not
TRL's random ones, so it is tokens/s); its spread is the interquartile range of those per-step ratios, and the
ratio of summed tokens ÷ summed times is printed beside it. tokens/s figures are medians of the per-step tokens/s.

Peak: torch.matmul of 2048×2048 matrices on this CPU in fp32 (and bf16 where native) with torch's default threads, the best of 5,
measured before, between and after the trainings; the best of all is the peak (the one least hit by other load).
Fraction of peak = tokens/s × 6·N ÷ the matmul FLOP/s of the precision alignkit trains in here (bf16 where native, else fp32), N = the model's total parameter count (base + LoRA). 6·N per
token is the usual estimate (2N forward, 4N backward); with LoRA the frozen weights get no weight gradient, so the
backward is nearer 2N and the real work nearer 4·N per token (gradient checkpointing adds another 2N forward); DPO's
reference forwards (2N per token, charged here in time) are work outside 6·N too. A context figure, no goal.

Knobs (environment): BENCH_RUNNERS_REPS (default 1), BENCH_RUNNERS_STEPS (12 for SFT, 6 for DPO), BENCH_RUNNERS_WARMUP (1),
BENCH_RUNNERS_ONLY ("sft" or "dpo"), BENCH_RUNNERS_DUMP (a path prefix: write every step's numbers as JSON)."""
import contextlib, io, itertools, json, os, random, statistics, tempfile, threading, time, warnings
from pathlib import Path
from alignkit.core import release_openmp_pool
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ALIGNKIT_QUIET", "1")
os.environ.setdefault("TQDM_DISABLE", "1")          # progress bars off on every side (tqdm reads this)
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

REPS = int(os.environ.get("BENCH_RUNNERS_REPS", "1"))
# measured steps per trainer, multiples of 6 (each order of the three trainers once per 6 rounds); SFT steps are
# cheap, so it gets two cycles. BENCH_RUNNERS_STEPS sets both.
STEPS_BY_KIND = {k: int(os.environ.get("BENCH_RUNNERS_STEPS", n)) for k, n in (("sft", "12"), ("dpo", "6"))}
STEPS = STEPS_BY_KIND["sft"]     # the trainer being measured sets it (bench())
WARMUP = int(os.environ.get("BENCH_RUNNERS_WARMUP", "1"))
ONLY = os.environ.get("BENCH_RUNNERS_ONLY", "")
DUMP = os.environ.get("BENCH_RUNNERS_DUMP", "")
BATCH = 8
ROOT = Path(__file__).resolve().parents[2]
SFT_DATA, DPO_DATA = ROOT/"datasets/sft/train.jsonl", ROOT/"datasets/preference/train.jsonl"
NAMES = ("alignkit", "defaults", "equal")

# -- peak ---------------------------------------------------------------------------------------------
PEAKS = {"bf16": [], "fp32": []}

def matmul_gflops(n=2048, reps=5):
    "Best GFLOP/s of an n×n @ n×n torch.matmul on the CPU in fp32, and in bf16 where it is native; every measurement is kept in PEAKS."
    import torch
    from alignkit.models import bf16_native
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        if name == "bf16" and not bf16_native("cpu"): continue          # emulated: minutes per matmul, and no peak of anything
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        torch.matmul(a, b)
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter(); torch.matmul(a, b); best = min(best, time.perf_counter() - t)
        PEAKS[name].append(2 * n**3 / best / 1e9)

# -- lock-step ------------------------------------------------------------------------------------------
class Turnstile:
    """Lets registered trainers run one optimizer step at a time, in turn; closed until `open()`. The order changes
    every round, going through all permutations (3 trainers: 6 rounds; more: seeded shuffles), because a step is
    faster or slower by some percent depending on which trainer ran just before it (measured: ~5% here)."""
    def __init__(self, names):
        names = list(names)
        self.orders = [list(p) for p in itertools.permutations(names)] if len(names) <= 3 else \
                      [random.Random(r).sample(names, len(names)) for r in range(60)]
        self.live, self.turn, self.round, self.pos, self.cv = set(names), None, 0, 0, threading.Condition()
    def _order(self): return self.orders[self.round % len(self.orders)]
    def open(self):
        with self.cv: self.turn = self._order()[0]; self.cv.notify_all()
    def wait(self, name):
        with self.cv: self.cv.wait_for(lambda: self.turn == name)
    def _advance(self):
        self.turn = None
        for _ in range(2 * len(self.orders[0]) + 1):
            self.pos += 1
            if self.pos == len(self.orders[0]): self.pos, self.round = 0, self.round + 1
            if self._order()[self.pos] in self.live: self.turn = self._order()[self.pos]; break
        self.cv.notify_all()
    def next(self, name):
        with self.cv:
            if self.turn == name: self._advance()
    def finish(self, name):
        with self.cv:
            self.live.discard(name)
            if self.turn == name: self._advance()

class Meter:
    "Times each optimizer step of one trainer (turn to on_step_end) and counts the tokens of the batches it was fed."
    def __init__(self, name, gate):
        self.name, self.gate = name, gate
        self.times, self.tokens, self.refs, self.fed, self.padded, self.ref_fwd, self.ref_s, self.ref_rows = [], [], [], 0, 0, 0.0, 0.0, 0

    def attach(self, trainer):
        from transformers import TrainerCallback
        meter, step = self, trainer.training_step
        probe = bool(getattr(trainer, "precompute_ref_logps", False))     # DPO with precomputed reference log-probs
        def training_step(model, inputs, *a, **k):
            m = inputs.get("attention_mask")
            meter.fed += int(m.sum()) if m is not None else int(inputs["input_ids"].numel())
            meter.padded += int(inputs["input_ids"].numel())
            if probe:       # what the precompute spent on this batch, timed now, beside the others' steps
                import torch
                t = time.perf_counter()
                with torch.no_grad(): trainer.compute_ref_log_probs(trainer.ref_model or trainer.model, inputs)
                meter.ref_fwd += time.perf_counter() - t
            return step(model, inputs, *a, **k)
        trainer.training_step = training_step
        class Cb(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw):
                meter.gate.wait(meter.name); meter.t0, meter.last = time.perf_counter(), 0
            def on_step_end(self, args, state, control, **kw):
                meter.times.append(time.perf_counter() - meter.t0 - meter.ref_fwd); meter.refs.append(meter.ref_fwd)
                meter.tokens.append(meter.fed - meter.last); meter.last, meter.ref_fwd = meter.fed, 0.0
                release_openmp_pool()       # idle while the others run: its OpenMP pool must not count (see Method)
                meter.gate.next(meter.name); meter.gate.wait(meter.name); meter.t0 = time.perf_counter()
            def on_train_end(self, args, state, control, **kw): meter.gate.finish(meter.name)
        trainer.add_callback(Cb())
        return trainer

    def steps(self, charge=True):
        "(seconds, tokens) of each measured step; with `charge`, plus the reference forward of its batch (precompute's share)."
        assert len(self.times) == WARMUP + STEPS, f"{self.name}: expected {WARMUP + STEPS} steps, got {len(self.times)}"
        return [(t + (r if charge else 0.0), n) for t, r, n in zip(self.times[WARMUP:], self.refs[WARMUP:], self.tokens[WARMUP:])]

_building = None         # the Meter of the trainer being constructed: DPO's reference precompute is charged to it

def _patch_precompute():
    "Time DPOTrainer's reference precompute (it runs inside the constructor) for the Meter of the trainer being built."
    from trl import DPOTrainer
    orig = DPOTrainer._precompute_ref_logps
    if getattr(orig, "_bench", False): return
    def timed(self, dataset, name, batch_size):
        t = time.perf_counter(); out = orig(self, dataset, name, batch_size)
        if _building is not None and name == "train": _building.ref_s += time.perf_counter() - t; _building.ref_rows += len(dataset)
        return out
    timed._bench = True
    DPOTrainer._precompute_ref_logps = timed

def _quiet(): return contextlib.redirect_stdout(io.StringIO())    # transformers' trainers print each log dict to stdout

def _model(quant):
    from alignkit.models import load_model
    with warnings.catch_warnings(), _quiet():
        warnings.simplefilter("ignore")
        return load_model("smollm2", quant=quant, lora=16)

def _data(kind):
    from alignkit.data import load_data
    return load_data(SFT_DATA if kind == "sft" else DPO_DATA, kind="sft" if kind == "sft" else "preference")

def start_alignkit(kind, data, out, meter):
    "alignkit's runner with its defaults, training in its own thread (held by the turnstile); returns the Run."
    global _building
    import dataclasses, alignkit.preference as P
    from alignkit.runners import RUNNERS, get_runner
    runner, _building = get_runner(kind), meter      # the run looks its runner up at start: add the meter to the trainer it builds
    RUNNERS[kind] = dataclasses.replace(runner, build=lambda run: meter.attach(runner.build(run)))
    try:
        model, tok = _model("auto")
        with warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore")
            return getattr(P, kind)(model, data, output_dir=out, background=True, max_steps=WARMUP + STEPS)
    finally: RUNNERS[kind], _building = runner, None

def start_trl(kind, data, out, meter, args=None, quant="fp32"):
    "TRL's trainer called directly, with TRL's defaults (args=None) or exactly `args`; returns (trainer, thread)."
    global _building
    import trl
    from alignkit.runners import get_runner
    equal = args is not None                # decided before `args` gets TRL's defaults below
    if equal: cfg_cls, trainer_cls = get_runner(kind).classes()       # equal settings: the class alignkit builds
    else:
        cfg_cls, trainer_cls = (trl.SFTConfig, trl.SFTTrainer) if kind == "sft" else (trl.DPOConfig, trl.DPOTrainer)
        args = dict(max_steps=WARMUP + STEPS, report_to="none", use_cpu=True, seed=0)
    model, tok = _model(quant)
    from alignkit._compat import compact_lm_head, cpu_attention
    if equal: cpu_attention(model)          # at equal settings the model is set up as alignkit's run sets it up
    same = compact_lm_head if equal else contextlib.nullcontext
    _building = meter
    try:
        with warnings.catch_warnings(), _quiet(), same():
            warnings.simplefilter("ignore")
            trainer = meter.attach(trainer_cls(model=model, args=cfg_cls(output_dir=str(out), **args), train_dataset=data.dataset,
                                               processing_class=tok))
    finally: _building = None
    err = []
    def target():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with same(): trainer.train()
        except BaseException as e: err.append(e)
        finally: meter.gate.finish(meter.name)
    th = threading.Thread(target=target, name=f"bench-{meter.name}", daemon=True)
    th.err = err
    return trainer, th

def config_diff(a, b):
    "Field-by-field differences of two TRL configs, run-directory fields aside."
    da, db = a.to_dict(), b.to_dict()
    return {k: (da.get(k), db.get(k)) for k in set(da) | set(db) if k not in ("output_dir", "logging_dir") and da.get(k) != db.get(k)}

def one_rep(kind, data, d, i):
    "The three trainers of one repetition in lock-step; returns their Meters."
    gate = Turnstile(NAMES)
    meters = {n: Meter(n, gate) for n in NAMES}
    with _quiet():       # the trainers' own log printing happens in their threads, while this is in force
        run = start_alignkit(kind, data, Path(d)/f"alignkit{i}", meters["alignkit"])
        _, t_def = start_trl(kind, data, Path(d)/f"defaults{i}", meters["defaults"])
        eq_args = {**run.config.args, "max_steps": WARMUP + STEPS, "logging_nan_inf_filter": False}
        tr_eq, t_eq = start_trl(kind, data, Path(d)/f"equal{i}", meters["equal"], args=eq_args, quant=run.model.alignkit.quant)
        t_def.start(); t_eq.start()
        release_openmp_pool()           # this thread loaded the models; its idle pool must not count either
        gate.open()
        while run._thread.is_alive() or t_def.is_alive() or t_eq.is_alive():
            if not run._thread.is_alive(): gate.finish("alignkit")      # a failed run never reaches on_train_end
            time.sleep(0.2)
    run.wait()
    for t in (t_def, t_eq):
        if t.err: raise t.err[0]
    diff = config_diff(run.trainer.args, tr_eq.args)
    assert not diff, f"TRL at equal settings differs from alignkit's config: {diff}"
    return meters

# -- one trainer ----------------------------------------------------------------------------------------
def _iqr(xs):
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], q[2]

def bench(kind, n_params):
    global STEPS
    STEPS = STEPS_BY_KIND[kind]
    data = _data(kind)
    steps = {n: [] for n in NAMES}; bare = {n: [] for n in NAMES}; info = {n: dict(ref_step=[], precompute=[], pad=[]) for n in NAMES}
    with tempfile.TemporaryDirectory() as d:
        for i in range(REPS):
            meters = one_rep(kind, data, d, i)
            for n, m in meters.items():
                steps[n] += m.steps(); bare[n] += m.steps(charge=False)
                info[n]["ref_step"] += m.refs[WARMUP:]
                info[n]["precompute"].append(m.ref_s / m.ref_rows * BATCH if m.ref_rows else 0.0)
                info[n]["pad"].append(1 - m.fed / m.padded)
            matmul_gflops()
    if DUMP:
        Path(f"{DUMP}.{kind}.json").write_text(json.dumps(dict(steps=steps, bare=bare, info=info, peaks=PEAKS)))
    same_batches = [n for _, n in steps["equal"]] == [n for _, n in steps["alignkit"]]
    tps = {n: statistics.median(k / t for t, k in v) for n, v in steps.items()}
    def ratio(b, src=steps):
        # tokens/s of alignkit's k-th step ÷ TRL's k-th step (run seconds apart, so load drift cancels); with equal
        # batches this is TRL's step time ÷ alignkit's. SFT's length-grouped batches differ from TRL's random ones,
        # so tokens/s it must be.
        rs = [(ka / ta) / (kb / tb) for (ta, ka), (tb, kb) in zip(src["alignkit"], src[b])]
        tot = (sum(k for _, k in src["alignkit"]) / sum(t for t, _ in src["alignkit"])) / (sum(k for _, k in src[b]) / sum(t for t, _ in src[b]))
        return statistics.median(rs), *_iqr(rs), tot
    r, lo, hi, tot = ratio("defaults")
    extra = ""
    if kind == "dpo":
        rb, lob, hib, _ = ratio("defaults", bare)
        extra = (f"; without charging alignkit's reference precompute {rb:.2f} (IQR {lob:.2f}–{hib:.2f}), "
                 f"the reference forward of a batch took {statistics.median(info['alignkit']['ref_step']):.2f} s in lock-step, "
                 f"the precompute in the constructor {statistics.median(info['alignkit']['precompute']):.2f} s per batch")
    step_s = {n: statistics.median(t for t, _ in v) for n, v in steps.items()}
    print(f"runners/{kind}_tokens_per_s_vs_trl_defaults: {r:.2f} (goal >= 1.5; per-step IQR {lo:.2f}–{hi:.2f}, summed {tot:.2f}; "
          f"alignkit {tps['alignkit']:.0f} tok/s, {step_s['alignkit']:.2f} s/step; TRL defaults {tps['defaults']:.0f} tok/s, "
          f"{step_s['defaults']:.2f} s/step; {len(steps['alignkit'])} steps × {REPS} rep(s) in lock-step{extra})", flush=True)
    r, lo, hi, tot = ratio("equal")
    print(f"runners/{kind}_tokens_per_s_vs_trl_equal: {r:.2f} (goal >= 0.97; per-step IQR {lo:.2f}–{hi:.2f}, summed {tot:.2f}; "
          f"TRL at alignkit's settings {tps['equal']:.0f} tok/s)", flush=True)
    from alignkit.models import best_precision
    prec = best_precision("cpu")                  # the peak of the precision alignkit trains in on this machine
    peak = max(PEAKS[prec])
    tok_step = statistics.median(k for _, k in steps["alignkit"])
    print(f"runners/{kind}_fraction_of_{prec}_matmul_peak: {tps['alignkit'] * 6 * n_params / (peak * 1e9):.3f} (goal: context; "
          f"6·N·tokens/s ÷ {peak:.0f} GFLOP/s, N={n_params/1e6:.1f}M; TRL defaults {tps['defaults'] * 6 * n_params / (peak * 1e9):.3f}; "
          f"{tok_step:.0f} tokens/step, padding {statistics.median(info['alignkit']['pad']):.0%} of positions"
          f"{'' if same_batches else '; NOTE: alignkit and TRL at equal settings saw different batches'})", flush=True)

def main():
    import torch
    _patch_precompute()
    matmul_gflops()
    m, _ = _model("auto")
    n_params = sum(p.numel() for p in m.parameters()); del m
    for kind in ("sft", "dpo"):
        if ONLY and ONLY != kind: continue
        bench(kind, n_params)
    fp32 = max(PEAKS["fp32"])
    if PEAKS["bf16"]:
        bf16 = max(PEAKS["bf16"])
        print(f"matmul/bf16_gflops: {bf16:.0f} (goal: context; 2048² torch.matmul, {torch.get_num_threads()} threads, best of "
              f"{len(PEAKS['bf16'])}×5 spread over the run; each time's best: {', '.join(f'{x:.0f}' for x in PEAKS['bf16'])})", flush=True)
    else: print("matmul/bf16_gflops: not measured (goal: context; this CPU has no native bf16)", flush=True)
    ratio = f"bf16 ÷ fp32 = {max(PEAKS['bf16'])/fp32:.2f}; " if PEAKS["bf16"] else ""
    print(f"matmul/fp32_gflops: {fp32:.0f} (goal: context; {ratio}2048² torch.matmul, {torch.get_num_threads()} threads; each time's best: "
          f"{', '.join(f'{x:.0f}' for x in PEAKS['fp32'])})", flush=True)

if __name__ == "__main__": main()
