"""Dashboard behaviour a notebook cannot express: following a run that another process writes, and PNG export
through a real headless Chromium (nbs/12_dashboard_state.ipynb and nbs/13_dashboard_views.ipynb hold the lessons on the
state and the widgets)."""
import shutil, struct, subprocess, sys, textwrap, time
from pathlib import Path
import pytest
from alignkit.dashboard import Dashboard, DashboardState, find_chromium, open_run, panel_specs
from alignkit.core import AlignkitError
from alignkit.tracking import RunLog

WRITER = textwrap.dedent("""
    import sys, time
    from alignkit.tracking import RunLog
    log = RunLog(sys.argv[1])
    log.log_config({"max_steps": 40})
    log.log_event("start", step=0, total_steps=40)
    for s in range(1, 41):
        log.log_metrics(s, {"loss": 3.0 / s, "kl": 0.01 * s})
        if s == 30: log.log_metrics(s, {"kl": 9.0})
        time.sleep(0.25)            # 10 s in all: time for the reader to start under load
    log.log_event("stop", step=40, message="finished", reason="finished")
""")

def test_open_run_follows_another_process(tmp_path):
    panel_specs()     # the first dashboard of a process imports the modules that declare panels (PPO's imports torch): not while the writer runs
    run = tmp_path / "live"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(run)])
    try:
        deadline = time.monotonic() + 30
        while not (run / "log.jsonl").exists() and time.monotonic() < deadline: time.sleep(0.05)
        d = open_run(run, interval=0.2)
        assert d.watching and d.stop_button.disabled        # live, but no trainer in this process to stop
        seen = []
        while proc.poll() is None and time.monotonic() < deadline:
            seen.append(d.state.step); time.sleep(0.3)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    d._thread.join(timeout=10)
    assert not d.watching                                   # the watcher ended with the run
    st = d.state
    assert (st.status, st.step, st.total_steps) == ("finished", 40, 40)
    assert len(set(seen)) >= 3 and seen == sorted(seen)     # the step advanced while the other process wrote
    assert list(st.alarms) == ["kl:kl"]                     # read-only: raised in the view ...
    assert not [r for r in RunLog.read(run) if r.get("event") == "alarm"]   # ... never written into someone else's log
    assert d.figures["loss"].data[0].y[-1] == pytest.approx(3.0 / 40)
    assert 'data-step="40"' in d.header.value and "finished" in d.header.value

def test_a_log_opened_alone_groups_its_panels_as_its_run_did(tmp_path):
    "A fresh process that imported no runner, SB3 or MoE module still finds the panels they declare for their metrics."
    log = RunLog(tmp_path / "run")
    log.log_metrics(1, {"loss": 1.0, "objective/scores": 0.5, "policy/entropy": 2.0, "rollout/ep_rew_mean": 10.0, "moe/layer0/entropy": 1.2})
    code = "import sys; from alignkit.dashboard import DashboardState as S; s = S(sys.argv[1]); s.update(); print(*[p.key for p in s.panels])"
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], capture_output=True, text=True, check=True).stdout
    assert set(out.split()) == {"loss", "ppo_objective", "entropy", "episode_reward", "moe"}, out

def _png_size(path):
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])

@pytest.mark.skipif(not shutil.which("chromium") and not Path("/usr/bin/chromium").exists(),
                    reason="PNG export needs Chromium (apt-get install chromium); not installed here")
def test_to_png(tmp_path):
    log = RunLog(tmp_path / "run")
    log.log_event("start", step=0, total_steps=100)
    for s in range(1, 51): log.log_metrics(s, {"loss": 2.0 / s, "learning_rate": 1e-3, "grad_norm": 1.0, "reward": s / 50, "reward_std": 0.1})
    log.log_sample(50, "<b>2+2?</b>", "<script>alert(1)</script>4", {"accuracy": 1.0})
    d = Dashboard(DashboardState(tmp_path / "run"))
    out = d.to_png(tmp_path / "dash.png")
    w, h = _png_size(out)
    assert w == 1200 and h > 500
    assert out.stat().st_size > 30_000                       # drawn curves, not a blank page
    art = Path(__file__).resolve().parents[1] / "test-artifacts"
    art.mkdir(exist_ok=True); shutil.copy(out, art / "dashboard_to_png.png")

def test_png_without_chromium_says_what_to_do(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent"); monkeypatch.delenv("ALIGNKIT_CHROMIUM", raising=False)
    with pytest.raises(AlignkitError, match="apt-get install chromium"): find_chromium()
