"""The Flask app factory of the emergency API."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from sink_lib.registry import TypeRegistry, default_registry
from sink_lib.settings import SinkSettings

from . import events, health, influx, metrics, problems, write
from .keys import KeyStore
from .ratelimit import init_limits
from .settings import ApiSettings
from .spec import build_spec, protect_ui, swagger_config

log = logging.getLogger(__name__)


def create_app(
    settings: ApiSettings | None = None,
    *,
    sink: Any = None,
    sink_settings: SinkSettings | None = None,
) -> Flask:
    """Build the API: settings from the environment unless given; one EventSink per process.

    ``sink`` replaces the EventSink (tests pass a fake); otherwise one is created from
    ``sink_settings`` (default: ``EVENTSINK_*`` variables). It connects lazily in a background thread.
    """
    settings = settings if settings is not None else ApiSettings.load()
    if sink is None:
        from sink_lib.sink import EventSink

        sink = EventSink(settings=sink_settings if sink_settings is not None else SinkSettings.load())
    registry: TypeRegistry = getattr(sink, "registry", None) or default_registry()

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["eventsink_settings"] = settings
    app.extensions["eventsink_sink"] = sink
    app.extensions["eventsink_keys"] = KeyStore(settings.keys_file)
    if not settings.keys_file.exists():
        log.warning("keys file %s does not exist: every /api/ request will get 401 until keys are created "
                    "(eventsink keys create --name NAME --scope PATTERN)", settings.keys_file)

    problems.register(app)
    metrics.init_metrics(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(write.bp)
    app.register_blueprint(influx.bp)
    init_limits(app, settings)
    # answered on the event loop by the eventsink worker class (the Flask view serves other workers)
    app.extensions["eventsink_native_routes"] = {("POST", events.EventsRoute.route): events.EventsRoute(app)}
    if settings.swagger or settings.swagger_ui:
        from flasgger import Swagger

        Swagger(app, template=build_spec(settings, registry), config=swagger_config(settings.swagger_ui),
                merge=False)
        if settings.swagger_ui:
            protect_ui(app)
    return app
