"""Accuracy of the http probe against Prometheus blackbox_exporter, on the same target, in the same run.

A local server waits a known delay (0, 50, 200 ms) before its first byte. Both probers measure it,
interleaved sample by sample so they share the machine's noise. The injected delay is the truth for
time-to-first-byte (ours ``ttfb_ms``, blackbox's ``phase="processing"``) and for the total (ours
``total_ms``, blackbox's ``probe_duration_seconds``); we report the median and p90 of each error.
Goal: our median error never worse than blackbox_exporter's by more than 1 ms.

    python bench/monitors_accuracy.py [--samples 40]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitors.probes.http import HttpProbe  # noqa: E402
from monitors.targets import HttpTarget  # noqa: E402
from tests.monitors.targets import DelayServer, closed_port, make_certificate, server_context  # noqa: E402

BLACKBOX = shutil.which("prometheus-blackbox-exporter") or "/usr/bin/prometheus-blackbox-exporter"
DELAYS_MS = (0, 50, 200)
GOAL_MS = 1.0


def start_blackbox(workdir: Path, ca_file: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = workdir / "blackbox.yml"
    config.write_text(f"""modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: {ca_file}
""")
    port = closed_port()
    process = subprocess.Popen([BLACKBOX, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/metrics", timeout=1).read()
            return process, base
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("blackbox_exporter did not start")


def blackbox_probe(base: str, url: str) -> tuple[float, float]:
    """(ttfb_ms, total_ms) as blackbox_exporter reports them for one probe."""
    query = urllib.parse.urlencode({"target": url, "module": "http_2xx"})
    text = urllib.request.urlopen(f"{base}/probe?{query}", timeout=10).read().decode()
    if not re.search(r"^probe_success 1$", text, re.M):
        raise RuntimeError(f"blackbox probe of {url} failed:\n{text}")
    return _metric(text, r'probe_http_duration_seconds\{phase="processing"\}') * 1000, \
        _metric(text, "probe_duration_seconds") * 1000


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    if found is None:
        raise RuntimeError(f"no {name} in the blackbox answer")
    return float(found[1])


def our_probe(probe: HttpProbe) -> tuple[float, float]:
    """(ttfb_ms, total_ms) as the monitor's http probe reports them."""
    result = probe.run()
    if not result.ok:
        raise RuntimeError(f"probe failed: {result.error}")
    return result.data["ttfb_ms"], result.data["total_ms"]


def summary(errors: list[float]) -> dict[str, float]:
    ordered = sorted(errors)
    return {"median_ms": round(statistics.median(ordered), 3),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
            "mean_abs_ms": round(statistics.fmean(abs(e) for e in ordered), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=40, help="Probes per tool and case.")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="monitors-accuracy-"))
    cert, key = make_certificate(workdir, days=30)
    plain, tls = DelayServer(), DelayServer(server_context(cert, key))
    blackbox, bb_base = start_blackbox(workdir, cert)
    cases = [("http", plain, d) for d in DELAYS_MS] + [("https", tls, 50)]
    rows = []
    try:
        for scheme, server, delay in cases:
            url = f"{server.base}/?delay_ms={delay}&size=1000"
            ours = HttpProbe(HttpTarget(name="bench", kind="http", url=url, ca_file=cert))
            for _ in range(3):  # warm both up (first connections, TLS context, thread start)
                our_probe(ours)
                blackbox_probe(bb_base, url)
            samples: dict[str, list[tuple[float, float]]] = {"eventsink": [], "blackbox": []}
            for i in range(args.samples):
                first_ours = i % 2 == 0  # alternate who goes first so both share the noise
                for name in ("eventsink", "blackbox") if first_ours else ("blackbox", "eventsink"):
                    samples[name].append(our_probe(ours) if name == "eventsink" else blackbox_probe(bb_base, url))
            row: dict[str, object] = {"case": f"{scheme} delay {delay} ms", "delay_ms": delay}
            for name, values in samples.items():
                row[name] = {"ttfb_error": summary([t - delay for t, _ in values]),
                             "total_error": summary([total - delay for _, total in values])}
            rows.append(row)
    finally:
        blackbox.terminate()
        blackbox.wait(10)
        plain.close()
        tls.close()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"http probe accuracy vs blackbox_exporter ({args.samples} samples each; error = measured - injected)")
    print(f"{'case':<22} {'metric':<6} {'eventsink med/p90':>19} {'blackbox med/p90':>19} {'ours-bb (med)':>14}")
    worst = float("-inf")
    for row in rows:
        for metric in ("ttfb", "total"):
            ours = row["eventsink"][f"{metric}_error"]  # type: ignore[index]
            theirs = row["blackbox"][f"{metric}_error"]  # type: ignore[index]
            diff = abs(ours["median_ms"]) - abs(theirs["median_ms"])
            worst = max(worst, diff)
            print(f"{row['case']:<22} {metric:<6} {ours['median_ms']:>9.3f}/{ours['p90_ms']:<9.3f} "
                  f"{theirs['median_ms']:>9.3f}/{theirs['p90_ms']:<9.3f} {diff:>+14.3f}")
    verdict = "met" if worst <= GOAL_MS else "NOT met"
    print(f"goal (never worse than blackbox by more than {GOAL_MS} ms): {verdict}; worst difference {worst:+.3f} ms")
    out = ROOT / "bench" / "results" / "monitors_accuracy.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"samples": args.samples, "goal_ms": GOAL_MS, "worst_difference_ms": round(worst, 3),
                               "goal_met": worst <= GOAL_MS, "cases": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
