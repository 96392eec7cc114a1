"""bench/clm_vs_fim.py: seed-averaged paired differences over the tasks every run scored."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "bench" / "clm_vs_fim.py"


def _run(folder: Path, edit: list[float], nll: list[float], bpb: float) -> Path:
    folder.mkdir(parents=True)
    rows = [
        {"model": "adapter", "task_id": f"t{i}", "exact_match": 0.0, "edit_similarity": e, "valid_fill": None,
         "nll_psm": n, "nll_spm": n, "chars": 10}
        for i, (e, n) in enumerate(zip(edit, nll, strict=True))
    ] + [{"model": "base", "task_id": "t0", "edit_similarity": 9.0}]  # fmt: skip
    (folder / "infilling_outputs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    overall = {
        "exact_match": 0.0,
        "edit_similarity": sum(edit) / len(edit),
        "valid_fill": None,
        "nats_per_char_psm": sum(nll) / 10 / len(nll),
        "nats_per_char_spm": 0.0,
        "tasks": len(edit),
    }
    results = {
        "held_out_bits_per_byte": {
            "systems": {"adapter": {"overall": {"bits_per_byte": bpb, "ci95": [0, 1]}}}
        },
        "infilling": {"adapter": {"overall": overall}},
    }
    (folder / "eval_results.json").write_text(json.dumps(results))
    return folder


def test_seed_averaged_difference(tmp_path):
    spec = importlib.util.spec_from_file_location("clm_vs_fim", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    fim = [_run(tmp_path / f"f{s}", [0.5 + 0.1 * s] * 4, [10.0] * 4, 2.0) for s in range(3)]
    clm = [_run(tmp_path / f"c{s}", [0.2] * 4, [12.0] * 4, 2.1) for s in range(3)]
    report = bench.compare(fim, clm)
    assert report["tasks"] == 4
    diff = report["fim_minus_clm_seed_averaged"]
    assert diff["edit_similarity"]["value"] == pytest.approx(0.6 - 0.2)
    assert diff["nats_per_char_psm"]["value"] == pytest.approx(-0.2)
    assert [v["bits_per_byte"] for v in report["seeds"]["clm"]] == [2.1, 2.1, 2.1]
