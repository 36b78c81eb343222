"""The development secrets are public: a process accepts them only on a developer's machine
(development, every listener and the public URL on loopback); anything else refuses to start
and names the variable to set."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from config import DEV_ADMIN_TOKEN, DEV_UNSUBSCRIBE_SECRET, DEV_WRITE_KEY, Settings

OWN = {
    "write_key": "wk-own",
    "admin_token": "at-own",
    "unsubscribe_secret": SecretStr("us-own"),
}


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"])
def test_development_on_loopback_keeps_the_development_secrets(host):
    found = settings(environment="development", api_host=host)
    assert found.write_key == DEV_WRITE_KEY
    assert found.admin_token == DEV_ADMIN_TOKEN
    assert found.unsubscribe_secret.get_secret_value() == DEV_UNSUBSCRIBE_SECRET


@pytest.mark.parametrize("environment", ["test", "production"])
def test_a_deployed_environment_refuses_each_development_secret_by_name(environment):
    with pytest.raises(ValidationError) as caught:
        settings(environment=environment)
    message = str(caught.value)
    for name in ("LIFECYCLE_WRITE_KEY", "LIFECYCLE_ADMIN_TOKEN", "LIFECYCLE_UNSUBSCRIBE_SECRET"):
        assert name in message
    for field in OWN:
        others = {k: v for k, v in OWN.items() if k != field}
        with pytest.raises(ValidationError, match=f"LIFECYCLE_{field.upper()}") as one:
            settings(environment=environment, **others)
        assert "LIFECYCLE_" + next(iter(others)).upper() not in str(one.value)
    assert settings(environment=environment, **OWN).write_key == "wk-own"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "api.internal"])  # noqa: S104
def test_development_listening_beyond_loopback_refuses_them(host):
    with pytest.raises(ValidationError, match="LIFECYCLE_API_HOST"):
        settings(environment="development", api_host=host)
    assert settings(environment="development", api_host=host, **OWN).api_host == host


def test_development_with_a_public_url_beyond_loopback_refuses_them():
    with pytest.raises(ValidationError, match="LIFECYCLE_UNSUBSCRIBE_SECRET"):
        settings(environment="development", public_base_url="https://crm.example.com")
    settings(environment="development", public_base_url="http://localhost:8000/lc")


def test_the_metrics_address_does_not_count_as_a_listener():
    # It serves counters only: no request to it carries or checks any of the three secrets.
    found = settings(environment="development", worker_metrics_address="0.0.0.0:9464")  # noqa: S104
    assert found.write_key == DEV_WRITE_KEY


def test_a_mistyped_secret_is_not_echoed_in_the_error() -> None:
    import pydantic

    from config import Settings

    with pytest.raises(pydantic.ValidationError) as refused:
        Settings(payload_keys="k1:not-base64-secret-value")  # type: ignore[arg-type]
    assert "not-base64-secret-value" not in str(refused.value)
    assert "payload" in str(refused.value).lower()
