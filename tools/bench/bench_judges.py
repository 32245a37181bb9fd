"""Judge benchmarks, measured side by side in this one run:

- judges/pairs_per_s_batched_vs_single (goal >= 2): pairs judged per second by `ak.judge` (log-probability, both orders
  asked) with batch_size=8 ÷ with batch_size=1, SmolLM2-135M (alignkit's default precision) on the 60 pairs of
  datasets/preference/test.jsonl. Medians of 3 rounds, rounds alternating which is timed first. How far the batched
  p_a is from the one-at-a-time one is printed (fp32: ~1e-6; bf16: rounding of the padded shapes, ~1e-2)."""
import json, os, statistics, time
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ALIGNKIT_QUIET", "1")

ROUNDS = int(os.environ.get("BENCH_JUDGES_ROUNDS", "3"))

def main():
    import alignkit as ak
    model, _ = ak.load_model("smollm2")
    pairs = [json.loads(l) for l in (Path(__file__).resolve().parents[2]/"datasets/preference/test.jsonl").read_text().splitlines() if l.strip()]
    ak.judge(model, pairs[:4], batch_size=4)                     # warm-up
    times, res = {8: [], 1: []}, {}
    for i in range(ROUNDS):
        for b in ((8, 1) if i % 2 == 0 else (1, 8)):
            t = time.perf_counter(); res[b] = ak.judge(model, pairs, batch_size=b); times[b].append(time.perf_counter() - t)
    tb, ts = statistics.median(times[8]), statistics.median(times[1])
    same = sum(x["winner"] == y["winner"] for x, y in zip(res[8].rows, res[1].rows))
    dp = max(abs(x["p_a"] - y["p_a"]) for x, y in zip(res[8].rows, res[1].rows))
    print(f"judges/pairs_per_s_batched_vs_single: {ts / tb:.2f} (goal >= 2; batched {len(pairs) / tb:.1f} pairs/s, one at a time "
          f"{len(pairs) / ts:.1f} pairs/s, {len(pairs)} pairs x 2 orders, {res[8].method}, {next(model.parameters()).dtype}; "
          f"max |p_a batched - single| {dp:.4f}, same winner {same}/{len(pairs)})", flush=True)

if __name__ == "__main__": main()
