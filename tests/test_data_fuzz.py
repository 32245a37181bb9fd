"""Property-based tests for `alignkit.load_data`: valid data of every kind and format loads unchanged; malformed
rows are reported by index and field, all of them, and nothing is dropped or modified on the way."""
import copy, json

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import alignkit.data as akd
from alignkit.data import Data, DataError, load_data

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- valid data ------------------------------------------------------------------------------------------------

TEXT = st.text(min_size=1, max_size=12).filter(str.strip)
ROLES = ("system", "user", "assistant", "tool")

def msg(role): return st.builds(lambda c: {"role": role, "content": c}, TEXT)
ANY_MSG = st.sampled_from(ROLES).flatmap(msg)
# a prompt ends with a user turn; a completion/chosen/rejected ends with the assistant's; SFT messages hold one
PROMPT = st.tuples(st.lists(ANY_MSG, max_size=2), msg("user")).map(lambda t: t[0] + [t[1]])
RESPONSE = st.tuples(st.lists(ANY_MSG, max_size=2), msg("assistant")).map(lambda t: t[0] + [t[1]])
MESSAGES = st.tuples(st.lists(ANY_MSG, max_size=2), msg("assistant"), st.lists(ANY_MSG, max_size=2)).map(lambda t: t[0] + [t[1]] + t[2])
# extra columns are passed through untouched; one type per column (see test_mixed_extra_column for the others)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
EXTRA = st.sampled_from([TEXT, st.integers(-2**63, 2**63 - 1), FLOATS, st.booleans()])

# (kind, format, TRL type) -> row fields
SHAPES = {
    ("sft", "plain", "language_modeling"): {"text": TEXT},
    ("sft", "conversational", "language_modeling"): {"messages": MESSAGES},
    ("sft", "plain", "prompt_completion"): {"prompt": TEXT, "completion": TEXT},
    ("sft", "conversational", "prompt_completion"): {"prompt": PROMPT, "completion": RESPONSE},
    ("preference", "plain", "preference"): {"prompt": TEXT, "chosen": TEXT, "rejected": TEXT},
    ("preference", "conversational", "preference"): {"prompt": PROMPT, "chosen": RESPONSE, "rejected": RESPONSE},
    ("preference", "plain", "implicit_prompt_preference"): {"chosen": TEXT, "rejected": TEXT},
    ("preference", "conversational", "implicit_prompt_preference"): {"chosen": MESSAGES.filter(lambda m: m[-1]["role"] == "assistant"), "rejected": RESPONSE},
    ("unpaired", "plain", "unpaired_preference"): {"prompt": TEXT, "completion": TEXT, "label": st.booleans()},
    ("unpaired", "conversational", "unpaired_preference"): {"prompt": PROMPT, "completion": RESPONSE, "label": st.booleans()},
    ("prompt", "plain", "prompt_only"): {"prompt": TEXT, "answer": EXTRA},
    ("prompt", "conversational", "prompt_only"): {"prompt": PROMPT, "answer": EXTRA},
}

@st.composite
def datasets_(draw, min_size=1, max_size=25):
    shape = draw(st.sampled_from(sorted(SHAPES)))
    fields = {k: draw(v) if v is EXTRA else v for k, v in SHAPES[shape].items()}
    if draw(st.booleans()): fields["task"] = TEXT
    rows = draw(st.lists(st.fixed_dictionaries(fields), min_size=min_size, max_size=max_size))
    return shape, rows

def exact(x):
    "A strict fingerprint: 1, 1.0 and True differ; dict key order does not matter."
    return json.dumps(x, sort_keys=True)

@SETTINGS
@given(datasets_(), st.booleans())
def test_valid_data_loads_unchanged(case, give_kind):
    (kind, fmt, trl_type), rows = case
    before = copy.deepcopy(rows)
    data = load_data(rows, kind=kind if give_kind else None)
    assert isinstance(data, Data)
    assert (data.kind, data.format, data.trl_type) == (kind, fmt, trl_type)
    assert len(data) == len(rows)
    assert exact(data.to_list()) == exact(rows)
    assert exact([data[i] for i in range(len(data))]) == exact(rows)
    assert exact(rows) == exact(before)  # the input was not touched

@settings(max_examples=15, deadline=None)
@given(datasets_(max_size=10))
def test_jsonl_round_trip(tmp_path_factory, case):
    (kind, fmt, _), rows = case
    path = tmp_path_factory.mktemp("d")/"train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    data = load_data(path.parent)
    assert (data.kind, data.format) == (kind, fmt)
    assert exact(data.to_list()) == exact(rows)

# --- malformed rows --------------------------------------------------------------------------------------------

BAD_VALUES = [None, 0, 1.5, {"a": 1}, [], "", "   "]  # wrong in both formats: no silent format flip

def corruptions(kind, fmt, row):
    "The ways to break this row: (description, function that breaks a copy of it, field the problem names)."
    fields = [f for f in ("text", "messages", "prompt", "completion", "chosen", "rejected", "label") if f in row]
    out = []
    for f in fields:
        out.append((f"drop {f}", lambda r, f=f: r.pop(f), f))
        for v in BAD_VALUES if f != "label" else [None, 1, 0, "true", 1.0]:
            out.append((f"{f}={v!r}", lambda r, f=f, v=v: r.__setitem__(f, copy.deepcopy(v)), f))
        if isinstance(row[f], list):
            for j in range(len(row[f])):
                for role in ("robot", None, "", "Assistant"):
                    out.append((f"{f}[{j}].role={role!r}", lambda r, f=f, j=j, role=role: r[f][j].__setitem__("role", role), f"{f}[{j}].role"))
                for content in (None, "", 7):
                    out.append((f"{f}[{j}].content={content!r}", lambda r, f=f, j=j, c=content: r[f][j].__setitem__("content", c), f"{f}[{j}].content"))
                out.append((f"{f}[{j}]=str", lambda r, f=f, j=j: r[f].__setitem__(j, "hello"), f"{f}[{j}]"))
    if "task" in row: out.append(("drop task", lambda r: r.pop("task"), "task"))
    return out

@st.composite
def broken(draw, strict_minority=True):
    (kind, fmt, trl_type), rows = draw(datasets_(min_size=1, max_size=30))
    n = len(rows)
    most = (n - 1) // 2 if strict_minority else n
    assume(most >= 1)
    idx = draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=most))
    bad, expected = copy.deepcopy(rows), {}
    for i in sorted(idx):
        # dropping the same field from every row can leave another valid shape (no 'prompt': implicit-prompt preference)
        options = [o for o in corruptions(kind, fmt, bad[i]) if strict_minority or not o[0].startswith("drop")]
        desc, breakit, field = draw(st.sampled_from(options))
        breakit(bad[i])
        expected[i] = field
    return kind, bad, expected

@SETTINGS
@given(broken(), st.booleans())
def test_bad_rows_are_all_named(case, give_kind):
    kind, rows, expected = case
    before = copy.deepcopy(rows)
    with pytest.raises(DataError) as info:
        load_data(rows, kind=kind if give_kind else None)
    err = info.value
    assert err.rows == sorted(expected), str(err)
    for i, field in expected.items():
        fields = [p.field for p in err.problems if p.index == i]
        # the named field is the broken one, or (for a whole message replaced by a bad role/value) inside it
        assert any(f == field or (f or "").startswith(field.split(".")[0]) for f in fields), (i, field, fields)
    assert err.n_problems >= len(expected)
    assert exact(rows) == exact(before)  # reporting did not touch the rows

@SETTINGS
@given(broken(strict_minority=False), st.booleans())
def test_any_breakage_raises(case, give_kind):
    "Even when most rows are broken (so the majority's columns or format are themselves wrong), nothing loads."
    kind, rows, _ = case
    with pytest.raises(DataError):
        load_data(rows, kind=kind if give_kind else None)

@SETTINGS
@given(st.lists(st.one_of(TEXT, st.integers(-2**70, 2**70), FLOATS, st.booleans(), st.none(),
                          st.lists(st.one_of(TEXT, st.integers())), st.dictionaries(TEXT, st.integers())), min_size=1, max_size=12))
def test_mixed_extra_column(answers):
    "A column of any values either comes back exactly or is refused, naming rows or the column: never a silent change."
    rows = [{"prompt": f"Q{i}", "answer": a} for i, a in enumerate(answers)]
    try: data = load_data(rows)
    except DataError as e:
        assert e.problems and all(p.field == "answer" for p in e.problems), str(e)
    else:
        assert exact(data.to_list()) == exact(rows)

# --- bounds, messages, files -----------------------------------------------------------------------------------

def test_problem_bound_and_message(monkeypatch):
    monkeypatch.setattr(akd, "MAX_PROBLEMS", 7)
    rows = [{"text": "ok"}] * 100 + [{"text": None}] * 40
    with pytest.raises(DataError) as info: load_data(rows)
    err = info.value
    assert (len(err.problems), err.n_problems) == (7, 40)
    assert err.rows == list(range(100, 107))
    lines = str(err).splitlines()
    assert lines[0] == "list of 140 rows: 40 problems in 40 of 140 rows (sft data, plain):"
    assert lines[1] == "  row 100, field 'text': expected a non-empty str, got None"
    assert "  … and 33 more" in lines

def test_long_values_are_truncated():
    with pytest.raises(DataError) as info: load_data([{"text": "fine"}] * 3 + [{"text": ["x" * 10_000]}])
    assert len(str(info.value)) < 600

def test_malformed_json_lines_name_every_line(tmp_path):
    lines = ['{"text": "a"}', '{"text": "b"', '', 'not json', '{"text": "c"}']
    (tmp_path/"d.jsonl").write_text("\n".join(lines))
    with pytest.raises(DataError) as info: load_data(tmp_path/"d.jsonl")
    assert [p.line for p in info.value.problems] == [2, 4]

def test_csv_keeps_text_and_reports_bad_json(tmp_path):
    (tmp_path/"p.csv").write_text('prompt,answer\n"[{""role"": ""user"", ""content"": ""hi""}]",007\n"[{""role"": ""user""",NA\n')
    with pytest.raises(DataError) as info: load_data(tmp_path/"p.csv")
    assert [(p.index, p.line, p.field) for p in info.value.problems] == [(1, 3, "prompt")]
    (tmp_path/"q.csv").write_text('prompt,answer\nWhat is 2+2?,007\nSay hi,NA\n')
    assert load_data(tmp_path/"q.csv").to_list() == [{"prompt": "What is 2+2?", "answer": "007"}, {"prompt": "Say hi", "answer": "NA"}]
