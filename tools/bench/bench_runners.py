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
- TRL defaults, precision corrected (only on a CPU without native bf16, where TRL's bf16=True autocast is emulated):
  TRL's defaults as above plus `bf16=False` — the comparison a careful user would make there. Where bf16 is native,
  TRL's defaults already train in the machine's precision and this line repeats the defaults' ratio.

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

Bounded time. Each trainer gets BENCH_RUNNERS_BUDGET_S seconds of stepping (default 150). One over it stops at the
end of its step; a TRL trainer whose step is still running when the budget is spent is stopped inside the step (a
forward pre-hook on its decoder layers raises), which bounds the whole bench on a CPU where bf16 is emulated (a step of
TRL's defaults takes minutes there). A ratio is then taken over the steps both sides did, and their count is printed;
where the slow side finished no measured step, the ratio is a lower bound from its unfinished step (its tokens ÷ the
time it had run, which is more than that step's real tokens/s).

Peak: torch.matmul of 2048×2048 matrices (tools/bench/machine.py: smaller where one product would take > 0.5 s, as bf16
where it is emulated) in fp32 and in bf16 with torch's default threads, the best of 5, measured before, between and
after the trainings; the best of all is the peak (the one least hit by other load).
Fraction of peak = the work a step did ÷ its time ÷ the matmul FLOP/s of the precision alignkit trains in here (bf16
where native, else fp32). The work is counted from the batch, as what LoRA on a frozen base must do, per trained
(non-padding) token: forward 2·N_body, backward through the activations 2·N_body (no weight gradient for frozen
weights), the adapter 6·N_lora (forward, input gradient, weight gradient); the LM head 4·V·d per labelled position
only (the positions the loss reads; scoring the others is not work the loss needs); attention 6·L·D·Σ len² per
sequence (forward QKᵀ and AV over the causal half, twice that backward). DPO adds the reference forward on top:
2·N_body per token, 2·V·d per labelled position, 2·L·D·Σ len². N_body = the decoder layers' linear weights, N_lora
the adapter's, V·d the LM head's, L layers, D = heads × head dim. Gradient checkpointing's second forward is not
counted (it is work TRL's defaults choose, not work training needs). Beside it, the same work ÷ time ÷ what the model's
own products reach here (`shape_gflops`: each linear shape of the decoder and the LM head at the step's token count,
timed alone in the run): how much of the gap is the trainer's (elementwise work, casts, the optimizer, Python) rather
than the matmul shapes'.

Quality guard: after the runs, alignkit's model and TRL's (its defaults; the precision-corrected one where the defaults
were stopped by the budget) are scored on the held-out split (datasets/sft/test.jsonl, 40 chats: the completion NLL,
`alignkit.preference.evaluate`; datasets/preference/test.jsonl, 60 pairs: the DPO loss −log σ(β·margin), β = 0.1,
margins against the adapter-free base), next to the base model's score and the tokens each trained on. It holds when
alignkit's held-out loss is at most TRL's + BENCH_RUNNERS_QUALITY_TOL × the base model's loss (default 0.02).

Knobs (environment): BENCH_RUNNERS_REPS (default 1), BENCH_RUNNERS_STEPS (12 for SFT, 6 for DPO), BENCH_RUNNERS_WARMUP (1),
BENCH_RUNNERS_BUDGET_S (150), BENCH_RUNNERS_QUALITY_TOL (0.02),
BENCH_RUNNERS_ONLY ("sft" or "dpo"), BENCH_RUNNERS_DUMP (a path prefix: write every step's numbers as JSON)."""
import contextlib, io, itertools, json, math, os, random, statistics, sys, tempfile, threading, time, warnings
from pathlib import Path
from alignkit.core import release_openmp_pool
sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine
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
BUDGET = float(os.environ.get("BENCH_RUNNERS_BUDGET_S", "150"))
QUALITY_TOL = float(os.environ.get("BENCH_RUNNERS_QUALITY_TOL", "0.02"))
ONLY = os.environ.get("BENCH_RUNNERS_ONLY", "")
DUMP = os.environ.get("BENCH_RUNNERS_DUMP", "")
BATCH = 8
BETA = 0.1
ROOT = Path(__file__).resolve().parents[2]
SFT_DATA, DPO_DATA = ROOT/"datasets/sft/train.jsonl", ROOT/"datasets/preference/train.jsonl"
SFT_TEST, DPO_TEST = ROOT/"datasets/sft/test.jsonl", ROOT/"datasets/preference/test.jsonl"

def names():
    "The trainers of a repetition: the precision-corrected TRL defaults only where bf16 is not native (else they are TRL's defaults)."
    from alignkit.models import bf16_native
    return ("alignkit", "defaults", "equal") if bf16_native("cpu") else ("alignkit", "defaults", "corrected", "equal")

# -- peak ---------------------------------------------------------------------------------------------
PEAKS = {"bf16": [], "fp32": []}
SIZES = {"bf16": set(), "fp32": set()}

def matmul_gflops(n=2048, reps=5):
    "Best GFLOP/s of an n×n @ n×n torch.matmul on the CPU in fp32 and in bf16 (smaller where it would be slow: emulated bf16), kept in PEAKS."
    import torch
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        g, used = machine.matmul_gflops(dtype, n, reps)
        PEAKS[name].append(g); SIZES[name].add(used)

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
        with self.cv: self.cv.wait_for(lambda: self.turn == name or name not in self.live)
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
            self.cv.notify_all()

class OverBudget(Exception):
    "Raised inside a step of a trainer whose time budget is spent (bounds the bench where a step takes minutes)."

def abort_over_budget(model, meter):
    """Raise OverBudget inside a step of `model` once `meter`'s budget is spent (a forward pre-hook on every decoder
    layer; `meter` has running, used, t0 and budget: the seconds of its finished steps, when this one began)."""
    def over(mod, args):
        if meter.running and meter.used + time.perf_counter() - meter.t0 > meter.budget: raise OverBudget(meter.name)
    for mod in model.modules():
        if type(mod).__name__.endswith("DecoderLayer"): mod.register_forward_pre_hook(over)

class Meter:
    """Times each optimizer step of one trainer (turn to on_step_end), counts the tokens of the batches it was fed,
    their labelled positions and Σ len² (for the work count), and stops the trainer when its budget is spent."""
    def __init__(self, name, gate, budget=None):
        self.name, self.gate, self.budget = name, gate, BUDGET if budget is None else budget
        self.times, self.tokens, self.refs, self.fed, self.padded, self.ref_fwd, self.ref_s, self.ref_rows = [], [], [], 0, 0, 0.0, 0.0, 0
        self.labelled, self.sumsq, self.lab, self.sq = [], [], 0, 0
        self.used, self.running, self.partial, self.t0, self.last = 0.0, False, None, 0.0, 0

    def attach(self, trainer, abort=True):
        "Meter `trainer`; with `abort`, a step still running when the budget is spent raises OverBudget inside it."
        from transformers import TrainerCallback
        meter, step = self, trainer.training_step
        probe = bool(getattr(trainer, "precompute_ref_logps", False))     # DPO with precomputed reference log-probs
        def training_step(model, inputs, *a, **k):
            m = inputs.get("attention_mask")
            lens = m.sum(-1) if m is not None else None
            meter.fed += int(lens.sum()) if lens is not None else int(inputs["input_ids"].numel())
            meter.padded += int(inputs["input_ids"].numel())
            if lens is not None: meter.sq += int((lens.double() ** 2).sum())
            if "completion_mask" in inputs: meter.lab += int(inputs["completion_mask"].sum())
            elif "labels" in inputs: meter.lab += int((inputs["labels"][..., 1:] != -100).sum())
            else: meter.lab += int(lens.sum()) if lens is not None else int(inputs["input_ids"].numel())
            if probe:       # what the precompute spent on this batch, timed now, beside the others' steps
                import torch
                t = time.perf_counter()
                with torch.no_grad(): trainer.compute_ref_log_probs(trainer.ref_model or trainer.model, inputs)
                meter.ref_fwd += time.perf_counter() - t
            return step(model, inputs, *a, **k)
        trainer.training_step = training_step
        if abort: abort_over_budget(trainer.model, meter)
        class Cb(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw):
                meter.gate.wait(meter.name); meter.t0, meter.last, meter.running = time.perf_counter(), 0, True
            def on_step_end(self, args, state, control, **kw):
                dt = time.perf_counter() - meter.t0
                meter.times.append(dt - meter.ref_fwd); meter.refs.append(meter.ref_fwd); meter.used += dt
                meter.tokens.append(meter.fed - meter.last); meter.last, meter.ref_fwd = meter.fed, 0.0
                meter.labelled.append(meter.lab); meter.sumsq.append(meter.sq); meter.lab = meter.sq = 0
                release_openmp_pool()       # idle while the others run: its OpenMP pool must not count (see Method)
                if meter.used >= meter.budget:
                    control.should_training_stop = True; meter.running = False; meter.gate.finish(meter.name); return
                meter.gate.next(meter.name); meter.gate.wait(meter.name); meter.t0 = time.perf_counter()
            def on_train_end(self, args, state, control, **kw): meter.running = False; meter.gate.finish(meter.name)
        trainer.add_callback(Cb())
        return trainer

    def stopped_in_step(self):
        "Record the step the budget cut short: (seconds it ran, tokens it was fed)."
        self.running = False
        self.partial = (time.perf_counter() - self.t0, self.fed - self.last)

    def steps(self, charge=True):
        "(seconds, tokens) of each measured step; with `charge`, plus the reference forward of its batch (precompute's share)."
        return [(t + (r if charge else 0.0), n) for t, r, n in zip(self.times[WARMUP:], self.refs[WARMUP:], self.tokens[WARMUP:])]

    def work(self, terms, dpo):
        "FLOPs of each measured step, by the formula in the module's docstring."
        nb, na, vd, ld = terms["body"], terms["adapter"], terms["head"], terms["attn"]
        per_tok, per_lab, per_sq = 4 * nb + 6 * na, 4 * vd, 6 * ld
        if dpo: per_tok, per_lab, per_sq = per_tok + 2 * nb, per_lab + 2 * vd, per_sq + 2 * ld
        return [n * per_tok + lab * per_lab + sq * per_sq
                for n, lab, sq in zip(self.tokens[WARMUP:], self.labelled[WARMUP:], self.sumsq[WARMUP:])]

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

def work_terms(model) -> dict:
    "N_body (decoder layers' linear weights), N_lora, V·d (LM head) and L·D (layers × attention width) of a PEFT model."
    import torch
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = base.config
    body = sum(m.weight.numel() for n, m in base.model.layers.named_modules() if isinstance(m, torch.nn.Linear) and "lora_" not in n)
    adapter = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return dict(body=body, adapter=adapter, head=base.get_output_embeddings().weight.numel(),
                attn=cfg.num_hidden_layers * cfg.num_attention_heads * head_dim)

def shape_gflops(model, tokens:int, dtype, reps:int=3) -> float:
    """GFLOP/s of the products one forward multiplies, at `tokens` rows: each distinct linear shape of the decoder
    layers and the LM head, timed as `tokens × in @ in × out` in `dtype`, weighted by how often it occurs. The peak
    the model's own shapes allow on this machine (context for the 2048² figure: a 576-wide model's products are small)."""
    import collections, torch
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    shapes = collections.Counter(tuple(m.weight.shape) for n, m in base.model.layers.named_modules()
                                 if isinstance(m, torch.nn.Linear) and "lora_" not in n)
    shapes[tuple(base.get_output_embeddings().weight.shape)] += 1
    flops = secs = 0.0
    for (out_f, in_f), count in shapes.items():
        x, w = torch.randn(tokens, in_f, dtype=dtype), torch.randn(in_f, out_f, dtype=dtype)
        x @ w
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter(); x @ w; best = min(best, time.perf_counter() - t)
        flops += count * 2 * tokens * in_f * out_f; secs += count * best
    return flops / secs / 1e9

def start_alignkit(kind, data, out, meter):
    "alignkit's runner with its defaults, training in its own thread (held by the turnstile); returns the Run."
    global _building
    import dataclasses, alignkit.preference as P
    from alignkit.runners import RUNNERS, get_runner
    runner, _building = get_runner(kind), meter      # the run looks its runner up at start: add the meter to the trainer it builds
    RUNNERS[kind] = dataclasses.replace(runner, build=lambda run: meter.attach(runner.build(run), abort=False))
    try:
        model, tok = _model("auto")
        with warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore")
            return getattr(P, kind)(model, data, output_dir=out, background=True, max_steps=WARMUP + STEPS)
    finally: RUNNERS[kind], _building = runner, None

def start_trl(kind, data, out, meter, args=None, quant="fp32", corrected=False):
    """TRL's trainer called directly, with TRL's defaults (args=None; `corrected`: plus bf16=False) or exactly `args`;
    returns (trainer, thread)."""
    global _building
    import trl
    from alignkit.runners import get_runner
    equal = args is not None                # decided before `args` gets TRL's defaults below
    if equal: cfg_cls, trainer_cls = get_runner(kind).classes()       # equal settings: the class alignkit builds
    else:
        cfg_cls, trainer_cls = (trl.SFTConfig, trl.SFTTrainer) if kind == "sft" else (trl.DPOConfig, trl.DPOTrainer)
        args = dict(max_steps=WARMUP + STEPS, report_to="none", use_cpu=True, seed=0, **(dict(bf16=False) if corrected else {}))
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
        except OverBudget: meter.stopped_in_step()
        except BaseException as e: err.append(e)
        finally: meter.gate.finish(meter.name)
    th = threading.Thread(target=target, name=f"bench-{meter.name}", daemon=True)
    th.err, th.tok = err, tok
    return trainer, th

def config_diff(a, b):
    "Field-by-field differences of two TRL configs, run-directory fields aside."
    da, db = a.to_dict(), b.to_dict()
    return {k: (da.get(k), db.get(k)) for k in set(da) | set(db) if k not in ("output_dir", "logging_dir") and da.get(k) != db.get(k)}

def one_rep(kind, data, d, i):
    "The trainers of one repetition in lock-step; returns their Meters, alignkit's Run and TRL's trainers (name -> trainer)."
    ns = names()
    gate = Turnstile(ns)
    meters = {n: Meter(n, gate) for n in ns}
    trainers, threads = {}, {}
    with _quiet():       # the trainers' own log printing happens in their threads, while this is in force
        run = start_alignkit(kind, data, Path(d)/f"alignkit{i}", meters["alignkit"])
        trainers["defaults"], threads["defaults"] = start_trl(kind, data, Path(d)/f"defaults{i}", meters["defaults"])
        if "corrected" in ns:
            trainers["corrected"], threads["corrected"] = start_trl(kind, data, Path(d)/f"corrected{i}", meters["corrected"], corrected=True)
        eq_args = {**run.config.args, "max_steps": WARMUP + STEPS, "logging_nan_inf_filter": False}
        trainers["equal"], threads["equal"] = start_trl(kind, data, Path(d)/f"equal{i}", meters["equal"], args=eq_args,
                                                        quant=run.model.alignkit.quant)
        for t in threads.values(): t.start()
        release_openmp_pool()           # this thread loaded the models; its idle pool must not count either
        gate.open()
        while run._thread.is_alive() or any(t.is_alive() for t in threads.values()):
            if not run._thread.is_alive(): gate.finish("alignkit")      # a failed run never reaches on_train_end
            time.sleep(0.2)
    run.wait()
    for t in threads.values():
        if t.err: raise t.err[0]
    diff = config_diff(run.trainer.args, trainers["equal"].args)
    assert not diff, f"TRL at equal settings differs from alignkit's config: {diff}"
    return meters, run, trainers, {n: t.tok for n, t in threads.items()}

# -- quality ---------------------------------------------------------------------------------------------
def heldout(kind, model, tok) -> float:
    "The held-out loss: SFT completion NLL on datasets/sft/test.jsonl; DPO loss −log σ(β·margin) on datasets/preference/test.jsonl."
    from alignkit.data import load_data
    from alignkit.preference import _completion_logps, _texts, evaluate
    with warnings.catch_warnings(), _quiet():
        warnings.simplefilter("ignore")
        if kind == "sft": return evaluate(model, SFT_TEST, tokenizer=tok)["loss"]
        was = model.training; model.eval()
        try:
            t = [_texts(tok, r, ("chosen", "rejected")) for r in load_data(DPO_TEST, kind="preference").to_list()]
            ps, cs, rs = [x["prompt"] for x in t], [x["chosen"] for x in t], [x["rejected"] for x in t]
            pc, pr = _completion_logps(model, tok, ps, cs), _completion_logps(model, tok, ps, rs)
            with model.disable_adapter(): rc, rr = _completion_logps(model, tok, ps, cs), _completion_logps(model, tok, ps, rs)
        finally:
            if was: model.train()
        m = [(a[0] - c[0]) - (b[0] - e[0]) for a, b, c, e in zip(pc, pr, rc, rr)]
        return sum(math.log1p(math.exp(-BETA * x)) for x in m) / len(m)

def base_heldout(kind, model, tok) -> float:
    "The held-out loss of the base model (the adapter disabled: a fresh LoRA adds nothing)."
    if kind == "dpo": return math.log(2)       # every margin against the base itself is 0
    with model.disable_adapter(): return heldout(kind, model, tok)

# -- one trainer ----------------------------------------------------------------------------------------
def _iqr(xs):
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], q[2]

def pair_ratio(a, b, partial=None):
    """(median, IQR low, IQR high, summed ratio, paired steps, lower bound?) of alignkit's tokens/s ÷ the other's, over
    the steps both did; where the other did none, from its step the budget cut short (a lower bound)."""
    n = min(len(a), len(b))
    if n == 0:
        if not partial or not a: return None
        tb, kb = partial
        r = (sum(k for _, k in a) / sum(t for t, _ in a)) / (kb / tb)
        return r, r, r, r, 0, True
    a, b = a[:n], b[:n]
    rs = [(ka / ta) / (kb / tb) for (ta, ka), (tb, kb) in zip(a, b)]
    tot = (sum(k for _, k in a) / sum(t for t, _ in a)) / (sum(k for _, k in b) / sum(t for t, _ in b))
    return statistics.median(rs), *_iqr(rs), tot, n, False

def _ratio_line(name, r, goal, extra=""):
    if r is None: return f"{name}: not measured (goal {goal}; the other side did no step within its budget of {BUDGET:.0f} s{extra})"
    med, lo, hi, tot, n, bound = r
    if bound: return (f"{name}: >= {med:.2f} (goal {goal}; a lower bound: TRL's first step was still running when its budget "
                      f"of {BUDGET:.0f} s was spent, 0 paired steps{extra})")
    return f"{name}: {med:.2f} (goal {goal}; per-step IQR {lo:.2f}–{hi:.2f}, summed {tot:.2f}; {n} paired steps in lock-step{extra})"

def bench(kind, terms):
    global STEPS
    STEPS = STEPS_BY_KIND[kind]
    data = _data(kind)
    ns = names()
    steps = {n: [] for n in ns}; bare = {n: [] for n in ns}; work = {n: [] for n in ns}; partial = {n: None for n in ns}
    info = {n: dict(ref_step=[], precompute=[], pad=[], trained=0) for n in ns}
    quality = []
    with tempfile.TemporaryDirectory() as d:
        for i in range(REPS):
            meters, run, trainers, toks = one_rep(kind, data, d, i)
            for n, m in meters.items():
                steps[n] += m.steps(); bare[n] += m.steps(charge=False); work[n] += m.work(terms, kind == "dpo")
                partial[n] = partial[n] or m.partial
                info[n]["ref_step"] += m.refs[WARMUP:]
                info[n]["precompute"].append(m.ref_s / m.ref_rows * BATCH if m.ref_rows else 0.0)
                info[n]["pad"].append(1 - m.fed / m.padded if m.padded else 0.0)
                info[n]["trained"] += m.fed
            full = [n for n in ("defaults", "corrected") if n in meters and len(meters[n].times) == WARMUP + STEPS and meters[n].partial is None]
            if full:         # quality: alignkit vs TRL's defaults (or the precision-corrected ones) at equal steps
                q = full[0]
                quality.append(dict(other=q, alignkit=heldout(kind, run.model, run.tokenizer), trl=heldout(kind, trainers[q].model, toks[q]),
                                    base=base_heldout(kind, run.model, run.tokenizer),
                                    tokens=(meters["alignkit"].fed, meters[q].fed)))
            del run, trainers
            matmul_gflops()
    if DUMP:
        Path(f"{DUMP}.{kind}.json").write_text(json.dumps(dict(steps=steps, bare=bare, info=info, peaks=PEAKS, work=work, quality=quality)))
    tps = {n: statistics.median(k / t for t, k in v) if v else float("nan") for n, v in steps.items()}
    step_s = {n: statistics.median(t for t, _ in v) if v else float("nan") for n, v in steps.items()}
    prec, _ = machine.precision()
    trl_prec = "bf16 autocast" + ("" if prec == "bf16" else ", emulated here")
    r = pair_ratio(steps["alignkit"], steps["defaults"], partial["defaults"])
    extra = ""
    if kind == "dpo" and r is not None and not r[5]:
        rb = pair_ratio(bare["alignkit"], bare["defaults"])
        extra = (f"; without charging alignkit's reference precompute {rb[0]:.2f} (IQR {rb[1]:.2f}–{rb[2]:.2f}), "
                 f"the reference forward of a batch took {statistics.median(info['alignkit']['ref_step']):.2f} s in lock-step, "
                 f"the precompute in the constructor {statistics.median(info['alignkit']['precompute']):.2f} s per batch")
    print(_ratio_line(f"runners/{kind}_tokens_per_s_vs_trl_defaults", r, ">= 1.5",
                      f"; alignkit {tps['alignkit']:.0f} tok/s, {step_s['alignkit']:.2f} s/step in {prec}; TRL defaults "
                      f"{tps['defaults']:.0f} tok/s, {step_s['defaults']:.2f} s/step in {trl_prec}{extra}"), flush=True)
    if "corrected" in ns:
        r = pair_ratio(steps["alignkit"], steps["corrected"], partial["corrected"])
        print(_ratio_line(f"runners/{kind}_tokens_per_s_vs_trl_defaults_precision_corrected", r, ">= 1.3",
                          f"; TRL defaults with bf16=False {tps['corrected']:.0f} tok/s, {step_s['corrected']:.2f} s/step"), flush=True)
    else:
        print(_ratio_line(f"runners/{kind}_tokens_per_s_vs_trl_defaults_precision_corrected", r, ">= 1.3",
                          "; bf16 is native here, so TRL's defaults already train in this machine's precision: the line above"), flush=True)
    r = pair_ratio(steps["alignkit"], steps["equal"], partial["equal"])
    print(_ratio_line(f"runners/{kind}_tokens_per_s_vs_trl_equal", r, ">= 0.97",
                      f"; TRL at alignkit's settings {tps['equal']:.0f} tok/s"), flush=True)
    peak = max(PEAKS[prec])
    def frac(n):
        fs = [w / t for w, (t, _) in zip(work[n], steps[n])]
        return statistics.median(fs) / (peak * 1e9) if fs else float("nan")
    tok_step = statistics.median(k for _, k in steps["alignkit"])
    import torch
    m, _ = _model("auto")
    at_shapes = max(shape_gflops(m, int(tok_step), torch.bfloat16 if prec == "bf16" else torch.float32) for _ in range(2)); del m
    print(f"runners/{kind}_fraction_of_{prec}_matmul_peak: {frac('alignkit'):.3f} (goal >= 0.60; the work of each step (LoRA on a frozen "
          f"base: 4·N_body + 6·N_lora per token, 4·V·d per labelled position, attention{', plus the reference forward' if kind == 'dpo' else ''}; "
          f"see the docstring) ÷ its time ÷ {peak:.0f} GFLOP/s; N_body={terms['body']/1e6:.1f}M, N_lora={terms['adapter']/1e6:.2f}M, "
          f"V·d={terms['head']/1e6:.1f}M; TRL defaults {frac('defaults'):.3f}; {tok_step:.0f} tokens/step, padding "
          f"{statistics.median(info['alignkit']['pad']):.0%} of positions)", flush=True)
    print(f"runners/{kind}_fraction_of_{prec}_matmul_at_model_shapes: {frac('alignkit') * peak / at_shapes:.3f} (goal: context; the same work ÷ "
          f"time ÷ {at_shapes:.0f} GFLOP/s, what this model's own products reach here at {tok_step:.0f} rows, measured in the run "
          f"(shape_gflops): the part of the gap to the 2048² peak that no trainer can close at this model's width)", flush=True)
    if quality:
        a = statistics.mean(x["alignkit"] for x in quality); b = statistics.mean(x["trl"] for x in quality)
        base = statistics.mean(x["base"] for x in quality); q = quality[0]["other"]
        ok = a <= b + QUALITY_TOL * base
        print(f"runners/{kind}_heldout_loss_vs_trl: {a - b:+.4f} (goal <= +{QUALITY_TOL * base:.4f} = {QUALITY_TOL} × the base loss; "
              f"{'holds' if ok else 'FAILS'}; alignkit {a:.4f}, TRL {'defaults' if q == 'defaults' else 'defaults with bf16=False'} {b:.4f}, "
              f"base model {base:.4f}; tokens trained: alignkit {quality[0]['tokens'][0]}, TRL {quality[0]['tokens'][1]}, "
              f"{WARMUP + STEPS} steps each; {'SFT completion NLL on datasets/sft/test.jsonl' if kind == 'sft' else 'DPO loss, beta 0.1, on datasets/preference/test.jsonl'})", flush=True)
    else:
        print(f"runners/{kind}_heldout_loss_vs_trl: not measured (goal <= +{QUALITY_TOL} × the base loss; no TRL-defaults run finished its "
              f"{WARMUP + STEPS} steps within its budget of {BUDGET:.0f} s)", flush=True)

def main():
    import torch
    _patch_precompute()
    matmul_gflops()
    m, _ = _model("auto")
    terms = work_terms(m); del m
    for kind in ("sft", "dpo"):
        if ONLY and ONLY != kind: continue
        bench(kind, terms)
    prec, why = machine.precision()
    fp32, bf16 = max(PEAKS["fp32"]), max(PEAKS["bf16"])
    def sizes(k): return "/".join(f"{n}²" for n in sorted(SIZES[k]))
    print(f"matmul/bf16_gflops: {bf16:.0f} (goal: context; {sizes('bf16')} torch.matmul, {torch.get_num_threads()} threads, best of "
          f"{len(PEAKS['bf16'])}×5 spread over the run; each time's best: {', '.join(f'{x:.0f}' for x in PEAKS['bf16'])})", flush=True)
    print(f"matmul/fp32_gflops: {fp32:.0f} (goal: context; {sizes('fp32')} torch.matmul, {torch.get_num_threads()} threads; each time's best: "
          f"{', '.join(f'{x:.0f}' for x in PEAKS['fp32'])})", flush=True)
    print(f"matmul/bf16_vs_fp32: {bf16 / fp32:.2f} (goal: context; alignkit trains in {prec} here: {why})", flush=True)

if __name__ == "__main__": main()
