"""Take this machine out of the stored notebook outputs (after `nbdev-clean`): temporary folders become `/tmp/…`,
the checkout's absolute path goes (paths read relative to the repository root), site-packages paths lose the venv,
and progress bars a library printed to stderr (tqdm's `NN%|…|` frames) are dropped, with the stream if nothing else is left.
Only outputs change; sources are left as written. `make clean-nbs` runs it; tests/test_docs.py checks the result."""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = [(re.compile(r"/tmp/tmp[\w.-]+"), "/tmp/…"), (re.compile(r"/tmp/pytest-of-[\w.-]+/[\w.-]+"), "/tmp/…"),
         (re.compile(re.escape(str(ROOT)) + r"/"), ""), (re.compile(r"\S*/site-packages/"), "site-packages/")]

def clean(text: str) -> str:
    for rx, to in RULES: text = rx.sub(to, text)
    return text

BAR = re.compile(r"\d+%\|")
WARN_CALL = re.compile(r"^\s*warnings\.warn\($")

def _no_bars(text: str) -> str:
    "`text` without tqdm frames: each line's carriage-return segments that are bars go, and lines left empty by that."
    out, dropped = [], False
    for line in text.split("\n"):
        segs = line.split("\r")
        keep = [x for x in segs if not BAR.search(x)]
        if len(keep) == len(segs) and WARN_CALL.match(line) and dropped: continue     # the source line of a warning cut with its bar
        dropped = len(keep) < len(segs)
        if len(keep) == len(segs) or any(x.strip() for x in keep): out.append("\r".join(keep))
    return "\n".join(out)

def _streams(outputs: list) -> list:
    res = []
    for o in outputs:
        if o.get("output_type") == "stream" and o.get("name") == "stderr":
            t = _no_bars("".join(o["text"]) if isinstance(o["text"], list) else o["text"])
            if not t.strip(): continue
            o = {**o, "text": t}
        res.append(o)
    return res

def _walk(o):
    if isinstance(o, str): return clean(o)
    if isinstance(o, list): return [_walk(x) for x in o]
    if isinstance(o, dict): return {k: _walk(v) for k, v in o.items()}
    return o

def clean_notebook(path: Path) -> bool:
    nb = json.loads(path.read_text())
    changed = False
    for c in nb.get("cells", []):
        if "outputs" in c:
            new = _streams(_walk(c["outputs"]))
            if new != c["outputs"]: c["outputs"], changed = new, True
    if changed: path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return changed

if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]] or sorted((ROOT/"nbs").glob("*.ipynb"))
    print(f"clean_outputs: {sum(clean_notebook(p) for p in paths)} of {len(paths)} notebooks changed")
