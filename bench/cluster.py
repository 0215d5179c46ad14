"""Publish and drain rates on the 3-node cluster (scripts/cluster.sh) beside the single default broker.

Same run, same code, alternating rounds, medians reported: EventSink.emit + flush of N ~1 KB events
with publisher confirms into one quorum queue (three replicas on the cluster), then a drain of that
queue by a consumer acking in batches (basic_qos 1000, multiple acks). The cluster's figures are
given as ratios of the single broker's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pika

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import median, payload_1kb, write_result
from sink_lib import EventSink, SinkSettings
from sink_lib.topology import declare, queue_name

ROOT = Path(__file__).resolve().parent.parent
SINGLE = "amqp://guest:guest@localhost:5672/%2F"
CLUSTER = ",".join(f"amqp://guest:guest@127.0.0.1:{5680 + n}/%2F" for n in (1, 2, 3))


def publish(url: str, exchange: str, count: int, spool: Path) -> float:
    settings = SinkSettings(amqp_url=url, exchange=exchange, spool_dir=spool)
    sink = EventSink(settings)
    sink.enqueue("storage.file.uploaded", payload_1kb(0))
    assert sink.flush(60)
    start = time.perf_counter()
    for i in range(count):
        sink.enqueue("storage.file.uploaded", payload_1kb(i))
    assert sink.flush(600)
    elapsed = time.perf_counter() - start
    stats = sink.stats()
    sink.close(10)
    assert stats["spooled"] == 0, "events were spooled: the broker was not reachable throughout"
    return count / elapsed


def drain(url: str, queue: str, expected: int) -> float:
    connection = pika.BlockingConnection(pika.URLParameters(url.split(",")[0]))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1000)
    got = 0
    start = time.perf_counter()
    for method, _props, _body in channel.consume(queue, inactivity_timeout=30):
        if method is None:
            break
        got += 1
        if got % 500 == 0 or got >= expected:
            channel.basic_ack(method.delivery_tag, multiple=True)
        if got >= expected:
            break
    elapsed = time.perf_counter() - start
    channel.cancel()
    channel.queue_delete(queue)
    connection.close()
    if got < expected:
        raise RuntimeError(f"drained {got} of {expected}")
    return got / elapsed


def one_round(url: str, count: int) -> tuple[float, float]:
    exchange = f"bench_cluster_{uuid.uuid4().hex[:8]}"
    settings = SinkSettings(amqp_url=url, exchange=exchange)
    declare(settings, ["w"])
    with tempfile.TemporaryDirectory() as spool:
        rate_pub = publish(url, exchange, count, Path(spool))
    rate_drain = drain(url, queue_name(exchange, "w"), count + 1)
    connection = pika.BlockingConnection(pika.URLParameters(url.split(",")[0]))
    connection.channel().exchange_delete(exchange)
    connection.close()
    return rate_pub, rate_drain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep-cluster", action="store_true", help="leave the cluster running afterwards")
    args = parser.parse_args()
    started = False
    if subprocess.run([str(ROOT / "scripts/cluster.sh"), "status"], capture_output=True).returncode != 0:
        subprocess.run([str(ROOT / "scripts/cluster.sh"), "start"], check=True)
        started = True
    rates: dict[str, dict[str, list[float]]] = {k: {"publish": [], "drain": []} for k in ("single", "cluster")}
    try:
        for _ in range(args.rounds):
            for name, url in (("single", SINGLE), ("cluster", CLUSTER)):
                pub, drn = one_round(url, args.events)
                rates[name]["publish"].append(pub)
                rates[name]["drain"].append(drn)
    finally:
        if started and not args.keep_cluster:
            subprocess.run([str(ROOT / "scripts/cluster.sh"), "stop"], check=False)
    result = {k: {m: round(median(v)) for m, v in d.items()} for k, d in rates.items()}
    ratios = {m: round(result["cluster"][m] / result["single"][m], 2) for m in ("publish", "drain")}
    print(f"{'':10}{'publish ev/s':>14}{'drain ev/s':>12}")
    for name in ("single", "cluster"):
        print(f"{name:10}{result[name]['publish']:>14}{result[name]['drain']:>12}")
    print(f"{'ratio':10}{ratios['publish']:>14}{ratios['drain']:>12}   (cluster / single, medians of "
          f"{args.rounds} rounds of {args.events} events)")
    write_result("cluster", {"events": args.events, "rounds": args.rounds, "rates": result, "ratios": ratios,
                             "raw": rates})


if __name__ == "__main__":
    main()
