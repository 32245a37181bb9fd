"""MoE inspector benchmark, measured side by side in this one run:

- moe/inspect_vs_forward: `alignkit.moe.inspect(model, texts)` ÷ a plain forward pass over the same texts (tokenise
  with the same padding and batch size, then `model(**batch)` under `torch.no_grad()`), both at one torch thread.
  The model is a small random Mixtral (4 layers, width 512, 8 experts, top-2, the tiny tokenizer), big enough that
  a forward pass costs what it costs in real use relative to the inspector's bookkeeping (router hooks, softmax,
  top-k counts, entropy, per-token routing kept for views). Runs alternate (A B, B A, …) so drift on a shared
  machine hits both; the ratio is of the medians. The same ratio on the 2-layer width-64 `tiny-moe`, where the
  bookkeeping is a larger share of almost nothing, is printed for context."""
import os, statistics, time
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ALIGNKIT_QUIET", "1")

PAIRS = int(os.environ.get("BENCH_MOE_PAIRS", "5"))
THREADS = int(os.environ.get("BENCH_TORCH_THREADS", "1"))
BATCH = 16

def small_mixtral(vocab_size):
    import torch
    from transformers import MixtralConfig, AutoModelForCausalLM
    cfg = MixtralConfig(vocab_size=vocab_size, hidden_size=512, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=8,
                        num_key_value_heads=4, num_local_experts=8, num_experts_per_tok=2, max_position_embeddings=1024,
                        output_router_logits=False, pad_token_id=0)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg).eval()

def ratio(model, tok, texts):
    import torch
    from alignkit.moe import inspect
    def forward():
        with torch.no_grad():
            for s in range(0, len(texts), BATCH):
                b = tok(texts[s:s + BATCH], return_tensors="pt", padding=True, truncation=True, max_length=256)
                model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], use_cache=False)
    def insp(): inspect(model, texts, tokenizer=tok, batch_size=BATCH)
    forward(); insp()                                      # warm up
    t = {"forward": [], "inspect": []}
    for i in range(PAIRS):
        for name, f in ((("forward", forward), ("inspect", insp)) if i % 2 == 0 else (("inspect", insp), ("forward", forward))):
            t0 = time.perf_counter(); f(); t[name].append(time.perf_counter() - t0)
    return statistics.median(t["inspect"]) / statistics.median(t["forward"]), statistics.median(t["forward"])

def main():
    import torch
    torch.set_num_threads(THREADS)
    from alignkit.models import load_model
    from alignkit.data import load_data
    from pathlib import Path
    tiny, tok = load_model("tiny-moe", seed=0, quant="fp32")
    rows = load_data(str(Path(__file__).resolve().parents[2]/"datasets"/"sft"/"train.jsonl")).to_list()[:64]
    texts = [tok.apply_chat_template(r["messages"], tokenize=False) for r in rows]
    r_small, fwd = ratio(small_mixtral(len(tok)), tok, texts)
    r_tiny, fwd_tiny = ratio(tiny.eval(), tok, texts)
    print(f"moe/inspect_vs_forward: {r_small:.2f} (goal ≤ 1.10)")
    print(f"# context: forward {fwd*1e3:.0f} ms on 64 texts (4-layer width-512 Mixtral, 8 experts); "
          f"tiny-moe ratio {r_tiny:.2f} (forward {fwd_tiny*1e3:.0f} ms)")

if __name__ == "__main__": main()
