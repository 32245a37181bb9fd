"""Dashboard benchmarks, measured side by side in this one run:

- dashboard/train_time_ratio: the same 300-step tiny-Llama training (transformers Trainer + RunLogCallback, one
  log record per step) with a live Dashboard following its log from a background thread ÷ without one. Runs
  alternate (A B, B A, …) so drift on a shared machine hits both; the ratio is of the medians. The dashboard is
  headless here (no browser attached), so it pays for reading, downsampling and building widget state, not for
  the browser drawing it. Torch runs one intra-op thread (BENCH_TORCH_THREADS to change): with two, on a
  2-core machine that other jobs share, OpenMP's spinning barriers turn a 3 s run into anything up to 2 minutes
  and the ratio into noise; a tiny model trains as fast on one. dashboard/watcher_cpu_share (CPU seconds of the
  watcher thread per second of training) is printed as the load-independent view of the same cost.
- dashboard/redraw_100k_s: one redraw of a dashboard whose log holds 100,000 steps of GRPO-style metrics (six
  panels, all changed), after new points arrived; median of 5. Reading those 100,000 records from disk and the
  first draw (which creates the figures) are printed for context."""
import math, os, statistics, tempfile, time
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ALIGNKIT_QUIET", "1")

STEPS = 300
PAIRS = int(os.environ.get("BENCH_DASHBOARD_PAIRS", "5"))
THREADS = int(os.environ.get("BENCH_TORCH_THREADS", "1"))

def train_once(run_dir, with_dashboard):
    "Seconds that `trainer.train()` takes for STEPS steps, with or without a Dashboard watching the run's log."
    import torch
    from alignkit.models import load_model
    from alignkit.tracking import RunLogCallback
    from alignkit.dashboard import Dashboard
    from transformers import Trainer, TrainingArguments, default_data_collator
    from transformers.trainer_callback import PrinterCallback
    model, tok = load_model("tiny-llama", quant="fp32", seed=0)
    n = len(tok)
    data = [{"input_ids": (torch.arange(16) + i) % n, "labels": (torch.arange(16) + i) % n} for i in range(256)]
    args = TrainingArguments(output_dir=str(run_dir), max_steps=STEPS, per_device_train_batch_size=8, learning_rate=3e-3,
                             logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, seed=0)
    cb = RunLogCallback(run_dir)
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=default_data_collator, callbacks=[cb])
    trainer.remove_callback(PrinterCallback)
    dash = Dashboard(cb.log, on_stop=cb.request_stop).watch() if with_dashboard else None
    t0 = time.perf_counter()
    trainer.train()
    dt = time.perf_counter() - t0
    if dash is None: return dt, 0.0
    cpu = dash.watch_cpu_s
    dash.close()
    assert dash.state.step == STEPS and dash.redraws > 1, (dash.state, dash.redraws)
    return dt, cpu

def train_ratio(root):
    import torch
    torch.set_num_threads(THREADS)
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()
    train_once(root/"warmup", True)                   # first load builds the tiny tokenizer; imports warm up
    times, cpu = {False: [], True: []}, []
    for i in range(PAIRS):
        for mode in ((False, True) if i % 2 == 0 else (True, False)):
            dt, c = train_once(root/f"run{i}-{int(mode)}", mode)
            times[mode].append(dt)
            if mode: cpu.append(c / dt)
    without, with_ = statistics.median(times[False]), statistics.median(times[True])
    print(f"dashboard/train_time_ratio: {with_/without:.2f} (goal <= 1.03; {STEPS} steps: median {with_:.2f} s with a "
          f"live dashboard vs {without:.2f} s without, {PAIRS} runs each, {THREADS} torch thread(s))", flush=True)
    print(f"dashboard/watcher_cpu_share: {statistics.median(cpu):.3f} (context: CPU seconds of the watcher thread per second "
          f"of training; load-independent)", flush=True)

def redraw_100k(root):
    import numpy as np
    from alignkit.tracking import RunLog
    from alignkit.dashboard import Dashboard, DashboardState
    rng = np.random.default_rng(0)
    def values(s):
        return {"loss": 2*math.exp(-s/30_000) + 0.1*rng.random(), "learning_rate": 1e-5*(1 - s/200_000), "grad_norm": rng.random(),
                "reward": s/1e5, "reward_std": 0.2, "rewards/accuracy/mean": s/1e5, "rewards/accuracy/std": 0.1,
                "kl": s/1e6, "entropy": 1 + rng.random(), "completions/mean_length": 40 + 10*rng.random(),
                "completions/clipped_ratio": 0.1*rng.random()}
    log = RunLog(root/"big")
    log.log_event("start", step=0, total_steps=200_000)
    for s in range(1, 100_001): log.log_metrics(s, values(s))
    import plotly.graph_objects as go; go.FigureWidget        # imports are not part of drawing
    state = DashboardState(root/"big")
    t0 = time.perf_counter(); state.update(); t_read = time.perf_counter() - t0
    t0 = time.perf_counter(); dash = Dashboard(state); t_first = time.perf_counter() - t0
    assert len(dash.figures) == 6 and max(len(t.y) for f in dash.figures.values() for t in f.data) <= 2000
    redraws = []
    for s in range(100_001, 100_006):
        log.log_metrics(s, values(s))
        state.update()
        t0 = time.perf_counter(); assert dash.redraw(force=True); redraws.append(time.perf_counter() - t0)
    print(f"dashboard/redraw_100k_s: {statistics.median(redraws):.3f} (goal < 1 s; 6 panels, 100k steps; reading the "
          f"100k records {t_read:.2f} s, first draw {t_first:.2f} s)", flush=True)

def main():
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as d:
        redraw_100k(Path(d))
        train_ratio(Path(d))

if __name__ == "__main__": main()
