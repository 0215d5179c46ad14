"""Shared helpers of the benchmarks: result files, percentiles, a 1 KB event payload."""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


def payload_1kb(i: int) -> dict[str, Any]:
    """Data of a storage.file.uploaded event whose serialised envelope is about 1 KB."""
    return {"file_id": f"file-{i:08d}", "dataset_id": "d" * 400, "space_id": "s" * 390, "bytes": 1000 + i}


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Write ``result`` (plus machine facts) to bench/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "python": platform.python_version(), **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return path
