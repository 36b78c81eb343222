"""The FCM channel: HTTP v1 over httpx against a local server that answers like FCM."""

from __future__ import annotations

import json

import pytest
from channel_support import push
from provider_servers import FCM_ACCESS_TOKEN, FCM_PROJECT

from channels.base import PermanentSendError, TransientSendError
from channels.fcm_push import FcmPushChannel, ServiceAccountTokenProvider, StaticTokenProvider

pytest_plugins = ["provider_fixtures"]


def test_push_reaches_fcm_as_the_v1_api_documents(fcm, fcm_server):
    result = fcm.send(
        push(token="device-token-1", data={"link": "shop://coupons/7", "coupon_id": 7})
    )

    [request] = fcm_server.sends
    assert request.method == "POST"
    assert request.path == f"/v1/projects/{FCM_PROJECT}/messages:send"
    assert request.headers["authorization"] == f"Bearer {FCM_ACCESS_TOKEN}"
    assert request.body == {
        "message": {
            "token": "device-token-1",
            "notification": {"title": "新人券还没用", "body": "¥20 券 5 天后到期"},
            "data": {"link": "shop://coupons/7", "coupon_id": "7"},
        }
    }
    assert result.provider == "fcm"
    assert result.provider_message_id.startswith(f"projects/{FCM_PROJECT}/messages/")


def test_push_without_data_or_title(fcm, fcm_server):
    fcm.send(push(title=None))

    assert fcm_server.sends[-1].body == {
        "message": {"token": "device-token-1", "notification": {"body": "¥20 券 5 天后到期"}}
    }


def test_dead_token_is_permanent_unregistered_token(fcm, fcm_server):
    fcm_server.unregistered.add("gone-token")

    with pytest.raises(PermanentSendError) as caught:
        fcm.send(push(token="gone-token"))

    assert caught.value.reason == "unregistered_token"
    assert "UNREGISTERED" in str(caught.value)


def test_invalid_argument_is_permanent(fcm, fcm_server):
    fcm_server.fail_next(400, code="INVALID_ARGUMENT", message="The registration token is bad")

    with pytest.raises(PermanentSendError) as caught:
        fcm.send(push())

    assert caught.value.reason == "invalid_argument"


@pytest.mark.parametrize(("status", "code"), [(401, "THIRD_PARTY_AUTH_ERROR"), (403, None)])
def test_refused_credentials_are_permanent_provider_auth(fcm, fcm_server, status, code):
    fcm_server.fail_next(status, code=code)

    with pytest.raises(PermanentSendError) as caught:
        fcm.send(push())

    assert caught.value.reason == "provider_auth"


def test_wrong_access_token_is_refused_by_the_server(fcm_server):
    channel = FcmPushChannel(
        FCM_PROJECT, token_provider=StaticTokenProvider("ya29.wrong"), base_url=fcm_server.url
    )

    with pytest.raises(PermanentSendError) as caught:
        channel.send(push())

    assert caught.value.reason == "provider_auth"
    assert "UNAUTHENTICATED" in str(caught.value)


def test_quota_exceeded_is_transient_with_retry_after(fcm, fcm_server):
    fcm_server.fail_next(429, code="QUOTA_EXCEEDED", retry_after=60)

    with pytest.raises(TransientSendError) as caught:
        fcm.send(push())

    assert caught.value.retry_after == 60


@pytest.mark.parametrize(("status", "code"), [(503, "UNAVAILABLE"), (500, "INTERNAL"), (502, None)])
def test_server_errors_are_transient(fcm, fcm_server, status, code):
    fcm_server.fail_next(status, code=code)

    with pytest.raises(TransientSendError):
        fcm.send(push())
    assert fcm.send(push()).provider_message_id.startswith("projects/")


def test_timeout_is_transient(fcm_server):
    channel = FcmPushChannel(
        FCM_PROJECT,
        token_provider=StaticTokenProvider(FCM_ACCESS_TOKEN),
        base_url=fcm_server.url,
        timeout=0.2,
    )
    fcm_server.stall_next(0.6)

    with pytest.raises(TransientSendError, match="unreachable"):
        channel.send(push())


def test_service_account_token_is_fetched_once_and_reused(
    fcm_server, google_token_server, service_account_file
):
    channel = FcmPushChannel(
        FCM_PROJECT,
        token_provider=ServiceAccountTokenProvider(service_account_file),
        base_url=fcm_server.url,
    )

    channel.send(push())
    channel.send(push())

    [issued] = google_token_server.issued
    assert [r.headers["authorization"] for r in fcm_server.sends] == [f"Bearer {issued}"] * 2
    [token_request] = google_token_server.requests
    assert token_request.body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"


def test_service_account_token_is_refreshed_when_it_expires(
    fcm_server, google_token_server, service_account_file
):
    # google-auth treats a token as expired a few minutes before its end: 60 s is already stale.
    google_token_server.expires_in = 60
    channel = FcmPushChannel(
        FCM_PROJECT,
        token_provider=ServiceAccountTokenProvider(service_account_file),
        base_url=fcm_server.url,
    )

    channel.send(push())
    channel.send(push())

    assert len(google_token_server.issued) == 2
    assert [r.headers["authorization"] for r in fcm_server.sends] == [
        f"Bearer {token}" for token in google_token_server.issued
    ]


def test_refused_service_account_is_permanent_provider_auth(
    fcm_server, google_token_server, service_account_file
):
    info = json.loads(service_account_file.read_text())
    info["client_email"] = "someone-else@shop-test.iam.gserviceaccount.com"
    service_account_file.write_text(json.dumps(info))
    channel = FcmPushChannel(
        FCM_PROJECT,
        token_provider=ServiceAccountTokenProvider(service_account_file),
        base_url=fcm_server.url,
    )

    with pytest.raises(PermanentSendError) as caught:
        channel.send(push())

    assert caught.value.reason == "provider_auth"
    assert fcm_server.sends == []
