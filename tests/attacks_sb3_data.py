"""Attacks on, and accidents with, what a run directory holds besides its log: an SB3 agent zip or checkpoint that asks
to unpickle code, a SIGKILL while an agent is saved over its old zip, three processes building one cached model at
once (and the temp folders a crashed one left), and training data that is deeply nested, malformed, huge, or sits at a
path that is not valid UTF-8. Each test asserts that nothing ran, nothing was lost, and that the error says what to do.
Canaries are files a payload would create if it ever ran."""
import base64, contextlib, json, os, random, signal, subprocess, sys, textwrap, time, zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from alignkit.core import ConfigError, TrustError

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "ALIGNKIT_QUIET": "1", "OMP_NUM_THREADS": "1", **extra}


# --- the model cache: three builders at once ------------------------------------------------------------------

BUILDER = textwrap.dedent("""
    import random, sys, time
    from pathlib import Path
    import alignkit.models as m, torch
    from transformers import AutoModelForCausalLM, AutoTokenizer   # imports first, so the three start building together
    ready, go, i = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    ready.touch()
    while not go.exists(): time.sleep(0.01)
    time.sleep(random.Random(i).uniform(0, 0.5))
    d = m.resolve("tiny-llama")
    end = time.time() + 4
    while time.time() < end:                           # keeps reading it, as training does, while the others finish
        assert m._complete(Path(d), seed=0), f"{d} lost its files while in use"
        AutoModelForCausalLM.from_pretrained(d); AutoTokenizer.from_pretrained(d)
    print(d)
""")


def _three_builders(cache: Path, tmp: Path, n: int = 3) -> list:
    go = tmp/"go"
    procs = [subprocess.Popen([sys.executable, "-c", BUILDER, str(tmp/f"ready{i}"), str(go), str(i)], env=_env(ALIGNKIT_CACHE=str(cache)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(n)]
    deadline = time.time() + 120
    while not all((tmp/f"ready{i}").exists() for i in range(n)) and time.time() < deadline: time.sleep(0.02)
    go.touch()
    return [p.communicate(timeout=300) + (p.returncode,) for p in procs]


@pytest.mark.parametrize("attempt", range(2))
def test_three_processes_build_one_cached_model(tmp_path, attempt):
    cache = tmp_path/"cache"
    out = _three_builders(cache, tmp_path)
    for stdout, stderr, rc in out: assert rc == 0, stderr[-2000:]
    folders = {o[0].strip() for o in out}
    assert len(folders) == 1, folders
    d = Path(folders.pop())
    assert (d/"alignkit-cache.json").exists() and (d/"config.json").exists() and any(d.glob("*.safetensors"))
    left = [p.name for p in d.parent.iterdir() if p.name != d.name and not p.name.endswith(".lock")]
    assert left == [], left                                       # no temp folders, none half-renamed


def test_stale_build_folders_of_dead_processes_are_cleaned(tmp_path):
    import alignkit.models as m
    cache = tmp_path/"cache"
    os.environ["ALIGNKIT_CACHE"] = str(cache)
    try:
        parent = m.model_cache("tiny-llama-seed0").parent
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
        stale = [parent/f"tiny-llama-seed0.tmp{dead}", parent/f".tiny-llama-seed0.build-{dead}-abc123"]
        mine = parent/"tiny-llama-seed0.mine"                     # not a name alignkit gives: never touched
        for p in (*stale, mine): p.mkdir(parents=True); (p/"x").write_text("x")
        d = Path(m.resolve("tiny-llama"))
        assert m._complete(d, seed=0)
        assert [p for p in stale if p.exists()] == []
        assert (mine/"x").read_text() == "x"
    finally: os.environ.pop("ALIGNKIT_CACHE")


# --- SB3 agent zips and checkpoints: nothing in them is unpickled without trust=True ----------------------------

class Canary:
    "A pickle that creates `path` when unpickled (what a hostile agent zip would do, harmlessly)."
    def __init__(self, path): self.path = str(path)
    def __reduce__(self): return (open, (self.path, "w"))


def payload(path, type_="<class 'function'>", **plain) -> dict:
    "A `:serialized:` entry as SB3 writes one, whose pickle creates `path`."
    import pickle
    return {":type:": type_, ":serialized:": base64.b64encode(pickle.dumps(Canary(path))).decode(), **plain}


def rewrite(src: Path, dst: Path, **entries) -> Path:
    "A copy of the zip `src` whose `data` JSON has `entries` set (None: removed)."
    with zipfile.ZipFile(src) as z: members = {n: z.read(n) for n in z.namelist()}
    data = json.loads(members["data"])
    for k, v in entries.items():
        if v is None: data.pop(k, None)
        else: data[k] = v
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, b in members.items(): z.writestr(n, b)
    return dst


@pytest.fixture(scope="module")
def zoo_ppo(tmp_path_factory):
    "PPO on CartPole-v1 with the zoo's defaults (linear schedules for learning_rate and clip_range), 256 steps, one checkpoint."
    import alignkit.rl as rl
    d = tmp_path_factory.mktemp("zoo")/"run"
    return rl.train("CartPole-v1", "PPO", steps=256, seed=0, output_dir=d, eval_freq=0, checkpoint_freq=256, dashboard=False)


OBS = [[0.01, -0.02, 0.03, 0.04], [0.1, 0.5, -0.1, -0.5], [-0.2, -1.0, 0.2, 1.0], [0.0, 0.3, 0.05, -0.2]]


def same_actions(a, b):
    import numpy as np
    obs = np.array(OBS * 8, np.float32) * np.repeat(np.linspace(0.2, 2, 8), 4)[:, None]
    np.testing.assert_array_equal(a.predict(obs), b.predict(obs))


@pytest.mark.parametrize("key", ["evil", "learning_rate", "policy_kwargs"])
def test_a_pickle_in_an_agent_zip_never_runs(zoo_ppo, tmp_path, key):
    import alignkit.rl as rl
    canary = tmp_path/"canary"
    bad = rewrite(zoo_ppo.run_dir/"agent.zip", tmp_path/"bad.zip", **{key: payload(canary)})
    with pytest.raises(TrustError) as e: rl.load(bad)
    assert not canary.exists()
    msg = str(e.value)
    assert repr(key) in msg and "trust=True" in msg and "bad.zip" in msg, msg
    with contextlib.suppress(Exception): rl.load(bad, trust=True)   # SB3's own loader: the payload is live
    assert canary.exists()


def test_a_pickle_where_alignkit_rebuilds_the_entry_is_never_decoded(zoo_ppo, tmp_path):
    "policy_class, the spaces, the buffer class and the schedules SB3 recomputes come from the algorithm and env, not the file."
    import alignkit.rl as rl
    canaries = {k: tmp_path/f"canary-{k}" for k in ("policy_class", "observation_space", "action_space", "lr_schedule", "_last_obs")}
    entries = {k: payload(p, "<class 'abc.ABCMeta'>", __module__="stable_baselines3.common.policies") if k == "policy_class" else payload(p)
               for k, p in canaries.items()}
    again = rl.load(rewrite(zoo_ppo.run_dir/"agent.zip", tmp_path/"a.zip", **entries))
    assert [p.name for p in canaries.values() if p.exists()] == []
    same_actions(again, zoo_ppo)


def test_a_custom_policy_class_needs_trust(zoo_ppo, tmp_path):
    import alignkit.rl as rl
    canary = tmp_path/"canary"
    bad = rewrite(zoo_ppo.run_dir/"agent.zip", tmp_path/"p.zip",
                  policy_class=payload(canary, "<class 'abc.ABCMeta'>", __module__="evil.policies"))
    with pytest.raises(TrustError, match=r"'policy_class'.*evil\.policies.*trust=True"): rl.load(bad)
    assert not canary.exists()


def test_a_zip_that_names_an_env_to_import_is_refused(zoo_ppo, tmp_path, monkeypatch):
    "SB3 builds a stored `env` string with gym.make, which imports the module named before ':'."
    import alignkit.rl as rl
    canary = tmp_path/"canary"
    (tmp_path/"evil_env_mod.py").write_text(f"open({str(canary)!r}, 'w')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    bad = rewrite(zoo_ppo.run_dir/"agent.zip", tmp_path/"e.zip", env="evil_env_mod:Evil-v0")
    with pytest.raises(TrustError, match=r"'env'.*trust=True"): rl.load(bad)
    assert not canary.exists()


def test_clean_zips_load_without_trust_with_their_schedules(zoo_ppo, tmp_path):
    import alignkit.rl as rl
    ckpt = zoo_ppo.run_dir/"checkpoint-256.zip"
    for path in (zoo_ppo.run_dir/"agent.zip", ckpt):
        again = rl.load(path)
        assert (again.algo, again.env.id, again.model.num_timesteps) == ("PPO", "CartPole-v1", 256)
        same_actions(again, zoo_ppo)
        for f in (1.0, 0.5, 0.1):                                 # the zoo's lin_0.001 and lin_0.2 schedules, rebuilt
            assert again.model.learning_rate(f) == zoo_ppo.model.learning_rate(f)
            assert again.model.clip_range(f) == zoo_ppo.model.clip_range(f)


def test_a_stopped_agents_checkpoint_loads_safely_and_resumes(tmp_path):
    import alignkit.rl as rl
    agent = rl.train("CartPole-v1", "A2C", steps=200_000, seed=0, output_dir=tmp_path/"a2c", eval_freq=0, checkpoint_freq=0,
                     background=True, dashboard=False)
    deadline = time.time() + 60
    while (agent.log.last_step or 0) < 500 and time.time() < deadline: time.sleep(0.05)
    agent.stop(wait=True)
    n = agent.model.num_timesteps
    ckpt = tmp_path/"a2c"/f"checkpoint-{n}.zip"
    with zipfile.ZipFile(ckpt) as z: assert any(":serialized:" in json.dumps(v) for v in json.loads(z.read("data")).values())
    again = rl.load(ckpt)
    assert (again.algo, again.env.id, again.model.num_timesteps) == ("A2C", "CartPole-v1", n)
    same_actions(again, agent)
    again.model.set_env(again.env.vec(8, seed=1))                 # resume: SB3 continues from the checkpoint's step
    again.model.learn(total_timesteps=80, reset_num_timesteps=False)
    assert again.model.num_timesteps > n


SAVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from stable_baselines3 import PPO
    import alignkit.rl as rl
    src = rl.resolve_env("CartPole-v1")
    agent = rl.Agent(PPO("MlpPolicy", src.vec(1, seed=0), n_steps=64, batch_size=64, seed=0, device="cpu",
                         policy_kwargs=dict(net_arch=[256, 256])), src, "PPO")
    path = Path(sys.argv[1])
    agent.save(path)
    Path(sys.argv[2]).touch()
    while True: agent.save(path)
""")


def test_sigkill_while_saving_over_an_agent_zip_leaves_a_loadable_zip(tmp_path):
    import alignkit.rl as rl
    path, rng = tmp_path/"agent.zip", random.Random(0)
    for attempt in range(3):
        ready = tmp_path/f"ready{attempt}"
        p = subprocess.Popen([sys.executable, "-c", SAVER, str(path), str(ready)], env=_env(), stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while not ready.exists() and time.time() < deadline and p.poll() is None: time.sleep(0.01)
        assert ready.exists(), p.stderr.read().decode()[-2000:]
        time.sleep(rng.uniform(0.05, 0.6))
        p.send_signal(signal.SIGKILL); p.wait()
        agent = rl.load(path)
        assert agent.algo == "PPO" and agent.env.id == "CartPole-v1"


# --- load_data: anything a file holds ends in a Data or in a ConfigError naming the file and line --------------

def _load_or_config_error(src):
    "load_data's result, or its error, which must be a ConfigError (DataError is one) whose text encodes as UTF-8."
    from alignkit.data import load_data
    try: return load_data(src)
    except ConfigError as e:
        str(e).encode("utf-8")                                    # printable, loggable, sendable to a notebook
        return e


@pytest.mark.parametrize("ext", [".jsonl", ".json"])
def test_json_nested_100k_deep_is_a_config_error_naming_the_line(tmp_path, ext):
    deep = "[" * 100_000 + "]" * 100_000
    p = tmp_path/f"train{ext}"
    p.write_text('{"text": "ok"}\n{"text": "a", "x": ' + deep + '}\n' if ext == ".jsonl" else deep)
    e = _load_or_config_error(p)
    assert isinstance(e, ConfigError), e
    assert str(p) in str(e) and "nested" in str(e) and (ext == ".json" or "line 2" in str(e)), str(e)


def test_a_value_nested_just_below_the_parser_limit_is_a_config_error_naming_the_row(tmp_path):
    "Deep enough for datasets/Arrow to recurse out, shallow enough for json to parse."
    p = tmp_path/"train.jsonl"
    p.write_text('{"text": "ok", "x": []}\n{"text": "a", "x": []}\n{"text": "a", "x": ' + "[" * 900 + "]" * 900 + '}\n')
    e = _load_or_config_error(p)
    assert isinstance(e, ConfigError) and "row 2 (line 3)" in str(e) and "nested" in str(e), e


def test_an_unreadable_or_impossible_path_is_a_config_error(tmp_path):
    for src in [tmp_path/("x"*5000 + ".jsonl"), tmp_path/"a\x00b.jsonl", tmp_path/"missing.jsonl"]:
        assert isinstance(_load_or_config_error(src), ConfigError), src


def test_a_data_path_that_is_not_utf8_loads_and_shows(tmp_path):
    d = Path(os.fsdecode(os.fsencode(tmp_path) + b"/runs\xff"))
    d.mkdir()
    (d/"train.jsonl").write_text('{"text": "hi"}\n{"text": ""}\n')
    e = _load_or_config_error(d)                                  # the error names the path, readably
    assert isinstance(e, ConfigError) and "runs\\xff" in str(e), e
    (d/"train.jsonl").write_text('{"text": "hi"}\n')
    data = _load_or_config_error(d)
    assert len(data) == 1 and "runs\\xff" in data.source
    for shown in (repr(data), data._repr_html_(), data._repr_markdown_()): shown.encode("utf-8")


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=6),
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.sampled_from(["text", "prompt", "messages", "role", "content", "x"]), kids, max_size=3),
                           max_leaves=12)
LINES = st.lists(st.one_of(JSON_VALUES.map(lambda v: json.dumps(v).encode()), st.binary(max_size=20),
                           st.sampled_from([b"", b"{", b'{"text": "\\ud800"}', b'{"text": NaN}', b"\xef\xbb\xbf{}", b'{"text": "a"}'])),
                 min_size=0, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(LINES, st.sampled_from([".jsonl", ".json", ".csv"]))
def test_any_file_content_gives_data_or_a_config_error(tmp_path, lines, ext):
    p = tmp_path/f"fuzz{ext}"
    p.write_bytes(b"\n".join(lines))
    out = _load_or_config_error(p)
    assert not isinstance(out, ConfigError) or str(p) in str(out) or "fuzz" in str(out), out


_HELD = """
import gc, json, sys, tracemalloc
from pathlib import Path
from alignkit.data import load_data
rows = [{"messages": [{"role": "user", "content": f"What is {i} + {i}? " + "please explain " * 8},
                      {"role": "assistant", "content": f"It is {2*i}. " + "because arithmetic " * 8}], "id": i} for i in range(20_000)]
p = Path(sys.argv[1])/"train.jsonl"
p.write_text("".join(json.dumps(r) + "\\n" for r in rows))
load_data(rows[:10])
gc.collect(); tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
held = [json.loads(line) for line in p.read_text().splitlines()]
rows_bytes = tracemalloc.get_traced_memory()[0] - base
del held, rows; gc.collect(); tracemalloc.reset_peak()
base = tracemalloc.get_traced_memory()[0]
data = load_data(p)
peak = tracemalloc.get_traced_memory()[1] - base
assert len(data) == 20_000
print(peak / rows_bytes)
"""

def test_load_data_holds_the_rows_about_once(tmp_path):
    "Peak Python heap of load_data on 20k conversational rows, against the rows themselves as Python objects (was 1.9x); in a fresh process, so what earlier tests cached does not count."
    import subprocess, sys
    res = subprocess.run([sys.executable, "-c", _HELD, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    ratio = float(res.stdout.strip().splitlines()[-1])
    assert ratio < 1.35, ratio
