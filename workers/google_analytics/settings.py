"""Settings of the google_analytics worker (environment prefix ``EVENTSINK_GOOGLE_ANALYTICS_``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from workers.thirdparty import ThirdPartySettings

from .limits import BACKDATING_LIMIT_S

ENV_PREFIX = "EVENTSINK_GOOGLE_ANALYTICS_"

DEFAULT_EVENT_NAMES = {
    "traffic.page.viewed": "page_view",
    "traffic.resource.downloaded": "file_download",
    "activity.resource.viewed": "select_content",
}
DEFAULT_PARAM_NAMES = {
    "url": "page_location",
    "resource_type": "content_type",
    "resource_id": "content_id",
}


class GoogleAnalyticsSettings(ThirdPartySettings):
    """Where and how the google_analytics worker sends events (``EVENTSINK_GOOGLE_ANALYTICS_<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    measurement_id: str = Field(min_length=1, description="Measurement ID of the GA4 web stream (G-XXXXXXX).")
    api_secret: SecretStr = Field(description="Measurement Protocol API secret of the stream.")
    endpoint: str = Field(
        "https://www.google-analytics.com",
        description="Base URL; /mp/collect (or /debug/mp/collect) is appended. EU: https://region1.google-analytics.com",
    )
    validate_only: bool = Field(
        False,
        validation_alias=AliasChoices("validate_only", f"{ENV_PREFIX}VALIDATE"),
        description="Send to /debug/mp/collect: nothing is recorded, events GA flags are dead-lettered with "
        "its validation messages, the others are acked.",
    )
    event_names: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_EVENT_NAMES),
        description="Our type -> GA4 event name, JSON; types not listed become their name with dots as "
        "underscores (storage.file.uploaded -> storage_file_uploaded).",
    )
    param_names: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_PARAM_NAMES),
        description="data key -> GA4 parameter name, JSON; other keys keep their name.",
    )
    event_id_param: str | None = Field(
        "event_id",
        description="Parameter carrying our event id (GA4 does not deduplicate; this lets exports do it); "
        "empty to leave it out.",
    )
    remember_sent: int = Field(
        100_000, ge=0, description="Event ids remembered as sent, so a redelivery in the same process is not resent."
    )
    client_id_field: str = Field("client_id", description="data key holding the GA client id, when the app has one.")
    send_user_id: bool = Field(True, description="Send userid (a pseudonym by default) as GA4 user_id.")
    user_property_fields: list[str] = Field(
        default_factory=list, description="data keys sent as user_properties instead of event parameters."
    )
    max_age_s: float = Field(
        BACKDATING_LIMIT_S - 300, gt=0, le=BACKDATING_LIMIT_S,
        description="Events older than this are dead-lettered (GA4 takes events backdated up to 72 h; the "
        "default leaves 5 minutes for the request to arrive).",
    )
    timeout_s: float = Field(10.0, gt=0, description="Timeout of one HTTP request.")
    concurrency: int = Field(
        8, ge=1, le=64,
        description="Requests in flight at once; each carries one client's events (raise it when GA is far).",
    )

    @property
    def collect_url(self) -> str:
        """The URL requests go to: /mp/collect, or /debug/mp/collect when validating."""
        path = "/debug/mp/collect" if self.validate_only else "/mp/collect"
        return self.endpoint.rstrip("/") + path
