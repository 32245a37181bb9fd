"""A run directory someone else wrote, opened here: its log must not inject markup or script into any view, must not
crash any reader, and must not make a writer or a PNG export touch anything outside the run.

Every string field of a log (run-dir name, metric names, event messages and data, checkpoint step and path, alarm
text, sample prompts/completions/reward names, config values) holds hostile payloads; each renderer's output is parsed
with the standard library's `html.parser` and must hold no tag or attribute that the same renderer does not emit for a
benign log."""
import errno, hashlib, html, json, math, os, re, shutil, socket, threading, warnings
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from alignkit.core import TrustError
from alignkit.tracking import LogReader, RunLog
from alignkit.dashboard import Dashboard, DashboardState, Series, header_html, html_to_png, open_run, samples_html, state_html
import alignkit.dashboard.export as export

PAYLOADS = ['<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '"\'><svg onload=alert(1)>', "'><b>x</b>",
            '[x](javascript:alert(1))', '![i](http://127.0.0.1:9/i.png)', '`<img src=x onerror=alert(2)>`',
            '</script><script>window.pwned=1</script>', '<a href="javascript:alert(1)">a</a>', '&lt;b&gt;', '<!--',
            '<span style="font-size:99px">big</span>', '**bold** _it_ <br>', '\\<i>esc</i>']
payload = st.one_of(st.sampled_from(PAYLOADS),
                    st.lists(st.sampled_from(PAYLOADS + ["a", " ", "<", ">", "&", '"', "'", "`", "[", "]", "(", ")", "\n"]),
                             min_size=1, max_size=6).map("".join))
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def dir_name(s):
    "A directory name holding as much of `s` as a file system allows."
    return (s.replace("/", "_").replace("\0", "_").replace("\n", " ").strip(". ") or "x")[:80]

def hostile_log(root, s, extra=()):
    "A run whose every string field holds `s`: through the writer where it allows it, raw lines where it does not."
    log = RunLog(root/dir_name(s))
    log.log_config({"max_steps": 10, "note": s, s: s})
    log.log_event("start", step=0, message=s, total_steps=10, note=s)
    for i in range(1, 4): log.log_metrics(i, {"loss": 1.0/i, "kl": 9.0, s: float(i), f"eval_{s}": 0.5, "reward": 0.1, "reward_std": 0.0})
    log.log_event("checkpoint", step=3, message=s, path=s)
    log.log_event("alarm", step=3, message=s, key=f"other:{s}", kind=s, metric=s, value=s)
    log.log_event("alarm", step=3, message=s)
    log.log_sample(3, s, s, {s: 1.0})
    log.close()
    with open(log.path, "a", encoding="utf-8") as f:     # what a writer of this library cannot write, but a file can hold
        for rec in [{"type": "event", "time": 1.0, "step": s, "event": "checkpoint", "message": s, "data": {"path": s}},
                    {"type": "event", "time": 1.0, "step": 3, "event": "stop", "message": s, "reason": s, "data": {}},
                    {"type": "sample", "time": 1.0, "step": 3, "prompt": s, "completion": s, "rewards": {s: s}},
                    {"type": "metric", "time": 1.0, "step": 4, "values": {s: s}}, *extra]:
            f.write(json.dumps(rec) + "\n")
    return log

class Tags(HTMLParser):
    "The elements and attributes of a page, and the `javascript:` URLs in it."
    def __init__(self, doc):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.js_urls, self.scripts = set(), set(), [], 0
        self.feed(doc); self.close()
    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.scripts += tag == "script"
        for k, v in attrs:
            self.attrs.add((tag, k))
            if v and re.sub(r"\s", "", v).lower().startswith(("javascript:", "vbscript:", "data:text/html")): self.js_urls.append(v)
    handle_startendtag = handle_starttag

def assert_no_new_markup(doc, benign_doc, what, extra_scripts=0):
    "`doc` has no element, attribute or script that `benign_doc` lacks (`extra_scripts`: the figures one has more)."
    got, ours = Tags(doc), Tags(benign_doc)
    assert got.tags <= ours.tags, f"{what}: elements {got.tags - ours.tags} came from the log"
    assert got.attrs <= ours.attrs, f"{what}: attributes {got.attrs - ours.attrs} came from the log"
    assert not got.js_urls, f"{what}: script URLs {got.js_urls}"
    assert got.scripts == ours.scripts + extra_scripts, f"{what}: {got.scripts} scripts, not {ours.scripts + extra_scripts}"

def state_of(log):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                     # the raw lines that are not records are skipped with a warning
        st = DashboardState(log.run_dir); st.update()
    return st

@pytest.fixture(scope="module")
def benign(tmp_path_factory):
    return state_of(hostile_log(tmp_path_factory.mktemp("benign"), "benign"))


# --- HTML: header, samples, the widget, the exported page, RunLog's own repr ---

@SETTINGS
@given(s=payload)
def test_header_and_samples_hold_no_markup_from_the_log(tmp_path_factory, benign, s):
    st = state_of(hostile_log(tmp_path_factory.mktemp("run"), s))
    assert st.checkpoints and st.samples and st.alarms     # the payload did reach the state
    assert_no_new_markup(header_html(st), header_html(benign), "header_html")
    assert_no_new_markup(samples_html(st), samples_html(benign), "samples_html")

@settings(SETTINGS, max_examples=8)
@given(s=payload)
def test_widget_html_children_hold_no_markup_from_the_log(tmp_path_factory, benign, s):
    d, ours = Dashboard(state_of(hostile_log(tmp_path_factory.mktemp("run"), s))), Dashboard(benign)
    for part in ("header", "samples"):
        assert_no_new_markup(getattr(d, part).value, getattr(ours, part).value, f"Dashboard.{part}")

def _plotly_text(fig):
    "Every string of a figure that plotly draws as (its own subset of) HTML: trace names, titles, axis titles."
    lay = fig.layout
    return [t.name for t in fig.data] + [lay.title.text, lay.yaxis.title.text, lay.yaxis2.title.text if "yaxis2" in lay else None]

@settings(SETTINGS, max_examples=8)
@given(s=payload)
def test_exported_page_holds_no_markup_from_the_log(tmp_path_factory, benign, s):
    st = state_of(hostile_log(tmp_path_factory.mktemp("run"), s))
    assert_no_new_markup(state_html(st), state_html(benign), "state_html", len(st.panels) - len(benign.panels))   # one script a panel
    for p in st.panels:               # plotly turns <b>, <a href>, <span style> … in trace names and titles into markup
        for text in _plotly_text(st.figure(p)):
            assert text is None or not re.search(r"<\s*/?\s*[a-zA-Z!]", text), f"panel {p.key}: {text!r} reaches plotly as markup"

def test_figure_json_cannot_close_its_script_tag(tmp_path):
    st = state_of(hostile_log(tmp_path, "</script><script>window.pwned=1</script><!--"))
    page = state_html(st)
    assert "</script><script>window.pwned" not in page
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", page, flags=re.S)
    assert not any("pwned" in s and "Plotly.newPlot" not in s for s in scripts)

def test_exported_page_allows_only_its_own_scripts_and_no_network(tmp_path):
    page = state_html(state_of(hostile_log(tmp_path, "x")))
    m = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert m, "no Content-Security-Policy in the page"
    csp = dict((d.split(" ", 1) + [""])[:2] for d in html.unescape(m.group(1)).split("; "))
    assert csp["default-src"] == "'none'" and csp["connect-src"] == "'none'" and csp["img-src"] == "data:"
    hashes = set(re.findall(r"'sha256-([^']+)'", csp["script-src"]))
    bodies = re.findall(r"<script[^>]*>(.*?)</script>", page, flags=re.S)
    import base64
    assert {base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() for b in bodies} == hashes
    assert "unsafe-inline" not in csp["script-src"] and "unsafe-eval" not in csp["script-src"]

def _render_runlog(log):
    "What Jupyter shows for a RunLog: its HTML repr, else its Markdown rendered (raw HTML allowed, as Jupyter does)."
    if hasattr(log, "_repr_html_"): return log._repr_html_()
    from markdown_it import MarkdownIt
    return MarkdownIt("commonmark", {"html": True}).render(log._repr_markdown_())

@SETTINGS
@given(s=payload)
def test_runlog_repr_holds_no_markup_from_the_log(tmp_path_factory, s):
    root = tmp_path_factory.mktemp("run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, ours = _render_runlog(RunLog(hostile_log(root, s).run_dir)), _render_runlog(RunLog(hostile_log(root, "benign").run_dir))
    assert_no_new_markup(got, ours, "RunLog repr")
    assert html.escape(dir_name(s)) in got or dir_name(s) in html.unescape(got)


# --- PNG export: sandbox, no network, only our scripts ---

@pytest.fixture
def server():
    "An HTTP server on a free loopback port that records the paths asked of it."
    hits = []
    class H(BaseHTTPRequestHandler):
        def do_GET(self): hits.append(self.path); self.send_response(200); self.end_headers(); self.wfile.write(b"x")
        do_POST = do_GET
        def log_message(self, *a): pass
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", hits
    srv.shutdown(); srv.server_close()

def _chromium():
    try: return export.find_chromium()
    except Exception: return None

@pytest.mark.browser
@pytest.mark.skipif(_chromium() is None, reason="PNG export needs Chromium (apt-get install chromium)")
def test_png_export_reaches_no_network_whatever_the_log_holds(tmp_path, server):
    url, hits = server
    s = (f'<img src={url}/img><script>fetch("{url}/fetch"); new Image().src="{url}/js"</script>'
         f'<link rel=stylesheet href={url}/css><iframe src={url}/frame></iframe><div style="background:url({url}/bg)">x</div>')
    d = Dashboard(state_of(hostile_log(tmp_path, s)))
    out = d.to_png(tmp_path/"dash.png")
    assert out.exists() and out.stat().st_size > 10_000
    assert hits == [], f"the export fetched {hits}"
    # the same page, hand-made with a script of its own, in the same browser: still nothing leaves it
    doc = d.to_html().replace("</body>", f'<script>fetch("{url}/own")</script><img src="{url}/own-img"></body>')
    html_to_png(doc, tmp_path/"own.png")
    assert hits == [], f"the export fetched {hits}"

def test_png_export_runs_chromium_sandboxed_unless_root(tmp_path, monkeypatch):
    calls = []
    def fake_run(cmd, **kw):
        calls.append(cmd)
        root_refused = os.geteuid() == 0 and "--no-sandbox" not in cmd
        if not root_refused: Path(next(a for a in cmd if a.startswith("--screenshot=")).split("=", 1)[1]).write_bytes(b"png")
        class R: returncode, stderr = (1 if root_refused else 0), ("Running as root without --no-sandbox is not supported" if root_refused else "")
        return R()
    monkeypatch.setattr(export.subprocess, "run", fake_run)
    for euid in (1000, 0):
        calls.clear()
        monkeypatch.setattr(os, "geteuid", lambda: euid)
        html_to_png("<p>x</p>", tmp_path/"x.png", chromium=shutil.which("true") or "/bin/true")
        assert "--no-sandbox" not in calls[0]                           # the sandbox is tried first, always
        assert any(a.startswith("--host-resolver-rules=") for a in calls[0])
        if euid: assert len(calls) == 1
        else: assert len(calls) == 2 and "--no-sandbox" in calls[1]     # only root falls back, as Chromium refuses root sandboxed


# --- the log: wrongly typed records, decoding, torn writes, replaced files, symlinks, bounded reads ---

BAD = [{"type": "metric", "step": "x", "values": 5}, {"type": "metric", "step": 1.5, "values": {"loss": 1}},
       {"type": "metric", "step": 2, "values": {"loss": "low"}}, {"type": "metric", "step": True, "values": {}},
       {"type": "metric", "step": 10**30, "values": {"loss": 1}}, {"type": "metric", "step": 2, "values": {"loss": 10**400}},
       {"type": "event", "event": 3}, {"type": "event", "event": "start", "data": []},
       {"type": "event", "event": "stop", "reason": ["x"]}, {"type": "event", "event": "alarm", "message": {"a": 1}},
       {"type": "event", "event": "resume", "step": "3"}, {"type": "sample", "step": 1, "prompt": {"a": 1}, "completion": "c"},
       {"type": "sample", "step": 1, "prompt": "p", "completion": "c", "rewards": {"r": "good"}},
       {"type": "config", "config": [1, 2]}, {"type": 7}, {"type": "metric"}, {"type": "metric", "time": "now", "step": 1, "values": {}}]
# records of the right shape whose free-form parts (event data, config values) hold what no reader expects
ODD = [{"type": "event", "event": "start", "step": 0, "data": {"total_steps": "many"}},
       {"type": "event", "event": "start", "step": 0, "data": {"total_steps": 10**400}},
       {"type": "event", "event": "alarm", "step": 1, "data": {"key": ["k"], "metric": {}, "value": [1]}},
       {"type": "event", "event": "alarm", "step": 1, "data": {"key": "nokind", "metric": 5, "value": "high"}},
       {"type": "event", "event": "error", "step": 1, "data": {"loss": "NaN", "key": 3}},
       {"type": "event", "event": "checkpoint", "step": 1, "data": {"path": ["x"]}},
       {"type": "event", "event": "no-such-event", "step": 1, "data": {}},
       {"type": "config", "config": {"max_steps": "ten", "max_completion_length": 10**400}},
       {"type": "config", "config": {"max_steps": True, "max_completion_length": [3]}},
       {"type": "future-kind", "step": "x"}]

def _all_readers(run):
    "Every reader of a run log, run on `run`; the values they return."
    log = RunLog(run)
    out = [len(log.records), log.metrics.shape, log.events.shape, log.samples.shape, log.config, log.summary(), repr(log),
           log.last_step, log.total_steps, log.stop_reason]
    st = DashboardState(run); st.update()
    d = Dashboard(st)
    out += [header_html(st), samples_html(st), [st.figure(p) for p in st.panels], repr(st), st.eta, st.throughput, d.header.value]
    return out

@pytest.mark.parametrize("bad", BAD, ids=[json.dumps(b)[:60] for b in BAD])
def test_a_wrongly_typed_record_is_skipped_or_repaired_with_a_warning(tmp_path, bad):
    log = RunLog(tmp_path/"run")
    log.log_metrics(1, {"loss": 1.0})
    with open(log.path, "a") as f: f.write(json.dumps({"time": 1.0, **bad}) + "\n")
    log.log_metrics(2, {"loss": 0.5})
    with pytest.warns(UserWarning, match=r"log\.jsonl.*line 2"):
        _all_readers(tmp_path/"run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log = RunLog(tmp_path/"run")
        assert log.last_step == 2 and list(log.metrics.loss) == [1.0, 0.5] and open_run(tmp_path/"run").state.step == 2

@pytest.mark.parametrize("odd", ODD, ids=[json.dumps(b)[:60] for b in ODD])
def test_odd_data_in_a_well_formed_record_crashes_no_reader(tmp_path, odd):
    log = RunLog(tmp_path/"run")
    log.log_metrics(1, {"loss": 1.0})
    with open(log.path, "a") as f: f.write(json.dumps({"time": 1.0, **odd}) + "\n")
    _all_readers(tmp_path/"run")

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12)
fields = st.sampled_from(["type", "time", "step", "values", "event", "message", "data", "reason", "prompt", "completion",
                          "rewards", "config", "total_steps", "path", "key", "metric", "value", "loss"])
records = st.one_of(json_values, st.dictionaries(fields, json_values, max_size=7),
                    st.fixed_dictionaries({"type": st.sampled_from(["metric", "event", "sample", "config"])},
                                          optional={f: json_values for f in ["time", "step", "values", "event", "message", "data",
                                                                            "reason", "prompt", "completion", "rewards", "config"]}),
                    st.fixed_dictionaries({"type": st.just("event"), "event": st.sampled_from(["start", "resume", "stop", "alarm", "error", "checkpoint"]),
                                           "step": st.integers(-5, 50) | json_values, "data": st.dictionaries(fields, json_values, max_size=4)}))

@settings(SETTINGS, max_examples=150)
@given(recs=st.lists(records, max_size=8))
def test_arbitrary_json_records_never_crash_a_reader(tmp_path_factory, recs):
    run = tmp_path_factory.mktemp("run")
    with open(run/"log.jsonl", "w", encoding="utf-8") as f:
        for r in recs: f.write(json.dumps(r) + "\n")                # json.dumps writes NaN/Infinity bare, as Python's json reads
        f.write("[" * 100_000 + "\n")                                # deeper than the parser can go
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _all_readers(run)

def test_only_numbers_are_decoded(tmp_path):
    log = RunLog(tmp_path)
    log.log_config({"s": "NaN", "inf": "Infinity", "f": math.inf})
    log.log_event("alarm", step=1, message="Infinity", note="NaN", loss=math.nan, nested={"x": "-Infinity", "y": -math.inf})
    log.log_metrics(1, {"loss": math.nan})
    log.log_sample(1, "NaN", "Infinity", {"r": math.inf})
    log = RunLog(tmp_path)
    assert log.config["s"] == "NaN" and log.config["inf"] == "Infinity" and log.config["f"] == math.inf
    ev = log.events.iloc[0]
    assert ev.message == "Infinity" and ev.data["note"] == "NaN" and ev.data["nested"]["x"] == "-Infinity"
    assert math.isnan(ev.data["loss"]) and ev.data["nested"]["y"] == -math.inf   # floats written as floats come back as floats
    assert math.isnan(log.metrics.loss[0]) and log.samples.rewards[0]["r"] == math.inf

def test_a_non_finite_loss_event_is_an_alarm_whatever_wrote_it(tmp_path):
    "RunLogCallback's error event (`loss` NaN), written now or by an older alignkit (the bare string \"NaN\")."
    log = RunLog(tmp_path/"new")
    log.log_event("error", step=1, message="non-finite loss", loss=math.nan, stopped=True)
    (tmp_path/"old").mkdir()
    (tmp_path/"old"/"log.jsonl").write_text('{"type":"event","time":1,"step":1,"event":"error","message":"non-finite loss","data":{"loss":"NaN","stopped":true}}\n')
    for run in ("new", "old"):
        st = DashboardState(tmp_path/run); st.update()
        assert list(st.alarms) == ["nonfinite_loss:loss"] and st.status == "failed"

def test_a_failed_write_leaves_no_torn_line_under_the_next_record(tmp_path, monkeypatch):
    log = RunLog(tmp_path)
    log.log_metrics(1, {"loss": 1.0})
    real, failed = os.write, []
    def half_then_enospc(fd, data):
        if not failed:
            failed.append(real(fd, bytes(data[:len(data)//2])))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)
    monkeypatch.setattr(os, "write", half_then_enospc)
    with pytest.raises(OSError): log.log_metrics(2, {"loss": 0.5})
    log.log_metrics(3, {"loss": 0.25})
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="line 2"): steps = [r["step"] for r in RunLog.read(tmp_path)]
    assert steps == [1, 3]

def test_a_log_replaced_by_a_bigger_one_is_read_from_its_start(tmp_path):
    a = RunLog(tmp_path/"a")
    for i in range(2): a.log_metrics(i, {"loss": float(i)})
    reader = LogReader(tmp_path/"a")
    assert [r["step"] for r in reader.poll()] == [0, 1]
    b = RunLog(tmp_path/"b")
    for i in range(10, 20): b.log_metrics(i, {"loss": float(i)})
    os.replace(b.path, a.path)
    with pytest.warns(UserWarning, match="replaced"): steps = [r["step"] for r in reader.poll()]
    assert steps == list(range(10, 20))

def test_a_symlinked_log_is_refused_not_followed(tmp_path):
    target = tmp_path/"elsewhere.txt"; target.write_text("precious\n")
    (tmp_path/"run").mkdir(); (tmp_path/"run"/"log.jsonl").symlink_to(target)
    log = RunLog(tmp_path/"run")
    with pytest.raises(TrustError, match="symbolic link"): log.log_metrics(1, {"loss": 1.0})
    with pytest.raises(TrustError, match="symbolic link"): log.log_event("start", step=0)
    assert target.read_text() == "precious\n"

def test_the_reader_reads_in_bounded_batches(tmp_path, monkeypatch):
    import alignkit.tracking as T
    log = RunLog(tmp_path)
    for i in range(300): log.log_metrics(i, {"loss": float(i), "pad": float(i)})
    log.log_sample(300, "p", "x" * 5000, {})                           # one line longer than a read
    log.log_metrics(301, {"loss": 0.0})
    monkeypatch.setattr(T, "_READ_CHUNK", 1024)
    reader, steps, sizes = LogReader(tmp_path), [], []
    while (batch := reader.poll(max_bytes=2048)):
        sizes.append(reader.offset - sum(sizes)); steps += [r["step"] for r in batch]
    assert steps == list(range(302)) and len(sizes) > 10
    assert [s > 2048 for s in sizes].count(True) == 1                   # at most max_bytes a batch; the long line alone
    st = DashboardState(tmp_path)
    polls = []
    real = st.reader.poll
    st.reader.poll = lambda **kw: polls.append(kw) or real(**kw)
    st.update()
    assert st.step == 301 and len(polls) > 1 and all(kw.get("max_bytes") for kw in polls)   # the state reads in batches too


# --- bounded dashboard memory ---

def test_series_keeps_a_bounded_history_with_its_extremes():
    s = Series(max_points=1000)
    x = np.arange(50_000.0); y = np.sin(x/500); y[12_345] = 50.0; y[33_333] = -50.0; y[40_000] = np.nan
    for a in range(0, len(x), 777): s.extend(x[a:a+777], y[a:a+777])
    assert len(s) <= 1000
    assert s.steps[0] == 0 and s.steps[-1] == 49_999 and np.all(np.diff(s.steps) > 0)
    assert 50.0 in s.values and -50.0 in s.values and np.isnan(s.values).sum() >= 1
    s.truncate_after(30_000)
    assert s.steps[-1] <= 30_000 and 50.0 in s.values and -50.0 not in s.values

@pytest.mark.slow
def test_dashboard_history_does_not_grow_from_100k_to_1m_points():
    "The most points the state ever holds while a run of 100k steps streams in, and one of 1M: the same bound."
    def most_kept(n):
        st, most, batch = DashboardState(), 0, []
        for i in range(n):
            batch.append({"type": "metric", "time": 1.0 + i, "step": i, "values": {"loss": 1.0/(i+1), "kl": 0.01}})
            if len(batch) == 5_000 or i == n - 1:
                st.feed(batch); batch = []
                most = max(most, sum(len(s) for s in st.series.values()))
        assert st.step == n - 1 and st.series["loss"].steps[-1] == n - 1 and st.series["loss"].values.max() == 1.0
        return most
    small, big = most_kept(100_000), most_kept(1_000_000)
    assert big <= small <= 2 * DashboardState().max_history      # 2 metrics, each at most max_history points
