"""CPU and memory of the monitor probing 100 local HTTP targets every 10 s, against blackbox_exporter.

The monitor runs as ``eventsink monitor`` (a subprocess, reporting to a local stand-in of the emergency
API); the baseline is Prometheus blackbox_exporter probing the same 100 URLs at the same rate, driven
the way Prometheus scrapes it. Each process is measured alone with psutil after a warm-up: CPU time
used per wall second (percent of one core) and resident memory (mean and max of 1 s samples). The two
alternate over ``--rounds`` (each round swaps which runs first, each run lasting seconds/rounds), so
load from elsewhere on the shared machine hits both alike; CPU and mean RSS are averaged over rounds.

    python bench/monitors_cost.py [--seconds 50] [--targets 100] [--interval 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.monitors.fake_api import KEY, FakeApi  # noqa: E402
from tests.monitors.targets import DelayServer, closed_port  # noqa: E402

BLACKBOX = shutil.which("prometheus-blackbox-exporter") or "/usr/bin/prometheus-blackbox-exporter"
WARMUP_S = 5.0


def measure(pid: int, seconds: float) -> dict[str, float]:
    """CPU percent of one core and RSS (MiB) of a process (threads included) over ``seconds``."""
    proc = psutil.Process(pid)
    time.sleep(WARMUP_S)
    start_cpu, start = sum(proc.cpu_times()[:2]), time.monotonic()
    rss = []
    while time.monotonic() - start < seconds:
        rss.append(proc.memory_info().rss / 2**20)
        time.sleep(1.0)
    cpu = sum(proc.cpu_times()[:2]) - start_cpu
    wall = time.monotonic() - start
    return {"cpu_pct": round(100 * cpu / wall, 2), "cpu_s": round(cpu, 3), "wall_s": round(wall, 1),
            "rss_mean_mib": round(sum(rss) / len(rss), 1), "rss_max_mib": round(max(rss), 1)}


def run_monitor(urls: list[str], interval: float, seconds: float, workdir: Path) -> tuple[dict[str, float], int]:
    api = FakeApi()
    targets = "".join(f'[[targets]]\nname = "t{i}"\nkind = "http"\nurl = "{url}"\ninterval_s = {interval}\n'
                      f"timeout_s = 5\n" for i, url in enumerate(urls))
    config = workdir / "monitor.toml"
    config.write_text(f'region = "bench"\napi_url = "{api.url}"\napi_key = "{KEY}"\nspool_dir = "spool"\n'
                      f"{targets}")
    process = subprocess.Popen([sys.executable, "-m", "sink_lib.cli", "monitor", "--config", str(config)])
    try:
        result = measure(process.pid, seconds)
    finally:
        process.terminate()
        process.wait(30)
        api.close()
    return result, len(api.events)


def run_blackbox(urls: list[str], interval: float, seconds: float, workdir: Path) -> tuple[dict[str, float], int]:
    config = workdir / "blackbox.yml"
    config.write_text("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n"
                      "    http:\n      preferred_ip_protocol: ip4\n")
    port = closed_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([BLACKBOX, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = threading.Event()
    probes = [0]

    def scrape(url: str, offset: float) -> None:  # what Prometheus does: one /probe per target per interval
        if stop.wait(offset):
            return
        while not stop.is_set():
            query = urllib.parse.urlencode({"target": url, "module": "http_2xx"})
            try:
                urllib.request.urlopen(f"{base}/probe?{query}", timeout=10).read()
                probes[0] += 1
            except OSError:
                pass
            stop.wait(interval)

    time.sleep(1.0)
    threads = [threading.Thread(target=scrape, args=(u, i * interval / len(urls)), daemon=True)
               for i, u in enumerate(urls)]
    for thread in threads:
        thread.start()
    try:
        result = measure(process.pid, seconds)
    finally:
        stop.set()
        process.terminate()
        process.wait(30)
    return result, probes[0]


def alternate(urls: list[str], interval: float, seconds: float, rounds: int,
              workdir: Path) -> tuple[dict[str, float], int, dict[str, float], int]:
    """Monitor and blackbox_exporter measured in alternation; (ours, events, theirs, probes) over all rounds."""
    runs: dict[str, list[tuple[dict[str, float], int]]] = {"ours": [], "theirs": []}
    tools = [("ours", run_monitor), ("theirs", run_blackbox)]
    for round_ in range(rounds):
        for name, run in tools if round_ % 2 == 0 else tools[::-1]:
            folder = workdir / f"{name}-{round_}"
            folder.mkdir()
            runs[name].append(run(urls, interval, seconds / rounds, folder))

    def combined(results: list[tuple[dict[str, float], int]]) -> tuple[dict[str, float], int]:
        measures = [m for m, _ in results]
        merged = {
            "cpu_pct": round(sum(m["cpu_pct"] for m in measures) / len(measures), 2),
            "cpu_s": round(sum(m["cpu_s"] for m in measures), 3),
            "wall_s": round(sum(m["wall_s"] for m in measures), 1),
            "rss_mean_mib": round(sum(m["rss_mean_mib"] for m in measures) / len(measures), 1),
            "rss_max_mib": max(m["rss_max_mib"] for m in measures),
            "cpu_pct_per_round": [m["cpu_pct"] for m in measures],
        }
        return merged, sum(count for _, count in results)

    ours, events = combined(runs["ours"])
    theirs, probes = combined(runs["theirs"])
    return ours, events, theirs, probes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=50.0, help="Measured seconds per tool (after warm-up).")
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of monitor and blackbox_exporter")
    args = parser.parse_args()
    server = DelayServer()
    urls = [f"{server.base}/?delay_ms=20&size=2000&t={i}" for i in range(args.targets)]
    workdir = Path(tempfile.mkdtemp(prefix="monitors-cost-"))
    try:
        ours, events, theirs, probes = alternate(urls, args.interval, args.seconds, args.rounds, workdir)
    finally:
        server.close()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = [("eventsink monitor", ours, f"{events} events reported"), ("blackbox_exporter", theirs, f"{probes} probes")]
    print(f"{args.targets} HTTP targets every {args.interval:g} s, "
          f"measured {args.seconds:g} s after {WARMUP_S:g} s warm-up")
    print(f"{'process':<20} {'CPU % of a core':>16} {'RSS mean MiB':>13} {'RSS max MiB':>12}  work")
    for name, m, work in rows:
        print(f"{name:<20} {m['cpu_pct']:>16.2f} {m['rss_mean_mib']:>13.1f} {m['rss_max_mib']:>12.1f}  {work}")
    ratio_cpu = ours["cpu_pct"] / theirs["cpu_pct"] if theirs["cpu_pct"] else float("inf")
    ratio_rss = ours["rss_mean_mib"] / theirs["rss_mean_mib"]
    print(f"ratio monitor/blackbox: CPU {ratio_cpu:.2f}x, RSS {ratio_rss:.2f}x")
    out = ROOT / "bench" / "results" / "monitors_cost.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"targets": args.targets, "interval_s": args.interval, "seconds": args.seconds,
                               "rounds": args.rounds,
                               "eventsink": ours, "blackbox": theirs, "events_reported": events,
                               "blackbox_probes": probes, "ratio_cpu": round(ratio_cpu, 3),
                               "ratio_rss": round(ratio_rss, 3)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
