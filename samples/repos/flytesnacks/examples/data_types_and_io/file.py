"""Files

A ``FlyteFile`` is uploaded to blob storage when a task returns it and downloaded when the next task
opens it. Tasks only ever see local paths; where the bytes live in between is Flyte's business.
"""

import csv
import tempfile
from pathlib import Path

from flytekit import task, workflow
from flytekit.types.file import FlyteFile


@task
def write_report(rows: list[str]) -> FlyteFile:
    """Write one CSV row per input string and return the file."""
    path = Path(tempfile.mkdtemp()) / "report.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "value"])
        for index, value in enumerate(rows):
            writer.writerow([index, value])
    return FlyteFile(path)


@task
def count_rows(report: FlyteFile) -> int:
    """Opening the file triggers the download on a cluster; locally it is just a path."""
    with open(report, newline="") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


@workflow
def report_wf(rows: list[str]) -> int:
    return count_rows(report=write_report(rows=rows))


if __name__ == "__main__":
    print(report_wf(rows=["a", "b", "c"]))
