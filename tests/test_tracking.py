"""Property tests for the run log (alignkit.tracking): torn lines, a writer in another process, NaN round trips.

What the notebook cannot express: many random logs, torn at random bytes, and two processes at once."""
import json, math, os, re, subprocess, sys, textwrap, time, warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from alignkit.tracking import EVENTS, LogReader, RunLog

RESERVED = {"NaN", "Infinity", "-Infinity"}  # strings that mean non-finite numbers inside data/config
text = st.text(max_size=40)  # any Unicode (no lone surrogates): newlines, U+2028, NUL, quotes, emoji
plain_text = text.filter(lambda s: s not in RESERVED)
numbers = st.one_of(st.integers(-2**63, 2**63), st.floats(allow_nan=True, allow_infinity=True))
names = st.text(min_size=1, max_size=12)

ops = st.one_of(
    st.tuples(st.just("config"), st.dictionaries(names, st.one_of(numbers, plain_text, st.booleans(), st.none()), max_size=4)),
    st.tuples(st.just("metric"), st.integers(0, 10**6), st.dictionaries(names, numbers, max_size=4)),
    st.tuples(st.just("event"), st.sampled_from(EVENTS), st.one_of(st.none(), st.integers(0, 10**6)), text,
              st.dictionaries(names.map(lambda k: "d_" + k), st.one_of(numbers, plain_text), max_size=3)),
    st.tuples(st.just("sample"), st.integers(0, 10**6), text, text, st.dictionaries(names, numbers, max_size=3)),
)

def write(log: RunLog, op) -> dict:
    "Apply one op with the RunLog writer API and return the record we expect to read back (without `time`)."
    kind = op[0]
    if kind == "config": log.log_config(op[1]); return {"type": "config", "config": op[1]}
    if kind == "metric": log.log_metrics(op[1], op[2]); return {"type": "metric", "step": op[1], "values": op[2]}
    if kind == "event":
        _, event, step, message, data = op
        log.log_event(event, step=step, message=message, **data)
        return {"type": "event", "step": step, "event": event, "message": message, "data": data}
    _, step, prompt, completion, rewards = op
    log.log_sample(step, prompt, completion, rewards)
    return {"type": "sample", "step": step, "prompt": prompt, "completion": completion, "rewards": rewards}

def same(a, b) -> bool:
    "Equality where NaN equals NaN and int/float types must match."
    if isinstance(a, float) and isinstance(b, float): return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict) and isinstance(b, dict): return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list): return len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b

def strip_time(recs): return [{k: v for k, v in r.items() if k != "time"} for r in recs]

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(seq=st.lists(ops, max_size=12), data=st.data())
def test_torn_at_any_byte_reads_complete_prefix(tmp_path_factory, seq, data):
    run = tmp_path_factory.mktemp("run")
    with RunLog(run) as log: expected = [write(log, op) for op in seq]
    raw = (run/"log.jsonl").read_bytes() if seq else b""
    assert raw.count(b"\n") == len(seq)  # one record, one line, whatever the text holds
    # draw where to tear from the record count, not the byte count: line lengths vary with the wall-clock `time`
    whole = data.draw(st.integers(0, len(seq)), label="complete lines")
    lines = raw.split(b"\n")
    cut = sum(len(l) + 1 for l in lines[:whole]) + (data.draw(st.integers(0, 10**6), label="into the next") % (len(lines[whole]) + 1) if whole < len(seq) else 0)
    (run/"log.jsonl").write_bytes(raw[:cut])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a torn tail is not corrupt: no warning either
        got = strip_time(RunLog.read(run))
    assert same(got, expected[:raw[:cut].count(b"\n")])


@SETTINGS
@given(seq=st.lists(ops, min_size=1, max_size=10), data=st.data())
def test_reader_sees_each_record_once_whatever_the_chunks(tmp_path_factory, seq, data):
    "Bytes arrive in arbitrary chunks (a writer caught mid-line); each poll returns exactly the newly completed lines."
    src = tmp_path_factory.mktemp("src")
    with RunLog(src) as log: expected = [write(log, op) for op in seq]
    raw = (src/"log.jsonl").read_bytes()
    cuts = sorted(x * len(raw) // 10**6 for x in data.draw(st.lists(st.integers(0, 10**6), max_size=8), label="cuts"))
    dst = tmp_path_factory.mktemp("dst")
    reader, seen = LogReader(dst), []
    for a, b in zip([0, *cuts], [*cuts, len(raw)]):
        with open(dst/"log.jsonl", "ab") as f: f.write(raw[a:b])
        seen += reader.poll()
        assert len(seen) == raw[:b].count(b"\n")
    assert same(strip_time(seen), expected)
    assert reader.poll() == []


WRITER = textwrap.dedent("""
    import os, sys, time, random
    from alignkit.tracking import RunLog
    run, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    random.seed(n)
    if mode == "runlog":  # the real writer, with some lines far larger than a page or a pipe buffer
        log = RunLog(run)
        for i in range(n):
            if i % 25 == 7: log.log_sample(i, "p", "x" * random.randint(10_000, 300_000), {"r": i})
            else: log.log_metrics(i, {"loss": 1 / (i + 1), "nan": float("nan")})
    else:  # a writer that tears every line into pieces, pausing between them, so readers meet partial lines
        os.makedirs(run, exist_ok=True)
        with open(os.path.join(run, "log.jsonl"), "ab", buffering=0) as f:
            for i in range(n):
                line = ('{"type":"metric","time":0,"step":%d,"values":{"loss":%d,"pad":"%s"}}\\n' % (i, i, "y" * random.randint(0, 5000))).encode()
                cuts = sorted(random.sample(range(1, len(line)), 2))
                for a, b in zip([0, *cuts], [*cuts, len(line)]):
                    f.write(line[a:b]); time.sleep(random.choice([0, 0.0005]))
""")

@pytest.mark.parametrize("mode,n", [("runlog", 400), ("torn", 300)])
def test_follow_a_writer_in_another_process(tmp_path, mode, n):
    run = tmp_path/"run"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(run), str(n), mode])
    reader, steps, polls, deadline = LogReader(run), [], 0, time.monotonic() + 60
    while len(steps) < n and time.monotonic() < deadline:
        steps += [r["step"] for r in reader.poll()]
        polls += 1
    assert proc.wait(30) == 0
    steps += [r["step"] for r in reader.poll()]
    assert steps == list(range(n))  # every record, exactly once, in order
    assert polls > 1  # it really did read while the writer wrote


def test_follow_generator_ends_after_idle_timeout(tmp_path):
    log = RunLog(tmp_path)
    for i in range(3): log.log_metrics(i, {"loss": float(i)})
    t0 = time.monotonic()
    assert [r["step"] for r in LogReader(tmp_path).follow(timeout=0.3, interval=0.05)] == [0, 1, 2]
    assert time.monotonic() - t0 < 5


def test_nan_round_trip(tmp_path):
    log = RunLog(tmp_path)
    log.log_metrics(1, {"loss": float("nan"), "kl": float("inf"), "neg": -math.inf, "f32": np.float32("nan"), "i": np.int64(7)})
    log.log_sample(1, "NaN", "Infinity", {"r": float("nan")})
    log.log_event("error", step=1, message="non-finite loss", loss=float("nan"))
    raw = log.path.read_text(encoding="utf-8")
    def no_constants(c): raise AssertionError(f"bare {c} in the log: not strict JSON")
    recs = [json.loads(line, parse_constant=no_constants) for line in raw.splitlines()]
    assert recs[0]["values"] == {"loss": "NaN", "kl": "Infinity", "neg": "-Infinity", "f32": "NaN", "i": 7}
    v = log.records[0]["values"]
    assert math.isnan(v["loss"]) and v["kl"] == math.inf and v["neg"] == -math.inf and math.isnan(v["f32"]) and v["i"] == 7
    s = log.samples.iloc[0]
    assert (s.prompt, s.completion) == ("NaN", "Infinity") and math.isnan(s.rewards["r"])  # text stays text
    assert math.isnan(log.events.data[0]["loss"])
    m = log.metrics
    assert math.isnan(m.loc[0, "loss"]) and m.loc[0, "kl"] == math.inf


def test_corrupt_line_in_the_middle_is_skipped_with_its_line_number(tmp_path):
    log = RunLog(tmp_path)
    log.log_metrics(0, {"loss": 1.0})
    with open(log.path, "ab") as f: f.write(b"garbage\n[1, 2]\n")
    log.log_metrics(1, {"loss": 0.5})
    with pytest.warns(UserWarning) as w: recs = RunLog.read(tmp_path)
    assert [r["step"] for r in recs] == [0, 1]
    msgs = [str(x.message) for x in w]
    assert any("line 2" in m for m in msgs) and any("line 3" in m for m in msgs)


DDP_SCRIPT = textwrap.dedent("""
    import os, sys
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments, default_data_collator
    from transformers.utils import logging as hf_logging
    from alignkit.models import load_model
    from alignkit.tracking import RunLogCallback
    hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()
    run = sys.argv[1]
    model, tok = load_model("tiny-llama", seed=0, quant="fp32")
    enc = tok(["The cat sat on the mat.", "one two three four"] * 32, padding="max_length", max_length=16, return_tensors="pt")
    data = [{"input_ids": i, "attention_mask": a, "labels": i} for i, a in zip(enc.input_ids, enc.attention_mask)]
    cb = RunLogCallback(run)
    class PressStop(TrainerCallback):  # only rank 0 presses Stop, as a dashboard in rank 0's process would
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3 and state.is_world_process_zero: cb.request_stop()
    args = TrainingArguments(output_dir=run, max_steps=200, per_device_train_batch_size=4, logging_steps=1,
                             save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True)
    t = Trainer(model=model, args=args, train_dataset=data, data_collator=default_data_collator, callbacks=[PressStop(), cb])
    t.remove_callback(PrinterCallback)
    t.train()
    print(f"rank {os.environ['RANK']} stopped at step {t.state.global_step}", flush=True)
    import torch.distributed as dist      # leave no gloo threads running at exit ("terminate called without an active exception")
    if dist.is_initialized(): dist.barrier(); dist.destroy_process_group()
""")

@pytest.mark.slow
def test_distributed_stop_on_rank0_stops_every_rank_and_only_rank0_writes(tmp_path):
    "Two gloo processes (torchrun): Stop pressed on rank 0 stops both at the same step (no hang); one writer."
    script, run = tmp_path/"train.py", tmp_path/"run"
    script.write_text(DDP_SCRIPT)
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script), str(run)],
                         capture_output=True, text=True, timeout=240, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    # both ranks print to one pipe, so their lines can interleave: find the messages, not lines
    assert sorted(re.findall(r"rank \d+ stopped at step \d+", out.stdout)) == ["rank 0 stopped at step 3", "rank 1 stopped at step 3"]
    log = RunLog(run)
    assert [r["type"] for r in log.records].count("config") == 1  # rank 1 wrote nothing
    assert list(log.metrics.step) == [1, 2, 3] and len([r for r in log.records if r["type"] == "metric"]) == 4  # 3 steps + the summary
    assert list(log.events.event) == ["start", "stop", "checkpoint"]
    assert (run/"checkpoint-3").is_dir()
