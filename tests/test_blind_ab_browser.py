"""The blind A/B widget in a real browser: JupyterLab on loopback (the harness of test_dashboard_browser), a notebook
that shows `ak.blind_ab`, driven by Playwright through Debian's Chromium with the keyboard and one mouse click.

Checks that keys 1 / t / s reach the widget (and not JupyterLab's command-mode shortcuts), that the focus comes back to
the widget after a button click, that the pairs file on disk loads as preference data with the right choices, that
ties and skips are recorded in the sidecar, and that model output shows as text, not markup. Screenshots go to
test-artifacts/ (gitignored)."""
import json, time
import pytest
from test_dashboard_browser import ARTIFACTS, CHROMIUM, FLAGS, _notebook, _run_all, lab  # noqa: F401  (lab is a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOW = '''\
import alignkit as ak
P = [[{"role": "user", "content": f"What is {a} + {b}? Answer with just the number."}] for a, b in [(2, 3), (4, 4), (7, 1)]]
P.append([{"role": "user", "content": "Name a colour."}])
ab = ak.blind_ab(P, ["5", "8", "8", "red"], ["6", "9", "<script>alert(1)</script><b>7</b>", "blue"], names=("good", "bad"),
                 path="ab.jsonl", annotator="browser")
ab
'''

def _lines(p):
    return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []

def _wait_lines(p, n, timeout=30):
    deadline = time.monotonic() + timeout
    while len(_lines(p)) < n and time.monotonic() < deadline: time.sleep(0.2)
    return _lines(p)

def test_blind_ab_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright
    import alignkit as ak
    url, token, root = lab
    _notebook(root / "ab.ipynb", (SHOW,))
    ARTIFACTS.mkdir(exist_ok=True)
    side = root / "ab.judgments.jsonl"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        try:
            _run_all(page, url, token, "ab.ipynb")
            keys = page.locator(".ak-blind-ab .ak-ab-keys")
            keys.wait_for(timeout=120_000)
            page.wait_for_function("() => document.activeElement && document.activeElement.classList.contains('ak-ab-keys')",
                                   timeout=30_000)                     # the widget takes the focus when it appears
            # seed 0 shows good first on prompts 1 and 2, bad first on prompt 3
            page.keyboard.press("1")                                   # prompt 1: Response 1 (good)
            assert len(_wait_lines(side, 1)) == 1
            page.wait_for_function("() => document.querySelector('.ak-blind-ab .ak-progress').textContent.startsWith('1 / 4')")
            page.keyboard.press("t")                                   # prompt 2: a tie
            assert len(_wait_lines(side, 2)) == 2
            page.wait_for_function("() => document.querySelector('.ak-blind-ab .ak-r1') && "
                                   "document.querySelector('.ak-blind-ab .ak-r1').textContent.includes('<script>')")
            r1 = page.locator(".ak-blind-ab .ak-r1")
            assert r1.inner_text().startswith("<script>alert(1)</script><b>7</b>")      # shown as text: escaped
            assert page.locator(".ak-blind-ab .ak-r1 script, .ak-blind-ab .ak-r1 b").count() == 0
            page.locator(".ak-blind-ab").screenshot(path=str(ARTIFACTS / "browser_blind_ab.png"))
            page.locator(".ak-blind-ab button", has_text="2 is better").click()     # prompt 3: Response 2 (good)
            assert len(_wait_lines(side, 3)) == 3
            page.wait_for_function("() => document.activeElement && document.activeElement.classList.contains('ak-ab-keys')",
                                   timeout=10_000)                     # the focus came back after the click
            page.keyboard.press("s")                                   # prompt 4: skipped
            judgments = _wait_lines(side, 4)
            assert [j["verdict"] for j in judgments] == ["a", "tie", "a", "skip"], judgments
            assert [j["shown"] for j in judgments] == [1, "tie", 2, "skip"]
            data = ak.load_data(root / "ab.jsonl", kind="preference")
            rows = data.to_list()
            assert data.format == "conversational" and len(rows) == 2
            assert [r["chosen"][0]["content"] for r in rows] == ["5", "8"]
            assert [r["rejected"][0]["content"] for r in rows] == ["6", "<script>alert(1)</script><b>7</b>"]
            assert all(r["source"] == "blind_ab" and r["annotator"] == "browser" and r["chosen_model"] == "good" for r in rows)
            page.wait_for_function("() => document.querySelector('.ak-blind-ab .ak-progress').textContent.startsWith('4 / 4')")
            assert "83%" in page.locator(".ak-blind-ab .ak-winrate").inner_text()        # (2 + ½) / 3
            # the keys never reached JupyterLab: "1" in command mode would have made the cell a heading
            assert page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.cells.get(0).type") == "code"
            page.locator(".ak-blind-ab").screenshot(path=str(ARTIFACTS / "browser_blind_ab_done.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser_blind_ab_failure.png"))
            raise
        finally:
            browser.close()
