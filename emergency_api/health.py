"""``/healthz`` (the process answers) and ``/readyz`` (events can be accepted)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from .ingest import sink
from .problems import Problem

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> dict[str, Any]:
    """200 when RabbitMQ is connected or the spool can take events, else 503."""
    current = sink()
    if not current.ready():
        raise Problem(503, "RabbitMQ is unreachable and the local spool is not writable",
                      headers={"Retry-After": "5"})
    connected = bool(current.stats().get("connected"))
    return {"status": "ready", "broker": "connected" if connected else "unreachable, spooling"}
