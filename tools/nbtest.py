"""Run the notebooks' tests as `nbdev-test` does, each notebook in a fresh worker process, and report time and peak memory.

    python tools/nbtest.py [--flags slow] [--n-workers 2] [--cell-timeout S] [--max-rss-gb 6] [notebooks…]

It calls nbdev's own `test_nb` for each notebook (so directives, skip flags, `cell_timeout` and the shell are
nbdev's), with three differences that `make test` needs:
- one process per notebook (`max_tasks_per_child=1`), so memory one notebook leaves behind (models, caches) is not
  carried into the next, and each notebook's peak resident memory is its own;
- after each notebook, `alignkit.core.stop_all_jobs()`: a cell that timed out in the middle of training cannot be
  interrupted by execnb (it cancels the cell's asyncio task, which blocked code never sees), so without this the
  training kept running behind every later notebook; a run asked to stop ends at its next step;
- the slowest notebooks start first (LONGEST_FIRST, measured; then the count of `#| slow` cells, then size), so two
  workers finish together instead of one waiting on the longest notebook at the end.
It prints one line per notebook (seconds, peak GB) and fails if any notebook fails or its peak exceeds --max-rss-gb.
"""
import argparse, json, os, resource, sys, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path


# Measured with slow cells, one thread per notebook, 2026-12-01: fp32 (no native bf16, simulated) / bf16 seconds.
# Only the order matters; a notebook not listed goes after these.
LONGEST_FIRST = ("31_preference", "32_online", "36_feedback", "20_lora", "22_peft", "33_ppo", "21_planner", "54_rl_comparison", "04_data_prep", "45_moe_surgery",
                 "53_rl_sb3", "25_judges", "35_rollouts", "01_models")   # 697/392, 328/277, 300/222, 162/160, 87/–, –/85, 80/–, 71/–, –/71, 69–119/–, 54/54


def _slow_cells(nb: Path) -> int:
    cells = json.loads(nb.read_text()).get("cells", [])
    return sum(c.get("cell_type") == "code" and "#| slow" in "".join(c.get("source", "")) for c in cells)


def _one(fn: str, skip_flags, force_flags, basepath: str, cell_timeout):
    "Worker: test one notebook, stop whatever it left training, return (ok, seconds, peak RSS in GB)."
    from nbdev.test import test_nb
    t0 = time.monotonic()
    try: ok, _ = test_nb(fn, skip_flags=skip_flags, force_flags=force_flags, basepath=basepath, cell_timeout=cell_timeout)
    finally:
        core = sys.modules.get("alignkit.core")
        left = core.stop_all_jobs(timeout=120) if core is not None else []
        if left: sys.__stderr__.write(f"{Path(fn).name}: stopped {len(left)} job(s) still training after the notebook\n")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20       # Linux: KiB
    return ok, time.monotonic() - t0, peak_gb


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="*", help="notebooks to test (default: every notebook in nbs_path)")
    p.add_argument("--flags", default="", help="space-separated test flags to run that are normally skipped")
    p.add_argument("--n-workers", type=int, default=2)
    p.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell (default: the cell_timeout setting)")
    p.add_argument("--max-rss-gb", type=float, default=float(os.environ.get("ALIGNKIT_TEST_MAX_RSS_GB", 6)))
    a = p.parse_args(argv)
    from nbdev.config import get_config
    cfg = get_config()
    skip = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags or [])
    force = a.flags.split()
    timeout = a.cell_timeout if a.cell_timeout is not None else int(cfg.get("cell_timeout", 600) or 0) or None
    nbs = [Path(n).resolve() for n in a.notebooks] or sorted(
        n.resolve() for n in Path(cfg.nbs_path).glob("*.ipynb") if not n.name.startswith(("_", ".")))
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)} if "slow" in force else {}
    nbs.sort(key=lambda n: (rank.get(n.stem, len(rank)), -_slow_cells(n) if "slow" in force else 0, -n.stat().st_size))
    print(f"testing {len(nbs)} notebooks, {a.n_workers} at a time, cell timeout {timeout} s", flush=True)
    t0, results = time.monotonic(), {}
    os.chdir(cfg.nbs_path)
    with ProcessPoolExecutor(a.n_workers, mp_context=get_context("spawn"), max_tasks_per_child=1) as ex:
        futs = {ex.submit(_one, str(n), skip, force, str(cfg.config_path), timeout): n for n in nbs}
        for f in as_completed(futs):
            n = futs[f]
            try: results[n] = f.result()
            except Exception as e: results[n] = (False, float("nan"), float("nan")); print(f"{n.name}: worker died: {e!r}")
            ok, s, gb = results[n]
            print(f"{'ok  ' if ok else 'FAIL'} {n.name}: {s:.0f} s, peak {gb:.2f} GB", flush=True)
    failed = [n.name for n, (ok, _, _) in results.items() if not ok]
    heavy = [f"{n.name} ({gb:.2f} GB)" for n, (_, _, gb) in results.items() if gb > a.max_rss_gb]
    print(f"notebooks: {time.monotonic() - t0:.0f} s in all; slowest first:")
    for n, (ok, s, gb) in sorted(results.items(), key=lambda kv: -kv[1][1]): print(f"  {n.name}: {s:.0f} s, peak {gb:.2f} GB")
    if heavy: print(f"over the {a.max_rss_gb:g} GB peak per notebook: {', '.join(heavy)}", file=sys.stderr)
    if failed: print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or heavy else 0


if __name__ == "__main__":
    sys.exit(main())
