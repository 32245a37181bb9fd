"""`make bench`: run every tools/bench/bench_*.py in turn; each prints one line per figure, `name: value (goal …)`.
Ratios are measured side by side in one run, so they hold on any machine; absolute times are printed for context."""
import runpy, sys, time
from pathlib import Path

def main(only=None):
    here = Path(__file__).parent/"bench"
    sys.path.insert(0, str(here))
    import machine                      # which machine every figure below was measured on
    print("## machine", flush=True)
    print("\n".join(machine.lines()), flush=True)
    for f in sorted(here.glob("bench_*.py")):
        if only and not any(o in f.stem for o in only): continue
        print(f"## {f.stem[len('bench_'):]}", flush=True)
        t0 = time.perf_counter()
        runpy.run_path(str(f), run_name="__main__")
        print(f"   ({time.perf_counter()-t0:.0f} s)", flush=True)

if __name__ == "__main__": main(sys.argv[1:])
