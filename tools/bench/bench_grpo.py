"""GRPO benchmark: alignkit's `grpo` vs TRL's `GRPOTrainer` called directly, in optimizer steps per second.

Model: tiny-llama (`load_model("tiny-llama", lora=16)`: 2 layers, width 64, a 1024-token vocabulary, LoRA r=16) with
BENCH_GRPO_MODEL=tiny-llama, else the embedded SmolLM2-135M-Instruct (`load_model("smollm2", lora=16)`), the default.
Prompts: datasets/prompts/train.jsonl. Reward: `char_fraction("aeiou")` (cheap, so the figure is the trainer's).
WARMUP + STEPS optimizer steps, seed 0.

The three configurations:

- alignkit: `alignkit.grpo(model, prompts, rewards=[reward], max_steps=…)` with every other setting alignkit's default
  (variant "grpo": loss_type "grpo", beta 0.04 with the LoRA-disabled base as reference; num_generations 4,
  max_completion_length 64, no gradient checkpointing, bf16 where the CPU runs it natively, batch 8, a log record every
  step, samples to the RunLog), the model in alignkit's precision (`quant="auto"`).
- TRL defaults: `GRPOTrainer(model, reward_funcs=[reward], args=GRPOConfig(output_dir=…, max_steps=…, report_to="none",
  use_cpu=True, seed=0), train_dataset=prompts, processing_class=tok)`, the model in fp32 (what `from_pretrained` gives
  without a dtype). All else TRL 1.16's default: num_generations 8, max_completion_length 512, gradient checkpointing,
  bf16 autocast, batch 8, beta 0, loss_type "dapo". (tiny-llama is random and never samples its end token, so every
  completion runs to max_completion_length: the defaults' 512 tokens against alignkit's 64 is most of the ratio.)
- TRL at equal settings: `trl.GRPOTrainer` (not alignkit's subclass) built from exactly the arguments alignkit's
  runner built (`run.config.args`, plus logging_nan_inf_filter=False, which alignkit's callback sets; checked equal to
  `run.trainer.args` field by field, output_dir aside), the same reward function unwrapped, a model of the same
  precision, without alignkit's wrapper (run directory, RunLog callback, samples, importance-ratio metrics, the reward
  guard). Its ratio is what the wrapper costs.

Method: as tools/bench/bench_runners.py — the three trainers run side by side in lock-step (each in its own thread,
one optimizer step at a time under a turnstile whose order goes through all 6 permutations), so the k-th steps of the
three are measured seconds apart under the same machine load. A step's time runs from the trainer getting its turn to
its `on_step_end`: generation, rewards, reference forward, loss, backward, optimizer, logging, callbacks; its
generation time is the time in TRL's `_generate_single_turn`, and its generated tokens the completion tokens that
returned (up to and including the end token). Bounded by time: each trainer has a wall budget of BUDGET seconds of its
own steps; the step that spends it is its last (its on_step_end sets `control.should_training_stop`, the turnstile
lets the others go on), and a TRL step still running when the budget is spent is stopped inside it and not counted
(bench_runners' `abort_over_budget`: on a CPU where bf16 is emulated one step of TRL's defaults takes far longer). TRL's defaults (8 × 512 tokens, gradient checkpointing) take minutes a step on SmolLM2, so
that side usually does one or two steps. A ratio is over the steps both sides did, leaving out the first WARMUP where
both did more than that (else "incl. warm-up" is printed): the median over those steps of TRL's step time ÷
alignkit's (= alignkit's steps/s ÷ TRL's); generated tokens/s likewise, alignkit's ÷ TRL's. The spread is the
interquartile range of the per-step ratios, the ratio of summed times beside it, and the count of steps it is over.
Greedy check: after training, 8 prompts answered greedily (64 tokens, seed 0) by alignkit's generation path
(inside `alignkit.online.merged_lora`: the adapters merged on fp32 weights, nothing changed on bf16 ones) and by plain
`generate` on the adapted model; the line counts the completions that are token-for-token the same.

Knobs (environment): BENCH_GRPO_MODEL (smollm2; tiny-llama for a quick run), BENCH_GRPO_BUDGET_S (120 s per trainer:
the whole bench ends within ~10 minutes here), BENCH_GRPO_STEPS (12, the most steps a side runs after warm-up),
BENCH_GRPO_WARMUP (1), BENCH_GRPO_REPS (1)."""
import contextlib, io, os, statistics, sys, tempfile, threading, time, warnings
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ALIGNKIT_QUIET", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runners import OverBudget, Turnstile, abort_over_budget, config_diff, _iqr   # the lock-step machinery of the DPO/SFT bench

STEPS = int(os.environ.get("BENCH_GRPO_STEPS", "12"))
WARMUP = int(os.environ.get("BENCH_GRPO_WARMUP", "1"))
REPS = int(os.environ.get("BENCH_GRPO_REPS", "1"))
MODEL = os.environ.get("BENCH_GRPO_MODEL", "smollm2")
BUDGET = float(os.environ.get("BENCH_GRPO_BUDGET_S", "120"))
ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT/"datasets/prompts/train.jsonl"
NAMES = ("alignkit", "defaults", "equal")

def _quiet(): return contextlib.redirect_stdout(io.StringIO())

def _model(quant):
    from alignkit.models import load_model
    with warnings.catch_warnings(), _quiet():
        warnings.simplefilter("ignore")
        return load_model(MODEL, quant=quant, lora=16, seed=0)

class StepMeter:
    "Times each optimizer step of one trainer (turn to on_step_end) and its generation; stops it when its budget is spent."
    def __init__(self, name, gate):
        self.name, self.gate, self.times, self.gen_s, self.gen_tokens = name, gate, [], [], []
        self.budget, self.used, self.running, self.t0 = BUDGET, 0.0, False, 0.0
    def attach(self, trainer, abort=True):
        "Meter `trainer`; with `abort`, a step still running when the budget is spent is stopped inside (`abort_over_budget`)."
        from transformers import TrainerCallback
        meter, generate = self, trainer._generate_single_turn
        def timed(*args, **kwargs):
            t = time.perf_counter()
            out = generate(*args, **kwargs)
            meter.g_s += time.perf_counter() - t; meter.g_tok += sum(len(c) for c in out[0])
            return out
        trainer._generate_single_turn = timed
        if abort: abort_over_budget(trainer.model, meter)
        class Cb(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw): meter.gate.wait(meter.name); meter._start()
            def on_step_end(self, args, state, control, **kw):
                meter.times.append(time.perf_counter() - meter.t0); meter.gen_s.append(meter.g_s); meter.gen_tokens.append(meter.g_tok)
                meter.used += meter.times[-1]
                if meter.used >= meter.budget: control.should_training_stop = True
                meter.gate.next(meter.name); meter.gate.wait(meter.name); meter._start()
            def on_train_end(self, args, state, control, **kw): meter.running = False; meter.gate.finish(meter.name)
        trainer.add_callback(Cb())
        return trainer
    def _start(self): self.t0, self.g_s, self.g_tok, self.running = time.perf_counter(), 0.0, 0, True

def start_alignkit(data, reward, out, meter):
    "alignkit's `grpo` with its defaults, training in its own thread (held by the turnstile); returns the Run."
    import dataclasses, alignkit.online as O
    from alignkit.runners import RUNNERS, get_runner
    model, tok = _model("auto")
    runner = get_runner("grpo")         # the run looks its runner up at start: add the meter to the trainer it builds
    RUNNERS["grpo"] = dataclasses.replace(runner, build=lambda run: meter.attach(runner.build(run), abort=False))
    try:
        with warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore")
            return O.grpo(model, data, rewards=[reward], output_dir=out, background=True, max_steps=WARMUP + STEPS)
    finally: RUNNERS["grpo"] = runner

def start_trl(data, reward, out, meter, args=None, quant="fp32"):
    import trl
    if args is None: args = dict(max_steps=WARMUP + STEPS, report_to="none", use_cpu=True, seed=0)
    model, tok = _model(quant)
    with warnings.catch_warnings(), _quiet():
        warnings.simplefilter("ignore")
        trainer = meter.attach(trl.GRPOTrainer(model=model, reward_funcs=[reward], args=trl.GRPOConfig(output_dir=str(out), **args),
                                               train_dataset=data.dataset, processing_class=tok))
    err = []
    def target():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trainer.train()
        except OverBudget: meter.running = False       # its last step was cut short: only its finished steps count
        except BaseException as e: err.append(e)
        finally: meter.gate.finish(meter.name)
    th = threading.Thread(target=target, name=f"bench-{meter.name}", daemon=True)
    th.err = err
    return trainer, th

def one_rep(data, reward, d, i):
    gate = Turnstile(NAMES)
    meters = {n: StepMeter(n, gate) for n in NAMES}
    with _quiet():
        run = start_alignkit(data, reward, Path(d)/f"alignkit{i}", meters["alignkit"])
        _, t_def = start_trl(data, reward, Path(d)/f"defaults{i}", meters["defaults"])
        eq_args = {**run.config.args, "max_steps": WARMUP + STEPS, "logging_nan_inf_filter": False}
        tr_eq, t_eq = start_trl(data, reward, Path(d)/f"equal{i}", meters["equal"], args=eq_args, quant=run.model.alignkit.quant)
        t_def.start(); t_eq.start()
        gate.open()
        while run._thread.is_alive() or t_def.is_alive() or t_eq.is_alive():
            if not run._thread.is_alive(): gate.finish("alignkit")
            time.sleep(0.2)
    run.wait()
    for t in (t_def, t_eq):
        if t.err: raise t.err[0]
    diff = config_diff(run.trainer.args, tr_eq.args)
    assert not diff, f"TRL at equal settings differs from alignkit's config: {diff}"
    import torch
    fp32 = next(run.model.parameters()).dtype == torch.float32     # merged_lora acts on fp32 weights only
    assert (run.trainer.merged_generations > 0) == fp32, f"merged generations: {run.trainer.merged_generations} on {'fp32' if fp32 else 'bf16'}"
    return meters, run

def greedy_identical(run, data, n=8, max_new_tokens=64):
    "(same, n, merged): greedy completions of `n` prompts by alignkit's generation path (`merged_lora`) and by plain generate."
    import torch
    from alignkit.online import merged_lora
    model, tok = run.model, run.tokenizer
    rows = data.to_list()[:n]
    texts = [tok.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False) for r in rows]
    side, tok.padding_side = tok.padding_side, "left"
    b = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    tok.padding_side = side
    def greedy():
        torch.manual_seed(0)
        with torch.no_grad():
            out = model.generate(**b, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        return out[:, b["input_ids"].shape[1]:].tolist()
    model.eval()
    plain = greedy()
    with merged_lora(model) as merged: fast = greedy()
    return sum(a == c for a, c in zip(plain, fast)), len(rows), merged

def paired(a, b):
    "The step indices both sides did, without the first WARMUP where both did more; and whether warm-up is in."
    n = min(len(a), len(b))
    return (range(WARMUP, n), False) if n > WARMUP else (range(n), True)

def ratios(xs):
    return statistics.median(xs), *_iqr(xs)

def main():
    from alignkit.data import load_data
    from alignkit.rewards import char_fraction
    data, reward = load_data(PROMPTS, kind="prompt"), char_fraction("aeiou")
    steps = {n: [] for n in NAMES}
    gen = {n: [] for n in NAMES}
    with tempfile.TemporaryDirectory() as d:
        for i in range(REPS):
            meters, run = one_rep(data, reward, d, i)
            for n, m in meters.items():      # per rep, paired by step index within the rep
                steps[n].append(m.times); gen[n].append(list(zip(m.gen_s, m.gen_tokens)))
            a = run.trainer.args
            same, total, merged = greedy_identical(run, data)
    def compare(b):
        rs, gs, ta, tb, ga, gb, k, warm = [], [], 0.0, 0.0, [0.0, 0], [0.0, 0], 0, False
        for sa, sb, ea, eb in zip(steps["alignkit"], steps[b], gen["alignkit"], gen[b]):
            idx, w = paired(sa, sb)
            warm |= w; k += len(idx)
            for j in idx:
                rs.append(sb[j] / sa[j]); ta += sa[j]; tb += sb[j]
                (gsa, gta), (gsb, gtb) = ea[j], eb[j]
                if gsa > 0 and gsb > 0 and gta and gtb: gs.append((gta / gsa) / (gtb / gsb))
                ga[0] += gsa; ga[1] += gta; gb[0] += gsb; gb[1] += gtb
        return rs, gs, ta, tb, ga, gb, k, warm
    count = {n: sum(len(t) for t in steps[n]) for n in NAMES}
    for b, label, goal in (("equal", "TRL at alignkit's settings", ">= 1.67, i.e. step time <= 0.6x"), ("defaults", "TRL defaults", ">= 1.5")):
        rs, gs, ta, tb, ga, gb, k, warm = compare(b)
        if not rs:
            print(f"grpo/steps_per_s_vs_trl_{b}: n/a (goal {goal}; no step both sides did)", flush=True); continue
        r, lo, hi = ratios(rs)
        note = f"{k} step(s) both did{' incl. warm-up' if warm else ''}; {REPS} rep(s) in lock-step, budget {BUDGET:.0f} s a side"
        print(f"grpo/steps_per_s_vs_trl_{b}: {r:.2f} (goal {goal}; per-step IQR {lo:.2f}–{hi:.2f}, summed times {tb / ta:.2f}; "
              f"alignkit {k / ta:.3f} steps/s, {label} {k / tb:.3f} steps/s; {note}; steps done: alignkit {count['alignkit']}, "
              f"{b} {count[b]}; {MODEL}, alignkit {a.num_generations} × {a.max_completion_length} tokens)", flush=True)
        if gs:
            g, glo, ghi = ratios(gs)
            ka, kb = ga[1] / ga[0], gb[1] / gb[0]
            print(f"grpo/gen_tokens_per_s_vs_trl_{b}: {g:.2f} (goal > 1; per-step IQR {glo:.2f}–{ghi:.2f}, summed {ka / kb:.2f}; "
                  f"alignkit {ka:.1f} generated tokens/s, {label} {kb:.1f}; generation {ga[0] / ta:.0%} of alignkit's step time, "
                  f"{gb[0] / tb:.0%} of {b}'s; {note})", flush=True)
    dtype = next(run.model.parameters()).dtype
    if merged: print(f"grpo/greedy_completions_identical: {same}/{total} (goal all; alignkit's generation path, adapters merged, vs plain "
                     f"generate, {MODEL} after training, {dtype} weights, 64 tokens)", flush=True)
    else: print(f"grpo/greedy_completions_identical: n/a (goal all; {dtype} weights: alignkit generates without merging here, "
                f"the same path as plain generate, so there is nothing to compare)", flush=True)

if __name__ == "__main__": main()
