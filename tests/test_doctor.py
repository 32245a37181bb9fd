"""The run doctor (alignkit.doctor): every rule fires exactly once on a synthetic log made to show it and not on a near
miss; a looser threshold makes the near miss fire; once per episode; feeding in chunks finds what feeding at once does;
diagnoses written to the log are not written again when the run is reopened (by `diagnose` or by a dashboard state)."""
import math
import numpy as np
import pytest

from alignkit.doctor import RULES, Diagnoses, Doctor, DoctorError, diagnose, spearman
from alignkit.tracking import RunLog


def recs(n, start=1, **curves):
    "n metric records, one per step from `start`; each curve a function of the step (None: not logged at that step)."
    out = []
    for s in range(start, start + n):
        vals = {k.replace("__", "/"): f(s) for k, f in curves.items()}
        vals = {k: v for k, v in vals.items() if v is not None}
        if vals: out.append({"type": "metric", "time": 1000.0 + s, "step": s, "values": vals})
    return out

def start(total): return [{"type": "event", "time": 999.0, "step": 0, "event": "start", "message": "", "data": {"total_steps": total}}]
def config(**c): return [{"type": "config", "time": 998.0, "config": c}]
def every(k, f): return lambda s: f(s) if s % k == 0 else None
def noisy(seed=0, scale=0.01):
    rng = np.random.default_rng(seed)
    return lambda: 1 + scale*rng.standard_normal()

n1, n2 = noisy(1), noisy(2)

# rule -> (method, log that fires it once, near miss, settings that make the near miss fire)
CASES = {
    "no_reward_spread": ("grpo", recs(60, frac_reward_zero_std=lambda s: 0.95 if 20 <= s < 40 else 0.3),
                         recs(60, frac_reward_zero_std=lambda s: 0.95 if s in (20, 21, 30, 31) else 0.3), {"patience": 2}),
    "entropy_collapse": ("grpo", recs(60, entropy=lambda s: 1.5 if s < 30 else 0.2),
                         recs(60, entropy=lambda s: 1.5 if s < 30 else 0.35), 0.25),
    "length_pinned": ("grpo", recs(60, completions__clipped_ratio=lambda s: 0.95 if 10 <= s < 20 else 0.1),
                      recs(60, completions__clipped_ratio=lambda s: 0.85 if 10 <= s < 20 else 0.1), 0.8),
    "clip_ratio_high": ("grpo", recs(60, clip_ratio__region_mean=lambda s: 0.3 if 10 <= s < 20 else 0.05),
                        recs(60, clip_ratio__region_mean=lambda s: 0.18 if 10 <= s < 20 else 0.05), 0.15),
    "kl_spike": ("grpo", recs(80, kl=lambda s: 0.5 if s == 40 else 0.02*n1()),
                 recs(80, kl=lambda s: 0.15 if s == 40 else 0.02*n2()), 5.0),
    "kl_drift": ("grpo", recs(120, kl=lambda s: 0.02 + max(0, s - 50)*0.01),
                 recs(120, kl=lambda s: 0.02 + max(0, s - 50)*0.0005), {"threshold": 1.2, "floor": 0.005}),
    "likelihood_displacement": ("dpo", recs(60, logps__chosen=lambda s: -50 - 0.3*s, logps__rejected=lambda s: -52 - 0.6*s,
                                            rewards__margins=lambda s: 0.02*s),
                                recs(60, logps__chosen=lambda s: -50 - 0.08*s, logps__rejected=lambda s: -52 - 0.6*s,
                                     rewards__margins=lambda s: 0.05*s), 0.5),
    "reward_accuracy_stuck": ("dpo", recs(60, rewards__accuracies=lambda s: 0.5 + 0.02*(-1)**s),
                              recs(60, rewards__accuracies=lambda s: 0.6 + 0.02*(-1)**s), 0.15),
    "overfitting": ("sft", recs(150, loss=lambda s: 2*math.exp(-s/40), eval_loss=every(10, lambda s: 1.2 + ((s - 60)/80)**2)),
                    recs(150, loss=lambda s: 2*math.exp(-s/40), eval_loss=every(10, lambda s: 1.2 + 0.01*((s - 60)/80)**2)), 0.001),
    "grad_norm_spike": ("sft", recs(100, grad_norm=lambda s: 40.0 if s == 50 else 1.0 + 0.05*math.sin(s)),
                        recs(100, grad_norm=lambda s: 8.0 if s == 50 else 1.0 + 0.05*math.sin(s)), 5.0),
    "loss_plateau": ("sft", recs(250, loss=lambda s: 0.8 + (2*math.exp(-s/20) if s < 100 else 0.001*math.sin(s))),
                     recs(250, loss=lambda s: 2*math.exp(-s/200)), 0.3),
    "warmup_never_ends": ("sft", start(100) + recs(100, learning_rate=lambda s: 1e-5*s/100),
                          start(100) + recs(100, learning_rate=lambda s: 1e-5*min(s/45, 1.0)), 0.4),
    "heldout_reward_falls": ("grpo", recs(120, reward=lambda s: s/120, heldout__reward=every(10, lambda s: 0.6 - abs(s - 40)/200)),
                             recs(120, reward=lambda s: s/120, heldout__reward=every(10, lambda s: 0.6 - abs(s - 40)/2000)), 0.02),
    "reward_length_correlation": ("grpo", recs(120, reward=lambda s: s/120, completions__mean_length=lambda s: 40 + s/2),
                                  recs(120, reward=lambda s: s/120, completions__mean_length=lambda s: 40 + s/2 + 30*math.sin(s)),
                                  -1.0),
    "reward_dominates": ("grpo", recs(30, reward=lambda s: 1.05, rewards__a__mean=lambda s: 1.0, rewards__b__mean=lambda s: 0.05),
                         recs(30, reward=lambda s: 1.2, rewards__a__mean=lambda s: 1.0, rewards__b__mean=lambda s: 0.2), 0.8),
}

def test_every_rule_has_a_case():
    assert set(CASES) == set(RULES)

@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fires_once_and_not_on_the_near_miss(rule):
    method, fire, miss, _ = CASES[rule]
    found = diagnose(fire, method=method)
    assert found.rules == [rule], found
    assert diagnose(miss, method=method).rules == [], diagnose(miss, method=method)

@pytest.mark.parametrize("rule", sorted(CASES))
def test_threshold_is_settable(rule):
    method, _, miss, loose = CASES[rule]
    assert diagnose(miss, method=method, **{rule: loose}).rules.count(rule) >= 1
    assert diagnose(CASES[rule][1], method=method, **{rule: False}).rules.count(rule) == 0

@pytest.mark.parametrize("rule", sorted(CASES))
def test_chunked_feeding_finds_the_same(rule):
    method, fire, *_ = CASES[rule]
    doc = Doctor(method=method)
    for i in range(0, len(fire), 7): doc.feed(fire[i:i + 7])
    assert [(d.key, d.end) for d in doc.diagnoses.values()] == [(d.key, d.end) for d in diagnose(fire, method=method)]

def test_once_per_episode_and_episode_bounds():
    zs = lambda s: 0.95 if 20 <= s < 60 or 100 <= s < 110 else 0.3
    found = diagnose(recs(130, frac_reward_zero_std=zs), method="grpo")
    assert [(d.start, d.step, d.end) for d in found] == [(20, 22, 59), (100, 102, 109)]

def test_method_filter_and_unknown_method():
    _, fire, *_ = CASES["likelihood_displacement"]
    assert diagnose(fire, method="grpo").rules == []
    assert diagnose(fire).rules == ["likelihood_displacement"]          # unknown method: every rule looks

def test_settings_errors():
    with pytest.raises(Exception, match="Did you mean 'kl_spike'"): diagnose([], kl_spik=3)
    with pytest.raises(DoctorError, match="pass a number"): diagnose([], kl_spike="x")
    with pytest.raises(DoctorError, match="whole number"): diagnose([], kl_spike={"window": 0})
    with pytest.raises(DoctorError, match="Run, a RunLog"): diagnose(42)

def test_length_pinned_by_mean_length_uses_the_config():
    r = config(max_completion_length=64) + recs(30, completions__mean_length=lambda s: 64.0 if s > 10 else 30.0)
    d = diagnose(r, method="grpo")
    assert d.rules == ["length_pinned"] and d[0].fixes[0] == {"max_completion_length": 128}
    assert diagnose(r[1:], method="grpo").rules == []                  # without max_completion_length it cannot tell

def test_fixes_use_the_run_config():
    r = config(learning_rate=1e-4, max_grad_norm=1.0) + CASES["grad_norm_spike"][1]
    assert diagnose(r, method="sft")[0].fixes == [{"max_grad_norm": 0.5}, {"learning_rate": 5e-05}]
    d = diagnose(config(reward_weights=[1.0, 1.0]) + CASES["reward_dominates"][1], method="grpo")[0]
    assert d.evidence["function"] == "a" and d.fixes[0]["reward_weights"] == pytest.approx([0.525, 10.5])
    assert diagnose(config(reward_weights=[0.05, 1.0]) + CASES["reward_dominates"][1], method="grpo").rules == []

def test_spearman_matches_scipy():
    from scipy.stats import spearmanr
    g = np.random.default_rng(0)
    for _ in range(20):
        x, y = g.integers(0, 6, 25).astype(float), g.standard_normal(25)
        assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)

def test_table_rows_and_html_escaped():
    found = diagnose(CASES["kl_spike"][1], method="grpo")
    assert isinstance(found, Diagnoses) and found.rows[0]["rule"] == "kl_spike" and found.rows[0]["start"] == 40
    assert list(found.table.columns) == ["rule", "title", "start", "end", "step", "evidence", "fixes"]
    evil = [{"type": "event", "time": 1.0, "step": 3, "event": "diagnosis", "message": "",
             "data": {"rule": "<script>x</script>", "start": 1, "end": 3, "evidence": {"<img>": "<b>"}, "fixes": [{"a": "<i>"}]}}]
    h = diagnose(evil)._repr_html_()
    assert "<script>" not in h and "<img>" not in h and "&lt;script&gt;" in h

def _write(log, records):
    for r in records:
        if r["type"] == "metric": log.log_metrics(r["step"], r["values"])
        elif r["type"] == "event": log.log_event(r["event"], step=r["step"], **r["data"])
        elif r["type"] == "config": log.log_config(r["config"])

def _logged(path): return [r for r in RunLog.read(path) if r.get("event") == "diagnosis"]

def test_reopened_run_shows_the_same_diagnoses_and_does_not_log_them_twice(tmp_path):
    _, fire, *_ = CASES["kl_spike"]
    log = RunLog(tmp_path/"run"); _write(log, fire)
    assert diagnose(tmp_path/"run", method="grpo").rules == ["kl_spike"] and _logged(tmp_path/"run") == []   # a directory: read only
    first = diagnose(log, method="grpo")
    assert len(_logged(tmp_path/"run")) == 1
    again = diagnose(RunLog(tmp_path/"run"), method="grpo")
    assert [d.key for d in again] == [d.key for d in first] and len(_logged(tmp_path/"run")) == 1
    ev = _logged(tmp_path/"run")[0]
    assert ev["data"]["rule"] == "kl_spike" and ev["data"]["start"] == 40 and ev["data"]["fixes"] and ev["step"] == 40

def test_dashboard_state_logs_a_diagnosis_once_even_across_batches(tmp_path, monkeypatch):
    import alignkit.dashboard.state as S
    _, fire, *_ = CASES["no_reward_spread"]
    log = RunLog(tmp_path/"run"); _write(log, fire)
    st = S.DashboardState(log); st.update()
    assert [d.rule for d in st.diagnoses] == ["no_reward_spread"] and len(_logged(tmp_path/"run")) == 1
    st.update(); assert len(st.diagnoses) == 1
    monkeypatch.setattr(S, "_BATCH_BYTES", 300)          # many small batches: the logged event comes in a later one
    again = S.DashboardState(RunLog(tmp_path/"run")); again.update()
    assert [d.key for d in again.diagnoses] == [d.key for d in st.diagnoses] and len(_logged(tmp_path/"run")) == 1
    _write(log, recs(30, start=61, frac_reward_zero_std=lambda s: 0.99))   # a new episode while it follows the run
    again.update()
    assert [d.start for d in again.diagnoses] == [20, 61] and len(_logged(tmp_path/"run")) == 2
    assert S.DashboardState(tmp_path/"run", diagnoses=False).diagnoses == []

def test_a_resumed_run_does_not_diagnose_the_replayed_steps_again(tmp_path):
    _, fire, *_ = CASES["kl_spike"]
    resume = [{"type": "event", "time": 2000.0, "step": 30, "event": "resume", "message": "", "data": {}}]
    found = diagnose(fire + resume + recs(50, start=31, kl=lambda s: 0.5 if s == 40 else 0.02), method="grpo")
    assert [d.key for d in found] == ["kl_spike@40"]

def test_dashboard_view_lists_diagnoses(tmp_path):
    from alignkit.dashboard import Dashboard, DashboardState
    st = DashboardState(); st.feed(CASES["likelihood_displacement"][1])
    dash = Dashboard(st)
    assert "likelihood displacement" in dash.diagnosis.value and "loss_type=[&#x27;sigmoid&#x27;, &#x27;sft&#x27;]" in dash.diagnosis.value
    assert dash.diagnosis in dash.box.children


@pytest.mark.slow
def test_real_dpo_with_a_high_learning_rate_fires_displacement(tmp_path):
    """A tiny random Llama trained by DPO at a very high learning rate on pairs that differ in one token: for a stretch the
    chosen log-prob falls with the rejected one while the margin grows, and the doctor says so (fp32, seeded)."""
    import alignkit as ak
    model, tok = ak.load_model("tiny-llama", quant="fp32", lora=0, seed=0)
    pairs = [{"prompt": f"Q{i}:", "chosen": f" a b c {i % 7}", "rejected": f" a b c {(i + 3) % 7}"} for i in range(16)]
    run = ak.dpo(model, pairs, output_dir=tmp_path/"dpo", background=False, max_steps=40, learning_rate=1e-2,
                 per_device_train_batch_size=8, save_strategy="no", bf16=False)
    found = run.diagnose()
    assert "likelihood_displacement" in found.rules, (found, run.metrics[["logps/chosen", "logps/rejected", "rewards/margins"]])
    logged = [r for r in RunLog.read(tmp_path/"dpo") if r.get("event") == "diagnosis"]
    assert len(logged) == len(found) and run.diagnose().rules == found.rules and len(
        [r for r in RunLog.read(tmp_path/"dpo") if r.get("event") == "diagnosis"]) == len(found)
