"""`alignkit train RUN.yaml` as a command: in one process (the example run file), with bad run files (which fail
before anything loads), and under `torchrun --nproc_per_node 2 -m alignkit` with two CPU processes (gloo): one run
log written by rank 0 with each step once, the batches sharded across the ranks, identical final weights on both."""
import json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent            # .venv/bin: alignkit, torchrun
TRAIN = ROOT/"datasets"/"preference"/"train.jsonl"

def _env(tmp):
    return {**os.environ, "ALIGNKIT_CACHE": str(tmp/"cache"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "ALIGNKIT_QUIET": "1", "TOKENIZERS_PARALLELISM": "false"}

def _records(run_dir):
    return [json.loads(l) for l in (run_dir/"log.jsonl").read_text().splitlines()]

def _loss_steps(recs):
    return [r["step"] for r in recs if r["type"] == "metric" and "loss" in r["values"]]

def _events(recs, name):
    return [r for r in recs if r["type"] == "event" and r["event"] == name]

@pytest.mark.slow
def test_example_run_file(tmp_path):
    "examples/run.yaml through the console script: finishes, writes the run directory and a log with every step once."
    out = tmp_path/"run"
    res = subprocess.run([str(BIN/"alignkit"), "train", str(ROOT/"examples"/"run.yaml"), "--output-dir", str(out)],
                         env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    assert "Run(dpo, finished, step 10" in res.stdout
    recs = _records(out)
    assert _loss_steps(recs) == list(range(1, 11))
    assert len(_events(recs, "start")) == 1 and len(_events(recs, "stop")) == 1
    assert any(r["type"] == "metric" and "eval_loss" in r["values"] for r in recs)     # eval_data was used
    run = json.loads((out/"run.json").read_text())
    assert run["kind"] == "dpo" and "lora" not in run["model"]                       # lora: null → full fine-tuning
    # The same run file into the same directory again is refused (one log, one run), with status 2.
    again = subprocess.run([str(BIN/"alignkit"), "train", str(ROOT/"examples"/"run.yaml"), "--output-dir", str(out)],
                           env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "already holds a run" in again.stderr

BAD = {
    "eval_dat: x.jsonl\n": "did you mean 'eval_data'",
    "max_steps: 5\n": "go under `args:`",
    "runner: dpoo\n": "Did you mean 'dpo'",
    "lora: 0\n": "positive LoRA rank",
    "data: nowhere.jsonl\n": "does not exist",
    "args: {learning_rte: 1e-4}\n": "did you mean 'learning_rate'",
}

@pytest.mark.parametrize("line", BAD)
def test_bad_run_file_fails_before_loading(tmp_path, line):
    "A bad run file exits with status 2 and one line naming the mistake, having loaded and written nothing."
    base = {"runner": "dpo", "model": "tiny-llama", "lora": None, "data": str(TRAIN), "output_dir": "out"}
    key = line.split(":")[0]
    text = "".join(f"{k}: {json.dumps(v)}\n" for k, v in base.items() if k != key) + line
    (tmp_path/"bad.yaml").write_text(text)
    res = subprocess.run([sys.executable, "-m", "alignkit", "train", "bad.yaml"], env=_env(tmp_path), cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-3000:]
    assert res.stderr.startswith("alignkit train: error:") and BAD[line] in res.stderr, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    assert not (tmp_path/"out").exists()                                  # no run directory
    assert not (tmp_path/"cache"/"models").exists()                       # no model was built or loaded

RUN_2 = """\
runner: dpo
model: tiny-llama
quant: fp32
lora: null
data: {data}
output_dir: run
args:
  max_steps: {steps}
  per_device_train_batch_size: {bs}
  learning_rate: 1e-3
"""

@pytest.mark.slow
def test_torchrun_two_processes(tmp_path):
    "DPO under torchrun ×2 (gloo): exit 0, one log from rank 0 with each step once, sharded batches, identical weights."
    steps, bs, world = 6, 4, 2
    (tmp_path/"run.yaml").write_text(RUN_2.format(data=TRAIN, steps=steps, bs=bs))
    res = subprocess.run([str(BIN/"torchrun"), "--nproc_per_node", str(world), "-m", "alignkit", "train", "run.yaml", "--hash-weights"],
                         env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    run = tmp_path/"run"
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("log.jsonl")] == [Path("run/log.jsonl")]
    recs = _records(run)
    assert _loss_steps(recs) == list(range(1, steps + 1))                 # each step once: only rank 0 wrote
    assert len(_events(recs, "start")) == 1 and len(_events(recs, "stop")) == 1
    assert res.stdout.count("Run(dpo, finished") == 1                     # only rank 0 printed the summary
    # Data parallel, not two copies of one run: each rank trained on its half of the rows, so an epoch took half the
    # steps it takes in one process (250 rows, batches of 4 per rank: 32 steps instead of 63).
    rows = sum(1 for _ in open(TRAIN))
    epoch = [r["values"]["epoch"] for r in recs if r["type"] == "metric" and r["step"] == steps and "loss" in r["values"]][0]
    assert epoch == pytest.approx(steps / -(-rows // (world * bs)), rel=1e-3)
    ckpt = run/f"checkpoint-{steps}"
    assert {p.name for p in ckpt.glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
    # Both ranks ended with the same weights.
    hashes = [(run/f"weights-rank{r}.sha256").read_text().strip() for r in range(world)]
    assert len(hashes[0]) == 64 and hashes[0] == hashes[1]

def test_refused_by_the_runner_leaves_nothing(tmp_path):
    "A run the runner's own checks refuse (β ≤ 0 needs the data and tokenizer) exits with 2 and leaves no run directory."
    (tmp_path/"run.yaml").write_text(f"runner: dpo\nmodel: tiny-llama\nlora: null\ndata: {TRAIN}\noutput_dir: out\nargs: {{beta: 0}}\n")
    res = subprocess.run([sys.executable, "-m", "alignkit", "train", "run.yaml"], env=_env(tmp_path), cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "beta must be > 0" in res.stderr, res.stderr[-3000:]
    assert not (tmp_path/"out").exists()
