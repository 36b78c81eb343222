"""Fixtures: the local provider servers and channels pointed at them.

A test module uses them with ``pytest_plugins = ["provider_fixtures"]``. Each server
runs once per session and is reset before each test that asks for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from provider_servers import (
    FCM_ACCESS_TOKEN,
    FCM_PROJECT,
    SENDGRID_KEY,
    SERVICE_ACCOUNT_EMAIL,
    TWILIO_SID,
    TWILIO_TOKEN,
    FcmServer,
    GoogleTokenServer,
    SendGridServer,
    TwilioServer,
)

from channels.fcm_push import FcmPushChannel, StaticTokenProvider
from channels.sendgrid_email import SendGridEmailChannel
from channels.twilio_sms import TwilioSmsChannel


@pytest.fixture(scope="session")
def _twilio_server() -> Iterator[TwilioServer]:
    with TwilioServer(TWILIO_SID, TWILIO_TOKEN) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def twilio_server(_twilio_server: TwilioServer) -> TwilioServer:
    _twilio_server.reset()
    return _twilio_server


@pytest.fixture(scope="session")
def _sendgrid_server() -> Iterator[SendGridServer]:
    with SendGridServer(SENDGRID_KEY) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def sendgrid_server(_sendgrid_server: SendGridServer) -> SendGridServer:
    _sendgrid_server.reset()
    return _sendgrid_server


@pytest.fixture(scope="session")
def _fcm_server() -> Iterator[FcmServer]:
    with FcmServer(FCM_PROJECT, {FCM_ACCESS_TOKEN}) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def fcm_server(_fcm_server: FcmServer) -> Iterator[FcmServer]:
    _fcm_server.reset()
    _fcm_server.access_tokens = {FCM_ACCESS_TOKEN}
    _fcm_server.unregistered.clear()
    yield _fcm_server


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def google_token_server(
    fcm_server: FcmServer, rsa_key: rsa.RSAPrivateKey
) -> Iterator[GoogleTokenServer]:
    with GoogleTokenServer(
        client_email=SERVICE_ACCOUNT_EMAIL, public_key=rsa_key.public_key(), fcm=fcm_server
    ) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def service_account_file(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, google_token_server: GoogleTokenServer
) -> Path:
    """A service-account key file, shaped like the ones Google issues, for the local server."""
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = tmp_path / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": FCM_PROJECT,
                "private_key_id": "0123456789abcdef",
                "private_key": pem,
                "client_email": SERVICE_ACCOUNT_EMAIL,
                "client_id": "100000000000000000000",
                "token_uri": google_token_server.token_uri,
            }
        )
    )
    return path


@pytest.fixture
def twilio(twilio_server: TwilioServer) -> TwilioSmsChannel:
    return TwilioSmsChannel(
        TWILIO_SID,
        TWILIO_TOKEN,
        from_number="+15005550006",
        status_callback="https://hooks.example.com/twilio/status",
        validity_period=3600,
        base_url=twilio_server.url,
        timeout=2,
    )


@pytest.fixture
def sendgrid(sendgrid_server: SendGridServer) -> SendGridEmailChannel:
    return SendGridEmailChannel(
        SENDGRID_KEY,
        from_email="hello@shop.example.com",
        from_name="Shop",
        reply_to="support@shop.example.com",
        asm_group_id=4242,
        host=sendgrid_server.url,
        categories=["lifecycle"],
        timeout=2,
    )


@pytest.fixture
def fcm(fcm_server: FcmServer) -> Iterator[FcmPushChannel]:
    channel = FcmPushChannel(
        FCM_PROJECT,
        token_provider=StaticTokenProvider(FCM_ACCESS_TOKEN),
        base_url=fcm_server.url,
        timeout=2,
    )
    yield channel
    channel.close()
