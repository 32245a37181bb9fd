"""The wheel builds, and installed into a clean venv without dev extras it imports and runs a tiny example."""
import os, shutil, subprocess, sys, textwrap
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.mark.slow
def test_wheel_installs_and_runs(tmp_path):
    dist, src = tmp_path/"dist", tmp_path/"src"
    # from a copy without build outputs: setuptools reuses build/lib, so a module deleted since the last build
    # (alignkit/moe.py, now the alignkit/moe/ package) would otherwise still ship
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__",
                                                             "_docs", "_site", "site", "runs", "test-artifacts", "bench-results"))
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)], check=True,
                   capture_output=True, text=True)
    wheel = next(dist.glob("alignkit-*.whl"))
    venv = tmp_path/"venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv/"bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + ["torch==2.13.0"], check=True)            # the CPU build on this machine's disk, first
    subprocess.run(pip + [str(wheel)], check=True)                  # no [dev] extras
    example = textwrap.dedent("""
        import sys, alignkit as ak
        assert "torch" not in sys.modules                           # the import stays light
        model, tok = ak.load_model("tiny-llama", quant="fp32", lora=4, seed=0)
        fp = ak.footprint(model)
        assert fp.trainable_params > 0 and fp.params["LoRA"] == fp.trainable_params
        data = ak.load_data([{"prompt": "2+2?", "completion": "4"}])
        assert data.kind == "sft"
        from pathlib import Path
        from alignkit.lora import configs_dir
        pkg = Path(ak.__file__).resolve().parent
        assert pkg.is_relative_to(Path(sys.prefix).resolve())      # the installed package, not the source tree
        assert configs_dir().resolve() == pkg/"configs"             # package data, inside the installed package
        assert {"llama-3-8b", "mixtral-8x7b"} <= set(ak.model_configs())
        assert ak.lora_budget("llama-3-8b", r=8).total_params == 8_030_261_248   # a named config, built on the meta device
        from alignkit.moe import moe_callback_for, inspect          # the subpackage, by its old names
        from alignkit.dashboard import Dashboard, DashboardState, open_run, find_chromium   # so is alignkit.dashboard
        assert not any(m in sys.modules for m in ("nbdev", "pytest", "hypothesis"))   # dev extras never needed
        print("ok", fp.total_bytes)
    """)
    env = {**os.environ, "ALIGNKIT_CACHE": str(tmp_path/"cache"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([str(venv/"bin/python"), "-c", example], check=True, capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert out.stdout.startswith("ok")
    # the wheel carries the notebooks' export, not the notebooks or the tests
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert "alignkit/models.py" in names and not any(n.startswith(("nbs/", "tests/")) for n in names)
    assert {"alignkit/moe/__init__.py", "alignkit/moe/report.py", "alignkit/configs/llama-3-8b.json"} <= set(names)
    assert {"alignkit/dashboard/__init__.py", "alignkit/dashboard/state.py", "alignkit/dashboard/views.py",
            "alignkit/dashboard/export.py"} <= set(names)
    assert "alignkit/moe.py" not in names and "alignkit/dashboard.py" not in names
