"""Data lab and data prep benchmarks (one thread), measured in this one run:

- data/inspect_build_ms_per_row: `inspect_tokens` on 1,000 SFT rows (the bundled rows cycled) with SmolLM2's tokenizer,
  max_length=64 — TRL's tokenization, the masks, the report. data/inspect_render_ms_per_row: `TokenReport.html(i)` for
  every one of those rows (the view the row slider redraws). Median of 3 each.
- data/dedup_exact_rows_per_s and data/dedup_minhash_rows_per_s: `dedup` on 100,000 short rows (bundled prompts with
  seeded word edits, so about half have a near twin), exact normalised-hash only vs MinHash LSH only (128 permutations,
  word bigrams, threshold 0.7), side by side on the same `Data`; data/minhash_vs_exact is their ratio. Loading the rows
  (`load_data`) is printed for context."""
import os, random, statistics, time
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ALIGNKIT_QUIET", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
N_INSPECT, N_DEDUP = 1000, 100_000
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def timed(f, n=3):
    ts, out = [], None
    for _ in range(n):
        t0 = time.perf_counter(); out = f(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out

def inspector():
    from transformers import AutoTokenizer
    from alignkit.data import load_data
    from alignkit.data_lab import inspect_tokens
    from alignkit.models import resolve
    tok = AutoTokenizer.from_pretrained(resolve("smollm2"))
    base = load_data(os.path.join(ROOT, "datasets", "sft", "train.jsonl")).to_list()
    data = load_data([base[i % len(base)] for i in range(N_INSPECT)], kind="sft")
    t, rep = timed(lambda: inspect_tokens(data, tok, max_length=64))
    print(f"data/inspect_build_ms_per_row: {1000 * t / N_INSPECT:.2f} (goal < 3 ms/row at one thread; {N_INSPECT} rows in {t:.2f} s)")
    t, _ = timed(lambda: [rep.html(i) for i in range(len(rep))])
    print(f"data/inspect_render_ms_per_row: {1000 * t / N_INSPECT:.2f} (goal < 2 ms/row, so a slider move redraws in well under 0.2 s; {N_INSPECT} rows in {t:.2f} s)")

def short_rows(n):
    import json
    rng, texts = random.Random(0), []
    for name in ("sft", "preference", "unpaired", "prompts"):
        for line in open(os.path.join(ROOT, "datasets", name, "train.jsonl")):
            r = json.loads(line)
            texts.append(r["messages"][0]["content"] if "messages" in r else r["prompt"][0]["content"])
    vocab = sorted({w for t in texts for w in t.split()})
    rows = []
    for i in range(n):
        w = rng.choice(texts).split()
        for _ in range(rng.choice((1, 3, 6))): w[rng.randrange(len(w))] = rng.choice(vocab)
        rows.append({"prompt": " ".join(w), "completion": str(i % 97)})
    return rows

def dedup_speed():
    from alignkit.data import load_data
    from alignkit.data_prep import dedup
    rows = short_rows(N_DEDUP)
    t0 = time.perf_counter(); data = load_data(rows, kind="sft"); t_load = time.perf_counter() - t0
    t_exact, ex = timed(lambda: dedup(data, near=False), 1)
    t_near, nr = timed(lambda: dedup(data, exact=False), 1)
    print(f"data/dedup_exact_rows_per_s: {N_DEDUP / t_exact:,.0f} (goal ≥ 25,000 rows/s at one thread; {len(ex.removed):,} exact duplicates)")
    print(f"data/dedup_minhash_rows_per_s: {N_DEDUP / t_near:,.0f} (goal ≥ 1,500 rows/s at one thread, datasketch's in-memory LSH; {len(nr.removed):,} near duplicates "
          f"in {len(nr.clusters):,} clusters, {t_near:.1f} s)")
    print(f"data/minhash_vs_exact: {t_near / t_exact:.1f}x the exact hash's time (context: MinHash buys near-duplicates for this; "
          f"load_data of the {N_DEDUP:,} rows took {t_load:.1f} s)")

if __name__ == "__main__":
    inspector()
    dedup_speed()
