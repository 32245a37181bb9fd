"""Golden tests: what `ak.inspect_tokens` shows is what TRL's real trainers feed the model — SmolLM2's tokenizer, the
bundled datasets, a trainer built by TRL itself (its `train_dataset` after preparation and its `data_collator`), for every
data kind; and the pre-flight threshold on a dataset with 10 % overlong rows."""
import os
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import alignkit as ak
from alignkit.core import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = lambda kind: os.path.join(ROOT, "datasets", "prompts" if kind == "prompt" else kind, "train.jsonl")
N = 24   # rows compared per kind

@pytest.fixture(scope="module")
def model_tok():
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from alignkit.models import resolve
    path = resolve("smollm2")
    tok = AutoTokenizer.from_pretrained(path)
    return AutoModelForCausalLM.from_pretrained(path), tok

def _rows(kind, n=N):
    return ak.load_data(DATA(kind), kind=kind)[:n]

def _args(cls, tmp_path, **kw):
    return cls(output_dir=str(tmp_path), use_cpu=True, report_to="none", bf16=False, shuffle_dataset=False, **kw) \
        if "shuffle_dataset" in {f.name for f in __import__("dataclasses").fields(cls)} else \
        cls(output_dir=str(tmp_path), use_cpu=True, report_to="none", bf16=False, **kw)

def _unpad(t, m): return [[v for v, k in zip(r, mm) if k] for r, mm in zip(t.tolist(), m.tolist())]

def test_flat_name():
    assert ak.inspect_tokens is ak.data_lab.inspect_tokens and ak.length_profile and ak.preflight

def test_sft_golden(model_tok, tmp_path):
    import datasets, trl
    model, tok = model_tok
    rows = _rows("sft")
    tr = trl.SFTTrainer(model=model, args=_args(trl.SFTConfig, tmp_path, max_length=40), processing_class=tok,
                        train_dataset=datasets.Dataset.from_list(rows))
    rep = ak.inspect_tokens(rows, tok, kind="sft", max_length=40)
    kept = [r for r in rep.rows if not r.dropped]
    assert len(kept) == len(tr.train_dataset) > 0 and any(r.seqs[0].cut for r in kept)
    batch = tr.data_collator([tr.train_dataset[i] for i in range(len(kept))])
    ids, labels = _unpad(batch["input_ids"], batch["attention_mask"]), _unpad(batch["labels"], batch["attention_mask"])
    for r, i, l in zip(kept, ids, labels):
        q = r.seqs[0]; a, b = q.keep
        assert q.ids[a:b] == i
        assert [bool(m) for m in q.trained[a:b]] == [x != -100 for x in l]

def test_dpo_golden(model_tok, tmp_path):
    import datasets, trl
    model, tok = model_tok
    rows = _rows("preference")
    tr = trl.DPOTrainer(model=model, ref_model=None, args=_args(trl.DPOConfig, tmp_path, max_length=52, precompute_ref_log_probs=False),
                        processing_class=tok, train_dataset=datasets.Dataset.from_list(rows))
    rep = ak.inspect_tokens(rows, tok, kind="preference", max_length=52)
    kept = [r for r in rep.rows if not r.dropped]
    n = len(kept); assert n == len(tr.train_dataset) > 0 and any(q.cut for r in kept for q in r.seqs)
    b = tr.data_collator([tr.train_dataset[i] for i in range(n)])
    ids, mask = _unpad(b["input_ids"], b["attention_mask"]), _unpad(b["completion_mask"], b["attention_mask"])
    for j, r in enumerate(kept):
        for k, q in enumerate(r.seqs):
            a, e = q.keep
            assert q.ids[a:e] == ids[k * n + j] and list(q.trained[a:e]) == mask[k * n + j]

def test_kto_golden(model_tok, tmp_path):
    import datasets, trl
    model, tok = model_tok
    rows = _rows("unpaired")
    tr = trl.KTOTrainer(model=model, ref_model=None, args=_args(trl.KTOConfig, tmp_path, max_length=52, per_device_train_batch_size=2),
                        processing_class=tok, train_dataset=datasets.Dataset.from_list(rows))
    rep = ak.inspect_tokens(rows, tok, kind="unpaired", max_length=52)
    kept = [r for r in rep.rows if not r.dropped]
    assert len(kept) == len(tr.train_dataset) > 0
    b = tr.data_collator([tr.train_dataset[i] for i in range(len(kept))])
    ids, mask = _unpad(b["input_ids"], b["attention_mask"]), _unpad(b["completion_mask"], b["attention_mask"])
    for r, i, m in zip(kept, ids, mask):
        q = r.seqs[0]; a, e = q.keep
        assert q.ids[a:e] == i and list(q.trained[a:e]) == m

def test_grpo_prompt_golden(model_tok):
    tok = model_tok[1]
    rows = _rows("prompt")
    rep = ak.inspect_tokens(rows, tok, kind="prompt")
    want = tok.apply_chat_template([r["prompt"] for r in rows], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    assert [r.seqs[0].ids for r in rep.rows] == [list(w) for w in want]
    assert all(not any(r.seqs[0].trained) for r in rep.rows)

def test_preflight_threshold(model_tok):
    tok = model_tok[1]
    rows = _rows("sft", 100)
    for r in rows[:10]: r["messages"][-1]["content"] = "word " * 200       # 10 % overlong rows
    with pytest.raises(ConfigError, match="max_length=128 would truncate"):
        ak.preflight(rows, tok, kind="sft", max_length=128, threshold=0.05)
    lp = ak.preflight(rows, tok, kind="sft", max_length=128, threshold=0.2)
    assert lp.truncated["max_length"] == pytest.approx(0.10)

def test_runner_preflight(model_tok, tmp_path):
    "Every runner: refused before the folder is claimed or a model loads; accepted at a higher threshold, the profile logged."
    rows = _rows("sft", 100)
    for r in rows[:10]: r["messages"][-1]["content"] = "word " * 200       # 10 % overlong rows
    with pytest.raises(ConfigError, match="max_length=128 would truncate 10 of 100 rows"):
        ak.sft("smollm2", rows, max_length=128, output_dir=tmp_path/"refused")
    assert not (tmp_path/"refused").exists()
    with pytest.raises(ConfigError, match="preflight="):
        ak.sft("smollm2", rows, max_length=128, output_dir=tmp_path/"bad", preflight="yes")
    run = ak.sft("smollm2", rows, max_length=128, max_steps=1, output_dir=tmp_path/"ok", background=False, preflight=0.2, disable_tqdm=True)
    assert run.preflight.truncated["max_length"] == pytest.approx(0.10)
    ev = ak.RunLog(tmp_path/"ok").events
    pf = ev[ev.event == "preflight"].data.iloc[0]
    assert pf["truncated"]["max_length"] == pytest.approx(0.10) and pf["limits"] == {"max_length": 128}
    (tmp_path/"mine").mkdir(); (tmp_path/"mine"/"notes.txt").write_text("a user's file")
    with pytest.raises(ConfigError) as e:                   # preflight=False: the next check (the folder's claim) is reached
        ak.sft("smollm2", rows, max_length=128, output_dir=tmp_path/"mine", preflight=False)
    assert "truncate" not in str(e.value) and (tmp_path/"mine"/"notes.txt").read_text() == "a user's file"
