"""alignkit.judges: position swapping cancels a judge's slot preference, unparsed answers are counted (never guessed),
batched log-probability judging equals one prompt at a time, judge_reward's cache, and bad rows named before any work."""
import pytest
import alignkit as ak
from alignkit.core import ConfigError

PAIRS = [dict(prompt=f"What is {i} + {i}?", chosen=str(2 * i), rejected=str(2 * i + 1)) for i in range(8)]

@pytest.fixture(scope="module")
def tiny():
    return ak.load_model("tiny-llama", seed=0, quant="fp32")

def test_swap_cancels_a_judge_that_always_says_a():
    asked = []
    def always_a(texts): asked.extend(texts); return ["A"] * len(texts)
    j = ak.judge(always_a, PAIRS)
    assert len(asked) == 2 * len(PAIRS)                       # every pair in both orders
    assert j.win_rate == 0.5 and all(r["winner"] == "tie" and r["p_a"] == 0.5 for r in j.rows)
    assert j.position_bias == 0.5                             # first slot always chosen: +0.5 over none (0)
    assert ak.judge(always_a, PAIRS, swap=False).win_rate == 1.0   # without the swap the bias is the result
    w = ak.win_rate(["x"] * 3, ["y"] * 3, ["p1", "p2", "p3"], judge=always_a)
    assert (w.rate, w.ties, w.lo, w.hi) == (0.5, 3, 0.5, 0.5)

def test_unparseable_output_is_counted_not_guessed():
    answers = {0: "I am not sure.", 1: "A or B, both fine", 2: "Answer: B"}
    def judge_fn(texts):
        return [answers.get(int(t.split("What is ")[1].split(" ")[0]), "A") for t in texts]
    j = ak.judge(judge_fn, PAIRS)
    assert j.unparsed == 2
    for r in j.rows[:2]: assert r["parsed"] is False and r["p_a"] is None and r["winner"] is None
    assert j.agreement.n == len(PAIRS) - 2
    pj = ak.judge(lambda ts: ["no score", "7", "0"], [dict(prompt="q", response=x) for x in "abc"])
    assert [r["score"] for r in pj.rows] == [None, 7, None] and pj.unparsed == 2

def test_batched_logprob_equals_one_at_a_time(tiny):
    model, tok = tiny
    pairs = PAIRS + [dict(prompt="Name the capital of France, and say why it became the capital.", a="Paris", b="Lyon, since it is big.")]
    batched = ak.judge(model, pairs, batch_size=8)
    single = ak.judge(model, pairs, batch_size=1)
    assert batched.unparsed == 0 and tok.padding_side == "right"
    for x, y in zip(batched.rows, single.rows):
        assert abs(x["p_a"] - y["p_a"]) < 1e-4 and abs(x["p_a_first"] - y["p_a_first"]) < 1e-4
    assert len({round(r["p_a_first"], 6) for r in batched.rows}) > 1   # the probabilities do depend on the text

def test_judge_reward_caches(tiny):
    model, _ = tiny
    passes = []
    h = model.register_forward_hook(lambda *a: passes.append(1))
    try:
        jr = ak.judge_reward(model, batch_size=4)
        assert jr.__name__ == "judge_reward"
        cs = [[{"role": "assistant", "content": "4"}], "five", "4", "four"]
        first = jr(cs, prompts=["2+2?"] * 4)
        n = len(passes)
        assert n > 0 and jr.calls == 3 and jr.hits == 1
        assert jr(cs, prompts=["2+2?"] * 4) == first
        assert len(passes) == n and jr.calls == 3 and jr.hits == 5   # no new forward pass
        assert all(isinstance(v, float) and 1 <= v <= 10 for v in first)
    finally: h.remove()

@pytest.mark.parametrize("rows,match", [
    ([dict(prompt="q", a="x", b="y"), dict(prompt="q", a="x")], "row 1 has no 'b'"),
    ([dict(prompt="q", chosen="x", rejected="y"), dict(prompt=5, chosen="x", rejected="y")], "row 1, field 'prompt'"),
    ([dict(prompt="q", response="x"), "not a row"], "row 1 is a str"),
    ([dict(prompt="q", a="x", b="y", label="c")], "row 0, field 'label'"),
])
def test_bad_rows_raise_config_error_naming_the_row(rows, match):
    called = []
    with pytest.raises(ConfigError, match=match): ak.judge(lambda ts: called.append(ts) or ["A"] * len(ts), rows)
    assert not called                                          # raised before the judge ran

def test_template_needs_its_placeholders():
    with pytest.raises(ConfigError, match="second"): ak.judge(lambda ts: ["A"] * len(ts), PAIRS, template="{prompt} {first}")

def test_judge_reward_drives_a_grpo_run(tiny, tmp_path):
    "Direct RLAIF: the judge's score is GRPO's reward, logged under its name, and each completion is judged once per text."
    model, _ = tiny
    judge_model, _ = ak.load_model("tiny-llama", seed=1, quant="fp32")        # a separate judge: the policy trains, the judge does not
    jr = ak.judge_reward(judge_model, batch_size=8)
    prompts = [{"prompt": [{"role": "user", "content": f"Say a number near {i}."}]} for i in range(8)]
    run = ak.grpo(model, prompts, rewards=[jr], lora=0, output_dir=tmp_path/"g", background=False, max_steps=2,
                  max_completion_length=6, save_steps=1000, disable_tqdm=True)
    assert run.status == "finished"
    m = run.metrics
    col = [c for c in m.columns if "judge_reward" in c and "std" not in c]
    assert col and m[col[0]].dropna().between(1, 9).all(), list(m.columns)
    assert jr.calls == len(jr.cache) > 0                                 # every judged text once, however often it was scored
