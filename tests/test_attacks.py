"""Attacks on a run directory someone handed you, and ordinary mistakes with one: opening, viewing or resuming runs no code
of theirs (pickle canaries, payload modules, ReDoS patterns, network arguments), nothing alignkit did not write is
deleted or overwritten (reused output_dirs, rlhf and the CLI into folders of user files, symlinks), and a SIGKILL
during a write leaves the old file or the new one. Each test asserts that nothing ran, nothing was lost, and that the
error says what to do. (With the cases of attacks_log_html.py — log records, HTML/Markdown injection, the PNG export,
bounded dashboard memory — and attacks_sb3_data.py — agent zips, the model cache, load_data.) Canaries are files a payload would create if it ever ran."""
import json, os, pickle, signal, subprocess, sys, textwrap, threading, time
from pathlib import Path
import pytest
import alignkit as ak
from alignkit.runners import RunConfig, claim_run_dir, default_run_dir, run_id, LOCK, MARKER
# the attacks on the run log and every HTML/Markdown renderer, and on agent zips, the model cache and load_data, live in
# two modules beside this one; importing their tests here runs them as part of this file
from attacks_log_html import *       # noqa: F401,F403
from attacks_sb3_data import *       # noqa: F401,F403

ROOT = Path(__file__).resolve().parents[1]
SFT, PAIRS, PROMPTS = (str(ROOT/f"datasets/{d}/train.jsonl") for d in ("sft", "preference", "prompts"))
TINY = dict(max_steps=2, save_steps=1, per_device_train_batch_size=2, learning_rate=1e-3)


def tree(d: Path) -> dict:
    "Every path under `d` with its size and mtime (symlinks not followed; the lock file aside): equal trees mean nothing was written."
    out = {}
    for p in sorted(Path(d).rglob("*")):
        if p.name == LOCK: continue                  # alignkit's lock file: each attempt to lock writes its pid there
        st = p.lstat()
        out[str(p.relative_to(d))] = (st.st_size, st.st_mtime_ns, p.is_symlink())
    return out


class Canary:
    "A pickle that creates `path` when unpickled (what a hostile checkpoint or agent zip would do, harmlessly)."
    def __init__(self, path): self.path = str(path)
    def __reduce__(self): return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    "A finished two-step PPO run with a checkpoint per step (library rewards: rebuilt from run.json without trust)."
    d = tmp_path_factory.mktemp("ppo")/"run"
    model, _ = ak.load_model("tiny-llama", seed=0, quant="fp32", lora=8)
    ak.ppo(model, PROMPTS, rewards=[ak.length_penalty(8)], output_dir=d, background=False, max_completion_length=8,
           num_mini_batches=2, per_device_train_batch_size=4, max_steps=2, save_steps=1, learning_rate=1e-3)
    return d


def _copy(src: Path, dst: Path) -> Path:
    import shutil
    shutil.copytree(src, dst, symlinks=True)
    (dst/LOCK).unlink(missing_ok=True)
    return dst


# --- code execution from files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["rng_state.pth", "optimizer.pt", "value_head.pt", "scheduler.pt"])
def test_ppo_checkpoint_pickle_canary(ppo_run, tmp_path, name):
    d = _copy(ppo_run, tmp_path/"run")
    import torch
    torch.save({"state": Canary(tmp_path/"canary")}, d/"checkpoint-2"/name)
    run = ak.Run.open(d)
    with pytest.raises(ak.TrustError, match="pickled Python objects"):
        run.resume(background=False)
    assert not (tmp_path/"canary").exists()
    assert not ak.runners.run_dir_busy(d)            # the lock went with the failed start


def test_reward_spec_payload_module_not_imported(ppo_run, tmp_path, monkeypatch):
    "A `payload.py` in the run directory, named by run.json: not imported without trust, and never from inside the run."
    d = _copy(ppo_run, tmp_path/"run")
    (d/"payload.py").write_text(f"open({str(tmp_path/'canary')!r}, 'w')\ndef reward(completions, **k): return [0.0]*len(completions)\n")
    monkeypatch.syspath_prepend(str(tmp_path))       # a notebook's folder is on sys.path: the run dir is a namespace package
    cfg = json.loads((d/"run.json").read_text())
    cfg["rewards"] = [dict(kind="import", name="reward", path="run.payload:reward")]
    (d/"run.json").write_text(json.dumps(cfg))
    with pytest.raises(ak.TrustError, match="trust=True"):
        ak.Run.open(d).resume(background=False)
    with pytest.raises(ak.TrustError, match="inside the run directory"):
        ak.Run.open(d, trust=True).resume(background=False)
    assert not (tmp_path/"canary").exists() and "run.payload" not in sys.modules


def test_redos_pattern_from_run_json_is_bounded():
    "A format_reward pattern from run.json that backtracks catastrophically scores 0 quickly instead of hanging training."
    code = textwrap.dedent("""
        import warnings; warnings.simplefilter("ignore")
        from alignkit.rewards import build_reward
        f = build_reward(dict(kind="library", name="format", factory="format_reward", args=dict(pattern="(a|aa)+$")))
        print(f(completions=["a" * 80 + "!"] * 3))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)   # unbounded: never ends
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "[0.0, 0.0, 0.0]"


def test_reward_model_path_outside_run_refused(tmp_path):
    spec = dict(kind="reward_model", name="rm", model={"name": "tiny-llama"}, path="../elsewhere")
    with pytest.raises(ak.TrustError, match="outside"):
        ak.rewards.build_reward(spec, tmp_path/"run")


def test_network_arguments_need_trust(tmp_path):
    "run.json asking to push to the Hub or report to a service: refused before any model loads, unless trust=True."
    d = tmp_path/"run"; d.mkdir()
    (d/"train.jsonl").write_text('{"text": "hello"}\n')
    RunConfig("sft", {"name": "no-such-model"}, {"push_to_hub": True, "hub_model_id": "evil/exfil", "report_to": "wandb"}, "sft").save(d)
    with pytest.raises(ak.TrustError) as e:
        ak.Run.open(d)
    assert "push_to_hub" in str(e.value) and "report_to" in str(e.value) and "trust=True" in str(e.value)
    with pytest.raises(ak.AlignkitError) as e:       # trusted: it gets as far as the model (which does not exist)
        ak.Run.open(d, trust=True)
    assert not isinstance(e.value, ak.TrustError)


def test_secrets_never_reach_disk(tmp_path):
    d = tmp_path/"run"
    ak.sft("tiny-llama", SFT, output_dir=d, background=False, hub_token="hf_CANARYSECRET", lora=0, **TINY)
    hits = [str(p) for p in d.rglob("*") if p.is_file() and b"hf_CANARYSECRET" in p.read_bytes()]
    assert hits == []


# --- deleting and overwriting what is not ours ----------------------------------------------------------------------

def test_two_runs_into_one_output_dir_sequentially(tmp_path):
    d = tmp_path/"run"
    ak.sft("tiny-llama", SFT, output_dir=d, background=False, lora=0, **TINY)
    (d/"notes.txt").write_text("my notes")
    first, before = run_id(d), tree(d)
    with pytest.raises(ak.ConfigError, match="already holds alignkit run") as e:
        ak.sft("tiny-llama", SFT, output_dir=d, background=False, lora=0, **TINY)
    assert "resume" in str(e.value) and "overwrite=True" in str(e.value)
    assert tree(d) == before                                     # refused: nothing touched
    run = ak.sft("tiny-llama", SFT, output_dir=d, background=False, lora=0, overwrite=True, **TINY)
    assert run_id(d) != first and (d/"notes.txt").read_text() == "my notes"
    steps = [r["step"] for r in ak.RunLog.read(d) if r["type"] == "metric" and "loss" in r["values"]]
    assert steps == [1, 2]                                       # one run's log, not two merged


def test_resume_true_continues_the_run(tmp_path):
    d = tmp_path/"run"
    ak.sft("tiny-llama", SFT, output_dir=d, background=False, lora=0, **TINY)
    run = ak.sft("tiny-llama", SFT, output_dir=d, background=False, lora=0, resume=True, **{**TINY, "max_steps": 3})
    assert run.status == "finished"
    # resume=True continues with the run's own arguments (max_steps 2): nothing more to train, no second start event
    starts = [r["event"] for r in ak.RunLog.read(d) if r["type"] == "event" and r["event"] in ("start", "resume")]
    assert starts == ["start", "resume"]


CONCURRENT = textwrap.dedent("""
    import sys, time, alignkit as ak
    while time.time() < float(sys.argv[2]): time.sleep(0.005)      # start together
    try:
        ak.sft("tiny-llama", sys.argv[3], output_dir=sys.argv[1], background=False, lora=0, max_steps=3, save_steps=1,
               per_device_train_batch_size=2)
        print("TRAINED")
    except ak.ConfigError as e: print("REFUSED", e)
""")

def test_two_runs_into_one_output_dir_concurrently(tmp_path):
    d = tmp_path/"run"
    ak.models.resolve("tiny-llama")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ALIGNKIT_QUIET": "1", "HF_HUB_OFFLINE": "1"}
    go = str(time.time() + 8)
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(d), go, SFT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    verdicts = [o.strip().splitlines()[-1] if o.strip() else e[-1500:] for o, e in outs]
    assert sorted(v.split()[0] for v in verdicts) == ["REFUSED", "TRAINED"], verdicts
    refused = next(v for v in verdicts if v.startswith("REFUSED"))
    assert "another training run" in refused or "already holds" in refused
    recs = ak.RunLog.read(d)
    steps = [r["step"] for r in recs if r["type"] == "metric" and "loss" in r["values"]]
    assert steps == [1, 2, 3] and sum(r.get("event") == "start" for r in recs) == 1


def test_foreign_folder_is_never_emptied(tmp_path):
    (tmp_path/"thesis.tex").write_text("years of work")
    (tmp_path/"train.jsonl").write_text("my own data\n")
    before = tree(tmp_path)
    for kw in ({}, {"overwrite": True}):
        with pytest.raises(ak.ConfigError, match="alignkit did not write"):
            ak.sft("tiny-llama", SFT, output_dir=tmp_path, background=False, lora=0, **kw, **TINY)
    assert tree(tmp_path) == before


def test_refused_run_leaves_nothing(tmp_path):
    "A run refused after its folder was claimed leaves the folder as it was found: removed if alignkit made it, else emptied of alignkit's files only."
    model, _ = ak.load_model("tiny-llama", seed=0, quant="fp32", lora=0)
    del model.alignkit_tokenizer                      # a model without a tokenizer: refused after the claim, before training
    d = tmp_path/"new"
    with pytest.raises(ak.ConfigError, match="pass tokenizer="):
        ak.sft(model, SFT, output_dir=d, background=False, **TINY)
    assert not d.exists()
    mine = tmp_path/"empty"; mine.mkdir()
    with pytest.raises(ak.ConfigError, match="pass tokenizer="):
        ak.sft(model, SFT, output_dir=mine, background=False, **TINY)
    assert mine.is_dir() and list(mine.iterdir()) == []


def test_bad_values_refused_before_anything(tmp_path):
    d = tmp_path/"run"
    for bad, msg in [({"learning_rate": -1.0}, "learning_rate"), ({"per_device_train_batch_size": 0}, "batch_size"),
                     ({"max_steps": 0}, "max_steps")]:
        with pytest.raises(ak.ConfigError, match=msg):
            ak.sft("no-such-model-anywhere", SFT, output_dir=d, background=False, **{**TINY, **bad})
    assert not d.exists()


def test_default_run_dir_never_shared(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got = []
    ts = [threading.Thread(target=lambda: got.append(default_run_dir("sft"))) for _ in range(8)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert len(set(got)) == 8 and all(p.is_dir() for p in got)


def test_rlhf_into_folder_with_user_files(tmp_path):
    "rlhf used to rmtree any sft/reward/grpo folder without run.json."
    (tmp_path/"sft").mkdir(); (tmp_path/"sft"/"notes.txt").write_text("mine")
    (tmp_path/"grpo").mkdir(); (tmp_path/"grpo"/"data.csv").write_text("1,2")
    before = tree(tmp_path)
    with pytest.raises(ak.ConfigError, match="alignkit did not write"):
        ak.rlhf("tiny-llama", SFT, PAIRS, PROMPTS, output_dir=tmp_path, background=False, lora=0, sft_args=TINY)
    assert tree(tmp_path) == before


def test_cli_keeps_user_datasets(tmp_path):
    "A refused CLI run used to remove <output_dir>/datasets even when it did not create it (output_dir: . at the repo root)."
    (tmp_path/"datasets").mkdir(); (tmp_path/"datasets"/"mine.jsonl").write_text("{}\n")
    (tmp_path/"run.yaml").write_text(textwrap.dedent(f"""
        runner: sft
        model: tiny-llama
        data: {SFT}
        output_dir: .
        args:
          max_steps: 2
    """))
    before = tree(tmp_path)
    res = subprocess.run([sys.executable, "-m", "alignkit", "train", str(tmp_path/"run.yaml")], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert res.returncode != 0
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if k != "run.yaml"} == {k: v for k, v in before.items() if k != "run.yaml"}, res.stderr[-1500:]


def test_symlinks_in_a_run_dir_are_not_followed(ppo_run, tmp_path):
    outside = tmp_path/"outside"; outside.mkdir()
    (outside/"train").mkdir(); (outside/"train"/"precious.arrow").write_text("keep")
    (outside/"data.jsonl").write_text('{"prompt": "hi"}\n')
    before = tree(outside)
    d = _copy(ppo_run, tmp_path/"run")
    import shutil
    shutil.rmtree(d/"datasets"); (d/"datasets").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ak.TrustError, match="symbolic link"):       # resuming would rewrite <link target>/train
        ak.Run.open(d).resume(background=False)
    e = _copy(ppo_run, tmp_path/"run2")
    (e/"train.jsonl").unlink(); (e/"train.jsonl").symlink_to(outside/"data.jsonl")
    with pytest.raises(ak.TrustError, match="symbolic link"):       # reading data through a link out of the run
        ak.Run.open(e)
    f = tmp_path/"run3"; claim_run_dir(f, "sft").release()
    (f/"final").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ak.ConfigError, match="move them first"):    # a link is not alignkit's: never deleted, never written through
        claim_run_dir(f, "sft", overwrite=True)
    assert (f/"final").is_symlink() and tree(outside) == before


def test_open_writes_nothing(ppo_run):
    before = tree(ppo_run)
    run = ak.Run.open(ppo_run)
    run.metrics, run.checkpoints, repr(run)
    assert tree(ppo_run) == before


def test_foreign_checkpoint_names_are_ignored(ppo_run, tmp_path):
    d = _copy(ppo_run, tmp_path/"run")
    (d/"checkpoint-x").mkdir(); (d/"checkpoint-99.zip").write_text("not a checkpoint"); (d/"checkpoint-7-old").mkdir()
    run = ak.Run.open(d)
    assert [c.name for c in run.checkpoints] == ["checkpoint-1", "checkpoint-2"] and run.last_checkpoint.name == "checkpoint-2"


# --- SIGKILL during writes ------------------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys
    from alignkit.runners import RunConfig, _write_jsonl
    from alignkit.data import load_data
    i = 0
    rows = [{"text": "x" * 2000 + str(j)} for j in range(400)]
    from datasets import Dataset
    data = type("D", (), {"to_list": lambda self: rows})()
    while True:
        i += 1
        RunConfig("sft", {"name": "tiny-llama"}, {"n": i, "pad": "y" * 200_000}).save(sys.argv[1])
        _write_jsonl(data, sys.argv[1] + "/train.jsonl")
""")

def test_sigkill_during_run_file_writes(tmp_path):
    "Kill a process rewriting run.json and train.jsonl in a loop at random moments: both files always read whole."
    import random
    d = tmp_path/"run"; d.mkdir()
    rng = random.Random(0)
    for _ in range(6):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(d)])
        time.sleep(1.5 + rng.random())
        p.send_signal(signal.SIGKILL); p.wait()
        assert RunConfig.load(d).kind == "sft"
        lines = (d/"train.jsonl").read_text().splitlines()
        assert len(lines) == 400 and all(json.loads(l)["text"].startswith("x") for l in lines)
    leftovers = [p.name for p in d.iterdir() if p.name.endswith(".tmp")]
    assert all(n.startswith(".") for n in leftovers)             # temp files are hidden and named as alignkit's (overwrite removes them)


def test_trainer_checkpoint_pickle_canary(tmp_path):
    "transformers' Trainer checkpoints too (SFT here): a pickle in optimizer.pt is refused with a TrustError, nothing runs."
    import torch
    d = tmp_path/"run"
    ak.sft("tiny-llama", SFT, output_dir=d, background=False, lora=0, **TINY)
    torch.save({"state": Canary(tmp_path/"canary")}, d/"checkpoint-2"/"optimizer.pt")
    with pytest.raises(ak.TrustError, match="pickled Python objects"):
        ak.Run.open(d).resume(background=False)
    assert not (tmp_path/"canary").exists()


def test_run_dir_path_that_is_not_utf8(tmp_path):
    "A run folder whose name is not valid UTF-8 (bytes from another system): a clear error before anything loads, nothing written."
    d = tmp_path/os.fsdecode(b"run-\xff")
    with pytest.raises(ak.ConfigError, match="not valid UTF-8"):
        ak.sft("no-such-model-anywhere", SFT, output_dir=d, background=False, lora=0, **TINY)
    assert not d.exists()
    log = ak.RunLog(tmp_path/"ok")                  # a log may still name such a path: written and read back, shown as U+FFFD
    log.log_event("checkpoint", step=1, path=str(d))
    assert ak.RunLog.read(tmp_path/"ok")[0]["data"]["path"].endswith("run-\ufffd")


def test_watcher_stops_for_a_killed_run(tmp_path):
    "A run killed without a final record: once its lock is gone the dashboard calls it failed and stops following it."
    d = tmp_path/"run"
    lock = claim_run_dir(d, "sft")
    log = ak.RunLog(d)
    log.log_event("start", step=0, total_steps=10); log.log_metrics(1, {"loss": 1.0})
    dash = ak.open_run(d, interval=0.05)
    assert dash.state.live and dash.watching
    lock.release()                                   # what the OS does when the training process dies
    for _ in range(200):
        if not dash.watching: break
        time.sleep(0.05)
    assert not dash.watching and dash.state.status == "failed"


def test_ppo_rotation_never_deletes_the_checkpoint_it_just_wrote(tmp_path):
    "PPO keeps the newest save_total_limit checkpoints by step, never the one just written, and ignores foreign names."
    from types import SimpleNamespace
    from alignkit.ppo_trainer import PPOTrainer
    for n in ("checkpoint-100", "checkpoint-1", "checkpoint-2", "checkpoint-x"):
        (tmp_path/n).mkdir(); (tmp_path/n/"trainer_state.json").write_text("{}")
    fake = SimpleNamespace(args=SimpleNamespace(output_dir=str(tmp_path), save_total_limit=1))
    PPOTrainer._rotate(fake, keep=tmp_path/"checkpoint-2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-100", "checkpoint-2", "checkpoint-x"]


def test_rlhf_widget_escapes_the_run_dir():
    from html.parser import HTMLParser
    from types import SimpleNamespace
    from alignkit.pipeline import _title
    tags = []
    class P(HTMLParser):
        def handle_starttag(self, tag, attrs): tags.append((tag, attrs))
    P().feed(_title("sft<img src=x onerror=alert(1)>", SimpleNamespace(run_dir=Path("/r/<script>alert(1)</script>"))).value)
    assert tags == [("b", [])]
