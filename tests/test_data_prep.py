"""The data-engineering steps of `alignkit.data_prep` on the bundled datasets: MinHash dedup finds planted near-duplicates
(recall ≥ 0.95 among those at word-bigram Jaccard ≥ 0.7, the default threshold) and merges no two distinct bundled rows;
`mix` counts are exact to one row and deterministic per seed; every filter and dedup partitions its input (kept + removed
== input, also as a property test); bad settings raise a ConfigError that names them; Self-Instruct's ROUGE-L filter
rejects a near-copy of a seed, and a real (tiny, random) model runs the whole generation loop."""
import os, random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from alignkit.core import ConfigError
from alignkit.data import load_data
from alignkit import data_prep as dp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = lambda d, split="train": os.path.join(ROOT, "datasets", d, f"{split}.jsonl")
THRESHOLD = 0.7     # the stated Jaccard threshold (dedup's default), word bigrams

@pytest.fixture(scope="module")
def sft():
    return load_data(DATA("sft"), kind="sft")

def _edit(text, rng, vocab):
    "One small word edit: substitute, insert or delete a word, or a one-letter typo."
    w = text.split()
    i, op = rng.randrange(len(w)), rng.choice("sidt")
    if op == "s": w[i] = rng.choice(vocab)
    elif op == "i": w.insert(i, rng.choice(vocab))
    elif op == "d" and len(w) > 3: del w[i]
    else:
        c = list(w[i]); j = rng.randrange(len(c)); c[j] = rng.choice("abcdefghijklmnopqrstuvwxyz"); w[i] = "".join(c)
    return " ".join(w)

def test_dedup_finds_planted_near_duplicates(sft):
    rows, rng = sft.to_list(), random.Random(0)
    vocab = sorted({w for r in rows for w in r["messages"][0]["content"].split()})
    planted = []
    for k in rng.sample(range(len(rows)), 100):
        r = rows[k]
        user = {**r["messages"][0], "content": _edit(r["messages"][0]["content"], rng, vocab)}
        planted.append((k, {**r, "messages": [user, *r["messages"][1:]]}))
    data = load_data(rows + [p for _, p in planted], kind="sft")
    rep = dp.dedup(data)
    assert len(rep.kept) + len(rep.removed) == len(data)
    sh = lambda r: dp.shingles(dp.row_text(r, "sft"))
    near = [(len(rows) + j, k) for j, (k, p) in enumerate(planted) if dp.jaccard(sh(rows[k]), sh(p)) >= THRESHOLD]
    assert len(near) >= 60, f"only {len(near)} of 100 planted edits are at Jaccard >= {THRESHOLD}: the test would prove little"
    removed = {r.index: r for r in rep.removed}
    found = [i for i, k in near if i in removed]
    assert len(found) / len(near) >= 0.95, f"recall {len(found)}/{len(near)}"
    assert sum(removed[i].of == k for i, k in near if i in removed) >= 0.9 * len(near)       # mostly merged with their own original
    assert all(r.index >= len(rows) for r in rep.removed), "an original bundled row was removed"
    assert all(r.value >= THRESHOLD for r in rep.removed)          # every merge is confirmed by its exact Jaccard index

@pytest.mark.parametrize("name,kind,fields", [("sft", "sft", None), ("preference", "preference", None), ("unpaired", "unpaired", None),
                                              ("prompts", "prompt", ("prompt", "answer"))])
@pytest.mark.parametrize("split", ["train", "test"])
def test_no_false_merges_among_distinct_bundled_rows(name, kind, fields, split):
    data = load_data(DATA(name, split), kind=kind)
    texts = [dp.normalize_text(dp.row_text(r, kind, fields)) for r in data]
    assert len(set(texts)) == len(texts)                          # the bundled rows are distinct
    rep = dp.dedup(data, fields=fields)
    assert rep.removed == [] and len(rep.kept) == len(data)

def test_dedup_is_deterministic_and_exact_dedup_normalises(sft):
    rows = sft.to_list()[:20]
    copy = {**rows[3], "messages": [{**rows[3]["messages"][0], "content": "  " + rows[3]["messages"][0]["content"].upper() + "!!"}, rows[3]["messages"][1]]}
    data = load_data(rows + [copy], kind="sft")
    a, b = dp.dedup(data, near=False), dp.dedup(data)
    assert [(r.index, r.rule, r.of) for r in a.removed] == [(20, "exact", 3)] and a.clusters == {3: [20]}
    assert b.removed == dp.dedup(data).removed

def test_mix_ratios_exact_and_deterministic(sft):
    arith = {"addition", "subtraction", "compare", "count", "units"}
    d1 = load_data([r for r in sft if r["task"] in arith], kind="sft")
    d2 = load_data([r for r in sft if r["task"] not in arith], kind="sft")
    for n, ratio in [(10, 0.8), (33, 0.8), (57, 0.7), (89, 0.25), (101, 0.5), (None, 0.8), (None, 0.1)]:
        m = dp.mix({"domain": d1, "general": d2}, {"domain": ratio, "general": 1 - ratio}, n=n, seed=0)
        c = Counter(m.dataset["source"])
        total = len(m)
        assert n is None or total == n
        assert abs(c["domain"] - ratio * total) <= 1 and abs(c["general"] - (1 - ratio) * total) <= 1 and c["domain"] + c["general"] == total
        src = {"domain": d1, "general": d2}
        assert all(r["messages"] == src[r["source"]][r["source_index"]]["messages"] for r in m)            # provenance is right
        pairs = list(zip(m.dataset["source"], m.dataset["source_index"]))
        assert len(set(pairs)) == len(pairs)                      # without replacement
        again = dp.mix({"domain": d1, "general": d2}, {"domain": ratio, "general": 1 - ratio}, n=n, seed=0)
        assert list(zip(again.dataset["source"], again.dataset["source_index"])) == pairs
        other = dp.mix({"domain": d1, "general": d2}, {"domain": ratio, "general": 1 - ratio}, n=n, seed=1)
        assert list(zip(other.dataset["source"], other.dataset["source_index"])) != pairs

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from("abcde"), st.integers(0, 10), min_size=1), st.integers(1, 500))
def test_mix_counts_sum_exactly_and_stay_within_one_row(weights, n):
    total = sum(weights.values())
    if total == 0: return
    ratios = {k: v / total for k, v in weights.items()}
    c = dp.mix_counts(ratios, n)
    assert sum(c.values()) == n and all(abs(c[k] - n * r) < 1 for k, r in ratios.items())

WORDS = st.sampled_from(["the", "cat", "sat", "on", "mat", "as", "an", "AI", "4", "\x00", "é", "Paris", "!!"])
TEXT = st.lists(WORDS, min_size=1, max_size=30).map(" ".join)

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=25), st.integers(0, 20), st.floats(0, 1), st.floats(0, 1))
def test_every_filter_partitions_its_input(pairs, min_words, rep, alpha):
    rows = [{"prompt": p, "completion": c} for p, c in pairs]
    data = load_data(rows, kind="sft")
    rules = [dp.length_rule(low=min_words), dp.repetition_rule(high=rep), dp.char_rule("alpha", low=alpha), dp.char_rule("nonprintable", high=0),
             dp.blocklist_rule(["as an AI"])]
    reports = [dp.quality_filter(data, rules), *(dp.quality_filter(data, r) for r in rules), dp.dedup(data),
               dp.dedup(data, threshold=0.5, unit="char", ngram=3)]
    reports.append(reports[0].with_threshold("words", low=min_words // 2))
    for r in reports:
        idx = sorted([*r.kept_index, *(x.index for x in r.removed)])
        assert idx == list(range(len(data))) and len(r.kept) == len(r.kept_index)
        assert [row for row in r.kept] == [rows[i] for i in r.kept_index]
    for x in reports[0].removed:                                   # each removal names a rule the row really fails
        rule = next(q for q in rules if q.name == x.rule)
        assert not rule.keeps([reports[0].values[x.rule][x.index]])[0]

@pytest.mark.parametrize("call,name", [
    (lambda d: dp.length_rule(low=1, unit="lines"), "unit='lines'"),
    (lambda d: dp.repetition_rule(n=0), "n=0"),
    (lambda d: dp.char_rule("letters"), "'letters'"),
    (lambda d: dp.length_rule(low=5, high=1), "low=5 is above high=1"),
    (lambda d: dp.length_rule(), "has no threshold"),
    (lambda d: dp.blocklist_rule([]), "blocklist_rule(words=[])"),
    (lambda d: dp.quality_filter(d, [dp.length_rule(low=1), dp.length_rule(low=2)]), "two rules are named 'words'"),
    (lambda d: dp.quality_filter(d, dp.length_rule(low=1), fields=("answer",)), "no column 'answer'"),
    (lambda d: dp.dedup(d, threshold=1.5), "threshold=1.5"),
    (lambda d: dp.dedup(d, num_perm=4), "num_perm=4"),
    (lambda d: dp.dedup(d, unit="token"), "unit='token'"),
    (lambda d: dp.mix({"a": d, "b": d}, {"a": 0.5, "c": 0.5}), "no ratio for source 'b'"),
    (lambda d: dp.mix({"a": d, "b": d}, {"a": 0.5, "b": 0.6}), "sum to 1.1"),
    (lambda d: dp.mix({"a": d, "b": d}, {"a": 0.5, "b": 0.5}, n=0), "n=0"),
    (lambda d: dp.mix({"a": d, "b": load_data(DATA("preference"))}, {"a": 0.5, "b": 0.5}), "source 'b' is preference data"),
    (lambda d: dp.mix({"a": d, "b": d}, {"a": 0.5, "b": 0.5}, n=1000), "source 'a' has 180 rows"),
    (lambda d: dp.mix({"a": d, "b": load_data([{k: v for k, v in r.items() if k != "task"} for r in d])}, {"a": 0.5, "b": 0.5}), "source 'b' has columns"),
    (lambda d: dp.self_instruct(d, n=0), "n=0"),
    (lambda d: dp.self_instruct(d[:1]), "at least 2 seed tasks"),
    (lambda d: dp.quality_filter(load_data(DATA("prompts"), kind="prompt"), dp.reward_rule(lambda p, c: [0.0] * len(p), low=0)), "prompt-only data has none"),
])
def test_bad_settings_raise_config_errors_naming_them(sft, call, name):
    with pytest.raises(ConfigError, match=None) as e: call(sft)
    assert name in str(e.value), str(e.value)

def test_rouge_filter_rejects_a_near_copy_of_a_seed(sft):
    seeds = [r["messages"][0]["content"] for r in sft[:10]]
    near_copy = seeds[4].replace("?", "? Please.")
    res = dp.rouge_novelty([near_copy, "Translate 'good morning' into French.", "Translate 'good morning' into French please."], seeds)
    (ok0, f0, j0), (ok1, f1, _), (ok2, f2, j2) = res
    assert not ok0 and j0 == 4 and f0 >= 0.7
    assert ok1 and f1 < 0.7
    assert not ok2 and j2 == len(seeds)                            # the second translation copies the first, which joined the pool

def test_self_instruct_runs_a_real_model():
    from alignkit.models import load_model
    model, tok = load_model("tiny-llama", quant="fp32", seed=0)
    seeds = load_data(DATA("sft"), kind="sft")[:6]
    rep = dp.self_instruct(seeds, model, tok, n=2, max_new_tokens=10, batch=2, max_rounds=2, seed=0)
    again = dp.self_instruct(seeds, model, tok, n=2, max_new_tokens=10, batch=2, max_rounds=2, seed=0)
    assert rep.rounds == 2 and len(rep.rejected) + (len(rep.kept) if rep.kept else 0) == 4
    assert [r["instruction"] for r in rep.rejected] == [r["instruction"] for r in again.rejected]      # seeded: repeatable
    assert all(r["reason"] in ("unparsed", "too_similar") and r["si_round"] in (1, 2) for r in rep.rejected)
    assert "<script" not in rep._repr_html_().replace("&lt;script", "")

def test_sft_trains_on_a_mixture_with_provenance_columns(sft, tmp_path):
    "TRL's SFTTrainer takes the extra `source` / `source_index` (and `task`) columns: it tokenizes the fields it knows, the collator reads only tokens."
    from alignkit.models import load_model
    from alignkit.preference import sft as run_sft
    arith = {"addition", "subtraction"}
    m = dp.mix({"domain": load_data([r for r in sft if r["task"] in arith], kind="sft"),
                "general": load_data([r for r in sft if r["task"] not in arith], kind="sft")}, {"domain": 0.8, "general": 0.2}, n=20)
    model, _ = load_model("tiny-llama", quant="fp32", lora=0, seed=0)
    run = run_sft(model, m, output_dir=tmp_path/"r", background=False, max_steps=2, per_device_train_batch_size=4)
    assert run.status == "finished" and {"source", "source_index"} <= set(m.columns)
