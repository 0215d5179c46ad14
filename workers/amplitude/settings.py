"""Settings of the amplitude worker (environment prefix ``EVENTSINK_AMPLITUDE_``)."""

from __future__ import annotations

from typing import Literal

from amplitude import constants
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from workers.thirdparty import ThirdPartySettings

ENV_PREFIX = "EVENTSINK_AMPLITUDE_"


class AmplitudeSettings(ThirdPartySettings):
    """Where and how the amplitude worker sends events; every field is ``EVENTSINK_AMPLITUDE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    api_key: SecretStr = Field(description="API key of the Amplitude project (required).")
    server_url: str | None = Field(
        None, description="Full URL events are posted to; default: the zone's HTTP V2 (or batch) endpoint."
    )
    zone: Literal["US", "EU"] = Field("US", description="Data center: US (api2.amplitude.com) or EU.")
    use_batch: bool = Field(False, description="Use the Batch Event Upload API (/batch) instead of HTTP V2.")
    event_types: dict[str, str] = Field(
        default_factory=dict,
        description='Our type -> Amplitude event_type, JSON (e.g. {"traffic.page.viewed": "Page Viewed"}); '
        "types not listed keep their own name.",
    )
    device_id_field: str = Field("device_id", description="Key in data whose value becomes device_id.")
    min_id_length: int = Field(5, gt=0, description="Shortest user_id/device_id Amplitude takes (sent as option).")
    max_events_per_request: int = Field(1000, gt=0, le=2000, description="Events in one request (API max 2000).")
    max_request_bytes: int | None = Field(
        None, gt=0, description="Largest request body; default 1 MB (HTTP V2) or 20 MB (batch API)."
    )
    timeout_s: float = Field(10.0, gt=0, description="Timeout of one HTTP request.")
    throttle_backoff_s: float = Field(
        30.0, ge=0, description="How long a throttled user/device is held back after a 429 (Amplitude: 30 s)."
    )
    # Third-party destination: no e-mail, IP or name fields leave the system, user ids are pseudonymised.

    @property
    def url(self) -> str:
        """The endpoint: ``server_url`` when set, else the zone's HTTP V2 or batch URL."""
        if self.server_url:
            return self.server_url
        return constants.SERVER_URL[self.zone][constants.BATCH if self.use_batch else constants.HTTP_V2]

    @property
    def request_byte_limit(self) -> int:
        """Largest request body this worker sends."""
        if self.max_request_bytes is not None:
            return self.max_request_bytes
        return 20_000_000 if self.use_batch else 1_000_000
