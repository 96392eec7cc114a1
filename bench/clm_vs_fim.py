"""CLM vs FIM fine-tuning, several seeds, on the same tasks: per seed and seed-averaged, with intervals.

    python bench/clm_vs_fim.py --fim RUN_F0 RUN_F1 RUN_F2 --clm RUN_C0 RUN_C1 RUN_C2 [--out FILE.json]

Each RUN is an evaluation folder (`python -m training evaluate --out RUN/eval_results.json`) of one adapter,
all scored on the same tasks (`--infill-from` one tasks file). Per seed: the adapter's held-out bits per byte
(with its document-resampled interval) and its infilling metrics. Seed-averaged: each task's metric is
averaged over a system's seeds, then FIM − CLM is a paired bootstrap over tasks (training/evaluation's own
intervals), so the interval covers task sampling with seed noise averaged out; the spread over seeds is shown
beside it. Likelihoods are ratios of sums (nats per char of the middles). Where every run wrote its
per-document NLLs (heldout_documents.jsonl), held-out bits per byte gets the same seed-averaged paired
difference, resampling documents.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METRICS = ("exact_match", "edit_similarity", "valid_fill")


def _rows(run: Path) -> dict[str, dict]:
    rows = {}
    for line in (run / "infilling_outputs.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("model") == "adapter" and row.get("benchmark", "infilling") == "infilling":
            rows[row["task_id"]] = row
    return rows


def _seed_view(run: Path, ids: list[str]) -> dict:
    """One run: held-out bits per byte (all test documents) and its infilling metrics on `ids` only, the tasks
    every run scored (a main run may have scored more)."""
    results = json.loads((run / "eval_results.json").read_text())
    bpb = results["held_out_bits_per_byte"]["systems"]["adapter"]["overall"]
    rows = _rows(run)
    view = {"bits_per_byte": bpb["bits_per_byte"], "bits_per_byte_ci95": bpb["ci95"], "tasks": len(ids)}
    for m in METRICS:
        values = [float(rows[t][m]) for t in ids if rows[t].get(m) is not None]
        view[m] = math.fsum(values) / len(values) if values else float("nan")
    for mode in ("psm", "spm"):
        nats = math.fsum(rows[t][f"nll_{mode}"] for t in ids)
        view[f"nats_per_char_{mode}"] = nats / math.fsum(rows[t]["chars"] for t in ids)
    return view


def _averaged(runs: list[Path], ids: list[str]) -> dict[str, list[float]]:
    per_run = [_rows(r) for r in runs]
    out: dict[str, list[float]] = {}
    for m in METRICS:
        out[m] = [
            math.fsum(float(rows[t][m]) for rows in per_run if rows[t].get(m) is not None)
            / max(1, sum(rows[t].get(m) is not None for rows in per_run))
            for t in ids
        ]
    for mode in ("psm", "spm"):
        out[f"nll_{mode}"] = [math.fsum(rows[t][f"nll_{mode}"] for rows in per_run) / len(runs) for t in ids]
    out["chars"] = [per_run[0][t]["chars"] for t in ids]
    return out


def _documents(run: Path) -> dict[tuple[str, str], tuple[float, int]] | None:
    """(repo, path) -> (the adapter's summed NLL in nats, bytes), or None for a run without the file."""
    path = run / "heldout_documents.jsonl"
    if not path.exists():
        return None
    rows = (json.loads(line) for line in path.read_text().splitlines())
    return {(r["repo"], r["path"]): (r["nats"]["adapter"], r["bytes"]) for r in rows}


def heldout_difference(fim: list[dict | None], clm: list[dict | None], seed: int = 0) -> dict | None:
    """FIM − CLM held-out bits per byte from each run's `_documents`, each document's NLL averaged over a
    system's seeds, paired bootstrap over documents; None unless every run has per-document NLLs."""
    from training.evaluation import intervals

    per_run = [*fim, *clm]
    if any(d is None for d in per_run):
        return None
    keys = sorted(per_run[0])
    if any(sorted(d) != keys for d in per_run):
        raise SystemExit("the runs scored different held-out documents: compare runs of one test split")
    ln2 = math.log(2)

    def bits(runs: list[dict]) -> list[float]:
        return [math.fsum(d[k][0] for d in runs) / len(runs) / ln2 for k in keys]

    a, b = bits(per_run[: len(fim)]), bits(per_run[len(fim) :])
    sizes = [per_run[0][k][1] for k in keys]
    value = (math.fsum(a) - math.fsum(b)) / math.fsum(sizes)
    return {"documents": len(keys), "value": value, "ci95": intervals.paired_ratio_ci(a, b, sizes, seed)}


def _differences(fim: list[Path], clm: list[Path], ids: list[str], seed: int) -> dict:
    from training.evaluation import intervals

    a, b = _averaged(fim, ids), _averaged(clm, ids)
    diff = {}
    for m in METRICS:
        value = math.fsum(a[m]) / len(ids) - math.fsum(b[m]) / len(ids)
        diff[m] = {"value": value, "ci95": intervals.paired_ci(a[m], b[m], seed)}
    for mode in ("psm", "spm"):
        na, nb, d = a[f"nll_{mode}"], b[f"nll_{mode}"], a["chars"]
        value = (math.fsum(na) - math.fsum(nb)) / math.fsum(d)
        diff[f"nats_per_char_{mode}"] = {"value": value, "ci95": intervals.paired_ratio_ci(na, nb, d, seed)}
    return diff


def compare(fim: list[Path], clm: list[Path], seed: int = 0) -> dict:
    ids = sorted(set.intersection(*(set(_rows(r)) for r in fim + clm)))
    docs_f, docs_c = [_documents(r) for r in fim], [_documents(r) for r in clm]
    # The i-th FIM run against the i-th CLM run: the same seed, so the same data order and LoRA init; the
    # per-seed differences show whether the seed-averaged one holds seed by seed.
    pairs = [
        {**_differences([f], [c], ids, seed), "heldout_bits_per_byte": heldout_difference([df], [dc], seed)}
        for f, c, df, dc in zip(fim, clm, docs_f, docs_c, strict=False)
    ]
    return {
        "tasks": len(ids),
        "seeds": {"fim": [_seed_view(r, ids) for r in fim], "clm": [_seed_view(r, ids) for r in clm]},
        "fim_minus_clm_seed_averaged": _differences(fim, clm, ids, seed),
        "fim_minus_clm_per_seed": pairs,
        "fim_minus_clm_heldout_bits_per_byte": heldout_difference(docs_f, docs_c, seed),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fim", nargs="+", type=Path, required=True, help="evaluation folders, one per seed")
    parser.add_argument("--clm", nargs="+", type=Path, required=True, help="evaluation folders, one per seed")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    report = compare(args.fim, args.clm)
    cols = ("bits_per_byte", "nats_per_char_psm", "nats_per_char_spm", *METRICS)
    print(f"{report['tasks']} tasks scored by every run")
    print("objective seed " + " ".join(f"{c:>18s}" for c in cols))
    for objective, views in report["seeds"].items():
        for i, v in enumerate(views):
            print(f"{objective:9s} {i:4d} " + " ".join(f"{v[c]:>18.4f}" for c in cols))
        for c in cols:
            values = [v[c] for v in views]
            print(f"  {objective} {c}: mean {sum(values) / len(values):.4f}, seed range "
                  f"[{min(values):.4f}, {max(values):.4f}]")  # fmt: skip
    print("FIM − CLM, seed-averaged per task, paired bootstrap over tasks:")
    for m, d in report["fim_minus_clm_seed_averaged"].items():
        lo, hi = d["ci95"]
        print(f"  {m:20s} {d['value']:+.4f} [{lo:+.4f}, {hi:+.4f}]")
    print("FIM − CLM per seed (run i against run i), paired bootstrap over tasks:")
    for m in [*report["fim_minus_clm_seed_averaged"], "heldout_bits_per_byte"]:
        per_seed = [d[m] for d in report["fim_minus_clm_per_seed"] if d[m] is not None]
        if not per_seed:
            continue
        cells = [f"{d['value']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]" for d in per_seed]
        print(f"  {m:20s} " + " | ".join(cells))
    held = report["fim_minus_clm_heldout_bits_per_byte"]
    if held is not None:
        lo, hi = held["ci95"]
        print(f"FIM − CLM held-out bits per byte, seed-averaged per document, paired bootstrap over the "
              f"{held['documents']} documents: {held['value']:+.4f} [{lo:+.4f}, {hi:+.4f}]")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
