"""The rollout explorer on a real tiny GRPO run: group-normalised advantages, the frame, escaping, the widget driven from
Python, first-vs-now, an old log without rollout facts, and Spearman's ρ."""
import html, json, os
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import alignkit as ak
    train = [json.loads(l) for l in open(ROOT/"datasets/prompts/train.jsonl")][:3]
    model, tok = ak.load_model("tiny-llama", seed=0, quant="fp32")
    return ak.grpo(model, train, eval_data=str(ROOT/"datasets/prompts/test.jsonl"), held_out_every=2,
                   rewards=[ak.char_fraction("aeiou"), ak.length_penalty(8)], lora=0, output_dir=tmp_path_factory.mktemp("g")/"g",
                   background=False, max_steps=6, learning_rate=1e-2, max_completion_length=8, save_steps=1000, disable_tqdm=True)

def test_advantages_sum_to_zero_per_group_and_frame_columns(run):
    from alignkit.rollouts import Rollouts
    ro = run.rollouts()
    assert isinstance(ro, Rollouts)
    f = ro.frame
    assert list(f.columns) == ["step", "group", "index", "prompt", "completion", "rewards/char_fraction", "rewards/length",
                               "advantage", "total", "length", "truncated"]
    assert ro.steps == [1, 2, 3, 4, 5, 6] and len(f) == 6 * 2 * 4
    sizes = f.groupby(["step", "group"]).size()
    assert (sizes == 4).all()
    sums = f.groupby(["step", "group"])["advantage"].sum()
    assert (sums.abs() < 1e-4 * 4).all(), sums
    assert f["advantage"].abs().max() > 0.1                       # not all zero: the check above could fail
    # the total is the weighted sum of the rewards (weights 1 here)
    assert ((f["rewards/char_fraction"] + f["rewards/length"] - f["total"]).abs() < 1e-6).all()
    assert ro.prompts(1) == f[f.step == 1].drop_duplicates("group")["prompt"].tolist()

def test_widget_driven_from_python_changes_the_group(run):
    from alignkit.rollouts import rollouts
    ex = rollouts(run.run_dir).widget()
    assert ex.step.value == 6
    first = ex.cards.value
    ex.step.value = 2
    assert "<b>step 2</b>, group 0" in ex.cards.value and ex.cards.value != first
    ex.prompt.value = 1
    p = ex.rollouts.prompts(2)[1]
    assert "<b>step 2</b>, group 1" in ex.cards.value and html.escape(p) in ex.cards.value and html.escape(p) in ex.compare.value
    assert [o[1] for o in ex.prompt.options] == [0, 1]
    assert ex.length_fig.layout.shapes[0].x0 == 2
    assert len(ex.length_fig.data) == 2 and len(ex.share_fig.data) == 2
    assert {"exact_match (held-out)", "reward (train total)"} <= {t.name for t in ex.heldout_fig.data}
    ex.reload.click()                                  # reading the log again keeps the chosen step
    assert ex.step.value == 2

def test_first_vs_now_picks_first_and_latest_step_of_a_prompt(run):
    ro = run.rollouts()
    f = ro.frame
    p = f["prompt"].value_counts().index[0]
    steps = sorted(f.loc[f.prompt == p, "step"].unique())
    assert len(steps) > 1
    h = ro.compare_html(p)
    assert f"first: step {steps[0]}" in h and f"now: step {steps[-1]}" in h
    assert ro.prompt_steps(p)[0][0] == steps[0] and ro.prompt_steps(p)[-1][0] == steps[-1]

def test_every_string_is_escaped(tmp_path):
    from alignkit.tracking import RunLog
    from alignkit.rollouts import rollouts
    log = RunLog(tmp_path)
    evil = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>", "a & b", "</div><b>x"]
    for i, c in enumerate(evil):
        log.log_sample(1, "<i>prompt</i>", c, {"<r>": 0.5 * i}, dict(group=0, index=i, advantage=i - 1.5, total=0.5 * i, length=3, truncated=False))
        log.log_sample(2, "<i>prompt</i>", c, {"<r>": 1.0}, dict(group=0, index=i, advantage=0.0, total=1.0, length=3, truncated=True))
    ro = rollouts(tmp_path)
    ex = ro.widget()
    for h in (ro.group_html(1, 0), ro.group_html(2, 0), ro.compare_html("<i>prompt</i>"), ro._repr_html_(), ex.cards.value, ex.compare.value):
        assert "<script" not in h and "<img" not in h and "<i>prompt" not in h and "<r>" not in h and "</div><b>x" not in h
        assert "&lt;i&gt;prompt&lt;/i&gt;" in h
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in ex.cards.value
    assert "no spread: this group teaches nothing" in ro.group_html(2, 0) and "no spread" not in ro.group_html(1, 0)
    assert ro.group_html(2, 0).count("cut at the limit") == 4

def test_a_log_without_rollout_fields_opens(tmp_path):
    from alignkit.tracking import RunLog
    from alignkit.rollouts import rollouts
    log = RunLog(tmp_path)
    for step in (1, 3):
        for p in ("P1", "P2"):
            for c in ("x", "yy"):
                log.log_sample(step, p, c, {"a": len(c), "b": 1.0})
    ro = rollouts(tmp_path)
    f = ro.frame
    assert ro.steps == [1, 3] and ro.prompts(3) == ["P1", "P2"]
    assert f["group"].tolist() == [0, 0, 1, 1] * 2 and f["index"].tolist() == [0, 1] * 4
    assert f["total"].tolist() == [2.0, 3.0] * 4 and f["advantage"].isna().all() and f["length"].isna().all()
    ex = ro.widget()
    ex.step.value, ex.prompt.value = 1, 1
    assert "P2" in ex.cards.value and "first: step 1" in ex.compare.value and "now: step 3" in ex.compare.value
    assert "P1" in ro._repr_html_()
    ro.length_figure(); ro.share_figure(); ro.heldout_figure()

def test_opening_never_creates_a_folder(tmp_path):
    from alignkit.rollouts import rollouts, RolloutsError
    with pytest.raises(RolloutsError, match="not a run directory"): rollouts(tmp_path/"missing")
    assert not (tmp_path/"missing").exists()

def test_spearman_of_total_equal_to_length_is_one():
    import pandas as pd
    from alignkit.rollouts import length_correlation
    f = pd.DataFrame(dict(step=[1]*5 + [2]*5, length=[1, 4, 2, 9, 7, 3, 8, 5, 6, 10]))
    f["total"] = f["length"].astype(float)
    rho = length_correlation(f)
    assert rho.tolist() == pytest.approx([1.0, 1.0]) and rho.index.tolist() == [1, 2]
    assert length_correlation(f, window=2).tolist() == pytest.approx([1.0, 1.0])
    f["total"] = [1.0] * 10                                   # constant reward: no ρ
    assert length_correlation(f).isna().all()
