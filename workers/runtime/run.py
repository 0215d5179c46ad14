"""``run_worker``: the entry point behind ``eventsink worker run NAME``.

Loads the plugin, builds its settings from the environment (the edge), serves ``/metrics`` when
``metrics_port`` is set, turns SIGTERM/SIGINT into a graceful stop, and runs the consumer loop.
:func:`tune_gc` sets the garbage collector for a draining process; ``eventsink worker run`` calls it,
``run_worker`` does not (it may run inside a process that is not only a worker).
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry

from sink_lib.errors import ConfigurationError
from sink_lib.settings import SinkSettings

from ..plugin import WorkerPlugin
from .consumer import Worker
from .loader import build_plugin, load_plugin_class
from .metrics import WorkerMetrics

log = logging.getLogger(__name__)

#: Allocations between young-generation collections (CPython's default is 700), and the default ratios.
GC_THRESHOLDS = (100_000, 10, 10)


def tune_gc() -> None:
    """Make cyclic garbage collection cheap for a process that drains a queue.

    A worker keeps a batch or two of parsed events alive (thousands of objects each) while it creates
    more; with CPython's default thresholds, collections run every 700 allocations and keep promoting
    those live batches, so full collections that walk every object of the process come often: about a
    quarter of a worker's CPU time in the influxdb benchmark. Freezing what start-up created (modules,
    pydantic schemas, the plugin) takes it out of every later collection, and a young-generation
    threshold of 100,000 lets a batch come and go between collections. Memory is still freed by
    reference counting at once; only garbage in reference cycles waits a little longer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@contextmanager
def stop_on_signals(stop_event: threading.Event) -> Iterator[None]:
    """Set ``stop_event`` on SIGTERM and SIGINT while inside; the previous handlers come back after.

    A second signal exits at once (``SystemExit``): nothing unwritten was acked, so whatever was in
    flight is redelivered.

    Signal handlers can only be installed from the main thread; elsewhere this does nothing and the
    caller is expected to set the event itself.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if stop_event.is_set():
            # a second signal: the operator will not wait; unacked messages go back to the queue
            log.warning("received %s again: exiting now without finishing the batch", name)
            raise SystemExit(128 + signum)
        log.info("received %s: finishing the batch in flight, then stopping", name)
        stop_event.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_worker(
    name: str | type[WorkerPlugin],
    sink_settings: SinkSettings,
    *,
    dry_run: bool = False,
    stop_event: threading.Event | None = None,
    registry: CollectorRegistry | None = None,
    **settings_overrides: Any,
) -> None:
    """Run worker ``name`` (entry-point name, ``package.module:Class`` or a plugin class) until stopped.

    Returns after a graceful stop (signal or ``stop_event``), having acked only what was written.
    ``settings_overrides`` are passed to the plugin's settings model (values not given come from the
    ``EVENTSINK_<NAME>_*`` environment). Raises ConfigurationError, PluginError, TopologyError or
    BrokerError for what retrying cannot fix.
    """
    cls = load_plugin_class(name) if isinstance(name, str) else name
    plugin = build_plugin(cls, **settings_overrides)
    metrics = WorkerMetrics(plugin.name, registry)
    stop = stop_event if stop_event is not None else threading.Event()
    server = None
    port, address = plugin.settings.metrics_port, plugin.settings.metrics_address
    if port is not None:
        try:
            server = metrics.serve(port, address)
        except OSError as exc:
            raise ConfigurationError(
                f"EVENTSINK_{plugin.name.upper()}_METRICS_PORT / _METRICS_ADDRESS: cannot serve /metrics on "
                f"{address}:{port}: {exc}"
            ) from exc
        log.info("worker %s: metrics on http://%s:%d/metrics", plugin.name, address, server.server_port)
    try:
        with stop_on_signals(stop):
            Worker(plugin, sink_settings, metrics=metrics, dry_run=dry_run, stop_event=stop).run()
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
