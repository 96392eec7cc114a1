"""bench/clm_vs_fim.py: seed-averaged paired differences over the tasks every run scored."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "bench" / "clm_vs_fim.py"


def _run(
    folder: Path, edit: list[float], nll: list[float], bpb: float, docs: list[float] | None = None
) -> Path:
    folder.mkdir(parents=True)
    if docs is not None:  # per-document NLLs (nats) of two documents of 100 bytes each
        rows = [{"repo": "r", "path": f"d{i}", "bytes": 100, "nats": {"adapter": n, "base": 0.0}}
                for i, n in enumerate(docs)]  # fmt: skip
        (folder / "heldout_documents.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
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


def _bench():
    spec = importlib.util.spec_from_file_location("clm_vs_fim", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_seed_averaged_difference(tmp_path):
    bench = _bench()
    fim = [_run(tmp_path / f"f{s}", [0.5 + 0.1 * s] * 4, [10.0] * 4, 2.0) for s in range(3)]
    clm = [_run(tmp_path / f"c{s}", [0.2] * 4, [12.0] * 4, 2.1) for s in range(3)]
    report = bench.compare(fim, clm)
    assert report["tasks"] == 4
    diff = report["fim_minus_clm_seed_averaged"]
    assert diff["edit_similarity"]["value"] == pytest.approx(0.6 - 0.2)
    assert diff["nats_per_char_psm"]["value"] == pytest.approx(-0.2)
    assert [v["bits_per_byte"] for v in report["seeds"]["clm"]] == [2.1, 2.1, 2.1]
    per_seed = report["fim_minus_clm_per_seed"]  # seed s against seed s: 0.5 + 0.1 s − 0.2
    assert [d["edit_similarity"]["value"] for d in per_seed] == pytest.approx([0.3, 0.4, 0.5])
    assert report["fim_minus_clm_heldout_bits_per_byte"] is None  # no per-document NLLs: no paired figure


def test_heldout_difference_is_paired_over_documents(tmp_path):
    bench = _bench()
    ln2 = math.log(2)
    # FIM seeds: documents at 100 and 200 nats, then 120 and 180 (mean 110, 190); CLM: 150 and 250 every seed.
    fim = [
        _run(tmp_path / "f0", [0.5], [1.0], 2.0, [100.0, 200.0]),
        _run(tmp_path / "f1", [0.5], [1.0], 2.0, [120.0, 180.0]),
    ]
    clm = [_run(tmp_path / f"c{s}", [0.5], [1.0], 2.0, [150.0, 250.0]) for s in range(2)]
    report = bench.compare(fim, clm)
    held = report["fim_minus_clm_heldout_bits_per_byte"]
    assert held["documents"] == 2
    assert held["value"] == pytest.approx(((110 + 190) - (150 + 250)) / ln2 / 200)
    per_seed = [d["heldout_bits_per_byte"]["value"] for d in report["fim_minus_clm_per_seed"]]
    assert per_seed == pytest.approx([(300 - 400) / ln2 / 200] * 2)  # each FIM seed sums to 300 nats
    lo, hi = held["ci95"]
    assert lo <= held["value"] <= hi < 0  # every resample favours FIM here
    other = _run(tmp_path / "odd", [0.5], [1.0], 2.0, [1.0])  # one document fewer: a different split
    with pytest.raises(SystemExit, match="different held-out documents"):
        bench.compare(fim, [*clm[:1], other])
