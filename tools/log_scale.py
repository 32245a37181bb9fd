"""How the dashboard's memory and redraw time grow with the length of a run.

    .venv/bin/python tools/log_scale.py [N ...] [--metrics 40] [--dir /tmp/log-scale]

For each N (default 10k, 100k, 1M) it writes a synthetic run log of N steps x `--metrics` metrics with plain file
writes in the RunLog format (no RunLog: a million records would take minutes), then, in a fresh subprocess, opens it
with the dashboard state, redraws every figure and the HTML page, and prints one line: peak RSS
(`resource.getrusage` maxrss), the tracemalloc peak (Python and numpy allocations while reading and the first draw),
the number of points the state keeps, and the times of reading the log and of one redraw (the second one: plotly's
one-time costs excluded). The last line gives the 1M / 100k ratio of each peak: the memory a dashboard needs should
not grow with the steps of its run."""
import argparse, json, math, os, resource, subprocess, sys, time, tracemalloc
from pathlib import Path

BASE = ["loss", "learning_rate", "grad_norm", "reward", "reward_std", "rewards/accuracy/mean", "rewards/accuracy/std",
        "kl", "entropy", "completions/mean_length", "completions/clipped_ratio"]

def names(m):
    return (BASE + [f"custom/metric_{i:02d}" for i in range(m)])[:m]

def write_log(path: Path, n: int, m: int):
    "A GRPO-like log of `n` steps of `m` metrics, written line by line (about 25 bytes a value)."
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = [json.dumps(k) for k in names(m)]
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"type":"config","time":0,"config":{"max_steps":%d}}\n' % n)
        f.write('{"type":"event","time":0,"step":0,"event":"start","message":"","data":{"total_steps":%d}}\n' % n)
        buf = []
        for s in range(1, n + 1):
            w = math.sin(s / 997.0)
            vals = ",".join(f"{k}:{0.5 + 0.3*w + 0.001*j + (s % (j + 7))*1e-4:.6g}" for j, k in enumerate(keys))
            buf.append('{"type":"metric","time":%.3f,"step":%d,"values":{%s}}\n' % (1000 + s*0.1, s, vals))
            if len(buf) >= 5000: f.write("".join(buf)); buf = []
        f.write("".join(buf))

def measure(run_dir: str) -> dict:
    "Open `run_dir` with the dashboard state, draw everything twice; memory and times (run in a fresh process)."
    os.environ.setdefault("ALIGNKIT_QUIET", "1")
    from alignkit.dashboard import DashboardState, panel_specs, state_html
    import plotly.graph_objects as go
    panel_specs(); go.Figure()                         # imports are not part of reading or drawing
    tracemalloc.start()
    t0 = time.perf_counter()
    st = DashboardState(run_dir)
    st.update()
    t_read = time.perf_counter() - t0
    figs = [st.figure(p) for p in st.panels]; page = state_html(st)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t0 = time.perf_counter()
    figs = [st.figure(p) for p in st.panels]; page = state_html(st)
    t_draw = time.perf_counter() - t0
    return dict(steps=st.step, panels=len(figs), page_bytes=len(page), points=sum(len(s) for s in st.series.values()),
                rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, traced_mb=peak / 2**20,
                read_s=t_read, redraw_s=t_draw)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("n", nargs="*", type=int, default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--metrics", type=int, default=40)
    ap.add_argument("--dir", default="/tmp/alignkit-log-scale")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.measure: print(json.dumps(measure(a.measure))); return
    rows = {}
    for n in a.n:
        run = Path(a.dir)/f"run-{n}-{a.metrics}"
        if not (run/".complete").exists():            # a log written to the end before (kept between runs)
            write_log(run/"log.jsonl", n, a.metrics); (run/".complete").touch()
        out = subprocess.run([sys.executable, __file__, "--measure", str(run)], capture_output=True, text=True)
        if out.returncode: print(f"N={n:>9,}: failed (exit {out.returncode}): {out.stderr[-500:]}", flush=True); continue
        r = rows[n] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"N={n:>9,} x {a.metrics} metrics ({(run/'log.jsonl').stat().st_size/2**20:,.0f} MB log): peak RSS {r['rss_mb']:,.0f} MB, "
              f"tracemalloc peak {r['traced_mb']:,.1f} MB, {r['points']:,} points kept, read {r['read_s']:.1f} s, "
              f"redraw {r['redraw_s']:.2f} s ({r['panels']} panels + page)", flush=True)
    if 100_000 in rows and 1_000_000 in rows:
        a_, b_ = rows[100_000], rows[1_000_000]
        print(f"1M / 100k: peak RSS x{b_['rss_mb']/a_['rss_mb']:.2f}, tracemalloc peak x{b_['traced_mb']/a_['traced_mb']:.2f}, "
              f"points kept x{b_['points']/a_['points']:.2f}, redraw x{b_['redraw_s']/a_['redraw_s']:.2f}")

if __name__ == "__main__": main()
