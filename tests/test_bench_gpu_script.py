"""The prepared GPU benchmarks (bench/gpu_train_throughput.py, bench/bench_eval_cpu.py --device cuda): the
length-mix arithmetic is exact, and both scripts run on a CPU with tiny shapes and the GPU's bf16 (the same
code path the H100 run takes)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from training.config import load_recipe

SCRIPT = Path(__file__).parents[1] / "bench" / "gpu_train_throughput.py"


@pytest.fixture  # per test: the CPU smoke run changes the module's CONTEXT
def bench():
    spec = importlib.util.spec_from_file_location("gpu_train_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_documents_are_chunked_to_the_budget_with_bos_and_eos(bench) -> None:
    budget = bench.CHUNK_BUDGET
    assert bench.chunk_lengths([0, budget - 2, budget - 1, 2 * budget - 2]) == [
        2,
        budget,
        budget,
        1,
        budget,
        budget,
    ]


def test_length_mix_fill_and_row_ratio(bench, tmp_path: Path) -> None:
    assert load_recipe("codellama-7b-lora", {"use_cpu": True, "bf16": False}).max_length == bench.CONTEXT
    half = bench.CONTEXT // 2
    lengths = tmp_path / "lengths.json"
    lengths.write_text(json.dumps([half - 2, half - 2, 98]))  # chunks half, half, 100
    mix = bench.length_mix(str(lengths))
    assert (mix["naive_rows"], mix["packed_rows"]) == (3, 2)  # two halves fill a row; 100 needs another
    real = 2 * half + 100
    assert mix["naive_fill"] == pytest.approx(real / (3 * bench.CONTEXT))
    assert mix["packed_fill"] == pytest.approx(real / (2 * bench.CONTEXT))
    assert mix["row_ratio"] == pytest.approx(1.5)


@pytest.mark.slow
def test_prepared_script_runs_on_cpu_with_tiny_shapes(bench, tmp_path: Path, capsys) -> None:
    lengths = tmp_path / "lengths.json"
    lengths.write_text(json.dumps([30, 500, 1200, 5000, 80, 2000] * 4))
    bench.main(
        [
            *("--lengths", str(lengths), "--device", "cpu", "--shapes", "tiny"),
            *("--steps", "1", "--warmup", "1", "--rows-per-step", "1", "--context", "1024"),
        ]
    )
    out = capsys.readouterr().out
    assert "real tokens per 1024-token row" in out and bench.CONTEXT == 1024
    assert "recipe (bfd packed, padding-free)" in out and "naive (padded to 1024)" in out
    ratio = float(out.split("ratio recipe / naive: ")[1].split("x")[0])
    assert ratio > 0


def test_eval_benchmark_runs_in_bf16_and_writes_its_numbers(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_eval_cpu", SCRIPT.with_name("bench_eval_cpu.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "eval.json"
    module.main(
        [
            *("--dtype", "bfloat16", "--context", "64", "--docs", "3", "--mean-tokens", "80"),
            *("--batch-sizes", "2", "--gen-tasks", "2", "--gen-prompt-tokens", "16", "--max-new-tokens", "3"),
            *("--json", str(out)),
        ]
    )
    results = json.loads(out.read_text())
    assert results["dtype"] == "bfloat16" and results["context"] == 64
    # Strides context and context // 2; every token of the 3 documents is scored once per stride.
    assert [r["stride"] for r in results["perplexity"]] == [64, 32]
    assert results["perplexity"][0]["tokens"] == results["perplexity"][1]["tokens"] > 0
    assert results["generation"] == [
        {"batch_size": 2, "tokens": 6, "seconds": results["generation"][0]["seconds"]}
    ]
