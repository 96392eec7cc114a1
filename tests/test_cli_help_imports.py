"""`--help` answers at once: building a command's parser imports none of the heavy libraries.

Checked on the imported modules, not on a clock (timings are in bench/bench_cli_help.py and BENCHMARKS.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "pyarrow", "datasketch", "scipy", "flytekit")
PROBE = """
import json, runpy, sys
sys.argv = {argv!r}
try:
    runpy.run_module({module!r}, run_name="__main__", alter_sys=True) if {module!r} else runpy.run_path(
        {path!r}, run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


@pytest.mark.parametrize(
    ("module", "path", "argv"),
    [
        ("training", "", ["python -m training", "--help"]),
        ("training", "", ["python -m training", "train", "--help"]),
        ("training", "", ["python -m training", "evaluate", "--help"]),
        ("training", "", ["python -m training", "complete", "--help"]),
        ("dataset_builder", "", ["python -m dataset_builder", "--help"]),
        ("dataset_builder", "", ["python -m dataset_builder", "build", "--help"]),
        ("", str(ROOT / "job.py"), ["job.py", "--help"]),
        ("training.mini_experiment", "", ["python -m training.mini_experiment", "--help"]),
        ("model_card.stage", "", ["python -m model_card.stage", "--help"]),
        ("training.pretrain", "", ["python -m training.pretrain", "--help"]),
    ],
    ids=[
        "training",
        "train",
        "evaluate",
        "complete",
        "dataset_builder",
        "build",
        "job",
        "mini",
        "stage",
        "pretrain",
    ],
)
def test_help_imports_no_heavy_library(module, path, argv):
    code = PROBE.format(argv=argv, module=module, path=path, heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "usage:" in proc.stdout
    assert loaded == [], f"{' '.join(argv)} imported {loaded} just to print its help"
