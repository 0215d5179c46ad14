"""The worker runtime: everything around a plugin's ``write`` (AMQP loop, batching, acks, retries,
dead letters, metrics, signals). Plugins never import from here; the CLI and tests do.
"""

from sink_lib.retry import Backoff

from .batcher import AckTracker, Batcher, Delivery
from .consumer import QueueConsumer
from .deadletter import DeadLetterPublisher, dead_letter_properties, reason_of
from .loader import PluginInfo, build_plugin, describe_plugins, load_plugin_class
from .metrics import WorkerMetrics
from .parse import parse_body
from .policy import Outcome, Prepared, Settlement, outcome, prepare, settle_attempt, settle_parsed
from .processor import BatchProcessor
from .run import run_worker, stop_on_signals, tune_gc

__all__ = [
    "AckTracker",
    "Backoff",
    "BatchProcessor",
    "Batcher",
    "DeadLetterPublisher",
    "Delivery",
    "Outcome",
    "PluginInfo",
    "Prepared",
    "QueueConsumer",
    "Settlement",
    "WorkerMetrics",
    "build_plugin",
    "dead_letter_properties",
    "describe_plugins",
    "load_plugin_class",
    "outcome",
    "parse_body",
    "prepare",
    "reason_of",
    "run_worker",
    "settle_attempt",
    "settle_parsed",
    "stop_on_signals",
    "tune_gc",
]
