"""The dashboard in a real browser: JupyterLab on loopback, a notebook that trains a tiny Llama with
transformers' Trainer and shows a Dashboard, driven by Playwright through Debian's Chromium.

Checks that the plot draws the loss trace, that the header's step count advances while training runs, and that
the Stop button stops the trainer with a `stop` event, a `checkpoint` event and a checkpoint directory on disk.
Screenshots go to test-artifacts/ (gitignored)."""
import json, os, secrets, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run the browser test",
                allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="the python package playwright is not installed")

TRAIN = '''\
import os, threading, torch
from alignkit.models import load_model
from alignkit.tracking import RunLogCallback
from alignkit.dashboard import Dashboard
from transformers import Trainer, TrainingArguments, default_data_collator
from transformers.trainer_callback import PrinterCallback
from transformers.utils import logging as hf_logging
hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()

model, tok = load_model("tiny-llama", quant="fp32", seed=0)
n = len(tok)
data = [{"input_ids": (torch.arange(16) + i) % n, "labels": (torch.arange(16) + i) % n} for i in range(256)]
args = TrainingArguments(output_dir="run", max_steps=100_000, per_device_train_batch_size=8, learning_rate=3e-3,
                         logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, seed=0)
cb = RunLogCallback("run")
trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=default_data_collator, callbacks=[cb])
trainer.remove_callback(PrinterCallback)
worker = threading.Thread(target=trainer.train, daemon=True)
worker.start()
'''
SHOW = '''\
dash = Dashboard(cb.log, on_stop=cb.request_stop, interval=0.5)
dash
'''

def _notebook(path, sources=(TRAIN, SHOW)):
    cells = [{"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None} for src in sources]
    nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    path.write_text(json.dumps(nb))

def _run_all(page, url, token, name):
    "Open notebook `name` in JupyterLab, wait for its kernel, run every cell."
    page.goto(f"{url}/lab/tree/{name}?token={token}")
    page.wait_for_function("""() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel &&
               w.sessionContext.session.kernel.status === 'idle'; }""", timeout=90_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

@pytest.fixture
def lab(tmp_path):
    "A JupyterLab server on 127.0.0.1 (random port, random token), rooted in tmp_path, from this Python's environment."
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / ".cfg"), "JUPYTER_DATA_DIR": str(tmp_path / ".data"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / ".rt"), "IPYTHONDIR": str(tmp_path / ".ipy"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", f"--IdentityProvider.token={token}",
           "--LabApp.extension_manager=readonly", *(["--allow-root"] if os.geteuid() == 0 else []),
           f"--port={port}", "--ServerApp.port_retries=0", "--ip=127.0.0.1", f"--ServerApp.root_dir={tmp_path}",
           "--LabApp.expose_app_in_browser=True", f"--LabApp.workspaces_dir={tmp_path / '.ws'}"]
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2); break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill(); pytest.fail(f"JupyterLab did not start: {(tmp_path / 'lab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield url, token, tmp_path
    os.killpg(proc.pid, signal.SIGTERM)          # the server and the kernels it started
    try: proc.wait(timeout=20)
    except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL)
    log.close()

def _events(run_dir):
    from alignkit.tracking import RunLog
    return [r for r in RunLog.read(run_dir) if r["type"] == "event"]

def test_dashboard_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright
    url, token, root = lab
    _notebook(root / "dash.ipynb")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        try:
            _run_all(page, url, token, "dash.ipynb")

            # the plot draws the loss trace (plotly's graph div carries its data)
            page.wait_for_selector(".ak-dashboard .js-plotly-plot", timeout=120_000)
            page.wait_for_function("""() => Array.from(document.querySelectorAll('.ak-dashboard .js-plotly-plot'))
                .some(g => (g.data || []).some(t => t.name === 'loss' && t.y && t.y.length >= 3))""", timeout=60_000)
            traces = page.evaluate("""() => Array.from(document.querySelectorAll('.ak-dashboard .js-plotly-plot'))
                .map(g => (g.data || []).map(t => t.name))""")
            assert ["loss"] in traces and ["learning_rate", "grad_norm"] in traces, traces
            assert page.locator(".ak-dashboard .legendtext", has_text="loss").count() >= 1
            assert page.evaluate("""() => Array.from(document.querySelectorAll('.ak-dashboard .js-plotly-plot'))
                .some(g => Array.from(g.querySelectorAll('.scatterlayer .js-line')).some(l => (l.getAttribute('d') || '').length > 20))""")

            # the header's step count advances while training runs
            step = lambda: int(page.locator(".ak-dashboard .ak-step").get_attribute("data-step"))
            first = step()
            page.wait_for_function(f"() => +document.querySelector('.ak-dashboard .ak-step').dataset.step > {first + 5}",
                                   timeout=30_000)
            assert step() > first
            assert "running" in page.locator(".ak-dashboard .ak-status").inner_text()
            page.locator(".ak-dashboard").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser_lab_running.png"))
            page.locator(".ak-dashboard").screenshot(path=str(ARTIFACTS / "browser_dashboard_running.png"))

            # Stop: the trainer checkpoints and stops; the log on disk says so
            stop_button = page.locator(".ak-dashboard button.ak-stop")
            assert stop_button.is_enabled()
            stop_button.click()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                kinds = [e["event"] for e in _events(root / "run")]
                if "stop" in kinds and "checkpoint" in kinds: break
                time.sleep(0.5)
            events = _events(root / "run")
            kinds = [e["event"] for e in events]
            assert kinds[0] == "start" and "stop" in kinds and "checkpoint" in kinds, kinds
            stop = next(e for e in events if e["event"] == "stop")
            ckpt = next(e for e in events if e["event"] == "checkpoint")
            assert stop["message"] == "stopped by user" and ckpt["step"] >= stop["step"] > first
            assert (root / ckpt["data"]["path"]).is_dir()          # output_dir="run" is relative to the notebook's folder
            page.wait_for_function("() => document.querySelector('.ak-dashboard .ak-status').textContent === 'stopped'",
                                   timeout=30_000)
            page.locator(".ak-dashboard").screenshot(path=str(ARTIFACTS / "browser_dashboard_stopped.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser_failure.png"))
            raise
        finally:
            browser.close()


RESUME_RUN = '''\
import alignkit as ak
from transformers.utils import logging as hf_logging
hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()
model, tok = ak.load_model("tiny-llama", quant="fp32", seed=0)
# a warm-up longer than the run: the run doctor's "warm-up never ends" fires, and its fix is a shorter warm-up
run = ak.sft(model, SFT, output_dir="resumable", background=False, max_steps=12, save_steps=4, save_total_limit=None, warmup_steps=100,
             learning_rate=1e-3, per_device_train_batch_size=4, disable_tqdm=True)
'''

def test_resume_with_a_fix_in_jupyterlab(lab):
    "A stopped run's dashboard shows a diagnosis; clicking its fix resumes training from a checkpoint with the new setting."
    from playwright.sync_api import sync_playwright
    url, token, root = lab
    sft = str(ROOT / "datasets" / "sft" / "train.jsonl")
    _notebook(root / "resume.ipynb", (f"SFT = {sft!r}\n" + RESUME_RUN, "run.dashboard"))
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 1400})
        try:
            _run_all(page, url, token, "resume.ipynb")
            page.wait_for_selector(".ak-dashboard .ak-diagnosis[data-rule='warmup_never_ends']", timeout=240_000)
            button = page.locator(".ak-dashboard button.ak-resume").first
            button.wait_for(timeout=30_000)
            label = button.inner_text()
            assert "resume from checkpoint-" in label and "warmup_steps=" in label, label
            page.locator(".ak-dashboard").screenshot(path=str(ARTIFACTS / "browser_diagnosis.png"))
            before = {e["step"] for e in _events(root / "resumable") if e["event"] == "stop"}
            button.click()
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                kinds = [e["event"] for e in _events(root / "resumable")]
                if "change" in kinds and kinds[-1] == "stop" and kinds.count("stop") == 2: break
                time.sleep(0.5)
            events = _events(root / "resumable")
            kinds = [e["event"] for e in events]
            change = next(e for e in events if e["event"] == "change")
            resume = next(e for e in events if e["event"] == "resume")
            assert kinds.count("stop") == 2 and kinds.index("change") < kinds.index("resume"), kinds
            at = int(change["data"]["checkpoint"].split("-")[1])
            assert change["data"]["changes"]["warmup_steps"][0] == 100 and change["data"]["changes"]["warmup_steps"][1] < 100
            assert resume["step"] == at < 12 and before == {12}
            from alignkit.runners import RunConfig
            assert RunConfig.load(root / "resumable").args["warmup_steps"] == change["data"]["changes"]["warmup_steps"][1]
            page.wait_for_function("() => (document.querySelector('.ak-dashboard .ak-resume-status') || {}).textContent"
                                   " && document.querySelector('.ak-dashboard .ak-resume-status').textContent.includes('resumed from')",
                                   timeout=30_000)
            page.locator(".ak-dashboard").screenshot(path=str(ARTIFACTS / "browser_resumed.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser_resume_failure.png"))
            raise
        finally:
            browser.close()
