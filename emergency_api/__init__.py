"""The emergency API: authenticated HTTP ingest of events that works when everything else is down.

``create_app()`` builds the Flask app; ``eventsink api`` serves it with gunicorn and ``eventsink keys``
manages its API keys.
"""

from .app import create_app
from .keys import ApiKey, KeyFileError, KeyStore
from .settings import ApiSettings

__all__ = ["ApiKey", "ApiSettings", "KeyFileError", "KeyStore", "create_app"]
