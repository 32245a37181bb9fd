"""GRPO benchmark: alignkit's `grpo` vs TRL's `GRPOTrainer` called directly, in optimizer steps per second.

Model: tiny-llama (`load_model("tiny-llama", lora=16)`: 2 layers, width 64, a 1024-token vocabulary, LoRA r=16) by
default, or the embedded SmolLM2-135M with BENCH_GRPO_MODEL=smollm2 (much slower: a step generates 8 completions).
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
its `on_step_end`: generation, rewards, reference forward, loss, backward, optimizer, logging, callbacks. The first
WARMUP steps are left out. A ratio is the median over the measured steps of TRL's step time ÷ alignkit's step time
(= alignkit's steps/s ÷ TRL's); its spread is the interquartile range of the per-step ratios, and the ratio of summed
times is printed beside it.

Knobs (environment): BENCH_GRPO_STEPS (12), BENCH_GRPO_WARMUP (1), BENCH_GRPO_REPS (1), BENCH_GRPO_MODEL (tiny-llama)."""
import contextlib, io, os, statistics, sys, tempfile, threading, time, warnings
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ALIGNKIT_QUIET", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runners import Turnstile, config_diff, _iqr        # the lock-step turnstile of the DPO/SFT bench

STEPS = int(os.environ.get("BENCH_GRPO_STEPS", "12"))
WARMUP = int(os.environ.get("BENCH_GRPO_WARMUP", "1"))
REPS = int(os.environ.get("BENCH_GRPO_REPS", "1"))
MODEL = os.environ.get("BENCH_GRPO_MODEL", "tiny-llama")
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
    "Times each optimizer step of one trainer, from getting its turn to on_step_end."
    def __init__(self, name, gate): self.name, self.gate, self.times = name, gate, []
    def attach(self, trainer):
        from transformers import TrainerCallback
        meter = self
        class Cb(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw): meter.gate.wait(meter.name); meter.t0 = time.perf_counter()
            def on_step_end(self, args, state, control, **kw):
                meter.times.append(time.perf_counter() - meter.t0)
                meter.gate.next(meter.name); meter.gate.wait(meter.name); meter.t0 = time.perf_counter()
            def on_train_end(self, args, state, control, **kw): meter.gate.finish(meter.name)
        trainer.add_callback(Cb())
        return trainer
    def steps(self):
        assert len(self.times) == WARMUP + STEPS, f"{self.name}: expected {WARMUP + STEPS} steps, got {len(self.times)}"
        return self.times[WARMUP:]

def start_alignkit(data, reward, out, meter):
    "alignkit's `grpo` with its defaults, training in its own thread (held by the turnstile); returns the Run."
    import dataclasses, alignkit.online as O
    from alignkit.runners import RUNNERS, get_runner
    model, tok = _model("auto")
    runner = get_runner("grpo")         # the run looks its runner up at start: add the meter to the trainer it builds
    RUNNERS["grpo"] = dataclasses.replace(runner, build=lambda run: meter.attach(runner.build(run)))
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
    return meters, run

def main():
    from alignkit.data import load_data
    from alignkit.rewards import char_fraction
    data, reward = load_data(PROMPTS, kind="prompt"), char_fraction("aeiou")
    steps = {n: [] for n in NAMES}
    with tempfile.TemporaryDirectory() as d:
        for i in range(REPS):
            meters, run = one_rep(data, reward, d, i)
            for n, m in meters.items(): steps[n] += m.steps()
            a = run.trainer.args
    sps = {n: 1 / statistics.median(v) for n, v in steps.items()}
    def ratio(b):
        rs = [tb / ta for ta, tb in zip(steps["alignkit"], steps[b])]
        return statistics.median(rs), *_iqr(rs), sum(steps[b]) / sum(steps["alignkit"])
    r, lo, hi, tot = ratio("equal")
    print(f"runners/grpo_steps_per_s_vs_trl_equal: {r:.2f} (goal >= 0.97; per-step IQR {lo:.2f}–{hi:.2f}, summed times {tot:.2f}; "
          f"alignkit {sps['alignkit']:.2f} steps/s, TRL at alignkit's settings {sps['equal']:.2f} steps/s; {MODEL}, "
          f"{len(steps['alignkit'])} steps × {REPS} rep(s) in lock-step)", flush=True)
    r, lo, hi, tot = ratio("defaults")
    print(f"runners/grpo_steps_per_s_vs_trl_defaults: {r:.2f} (goal >= 1.5; per-step IQR {lo:.2f}–{hi:.2f}, summed times {tot:.2f}; "
          f"TRL defaults {sps['defaults']:.2f} steps/s; alignkit: {a.num_generations} generations × {a.max_completion_length} tokens, "
          f"TRL defaults: 8 × 512)", flush=True)

if __name__ == "__main__": main()
