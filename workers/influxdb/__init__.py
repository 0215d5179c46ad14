"""InfluxDB worker plugin: events as points, written to InfluxDB 1.x or 2.x in batches of up to 5,000."""

from sink_lib.lineprotocol import Encoder

from .mapping import Mapper, Point, TypeMapping, TypeRule
from .settings import InfluxDBSettings
from .worker import InfluxDBWorker

__all__ = ["Encoder", "InfluxDBSettings", "InfluxDBWorker", "Mapper", "Point", "TypeMapping", "TypeRule"]
