"""The FCM channel: HTTP v1 over httpx against a local server that answers like FCM."""

from __future__ import annotations

import dataclasses
import json
import time

import httpx
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


def test_data_values_that_are_not_text_are_sent_as_json(fcm, fcm_server):
    fcm.send(
        push(
            data={
                "link": "shop://coupons/7",
                "coupon_id": 7,
                "vip": True,
                "price": 19.5,
                "cart": {"items": 2, "name": "鞋"},
                "tags": ["a", "b"],
                "gone": None,
            }
        )
    )

    data = fcm_server.sends[-1].body["message"]["data"]
    assert data == {
        "link": "shop://coupons/7",
        "coupon_id": "7",
        "vip": "true",
        "price": "19.5",
        "cart": '{"items":2,"name":"鞋"}',
        "tags": '["a","b"]',
    }
    assert json.loads(data["cart"]) == {"items": 2, "name": "鞋"}


def test_a_data_only_push_has_no_empty_notification(fcm, fcm_server):
    fcm.send(push(title=None, body="", data={"refresh": "inbox"}))

    assert fcm_server.sends[-1].body == {
        "message": {"token": "device-token-1", "data": {"refresh": "inbox"}}
    }


@pytest.mark.parametrize("key", ["from", "notification", "message_type", "google.c.a.e", "gcm.n.e"])
def test_reserved_data_keys_are_refused_before_sending(fcm, fcm_server, key):
    with pytest.raises(PermanentSendError) as caught:
        fcm.send(push(data={key: "x"}))

    assert caught.value.reason == "invalid_argument"
    assert key in str(caught.value)
    assert fcm_server.sends == []


def test_priority_ttl_and_sound_become_android_and_apns_blocks(fcm, fcm_server):
    message = dataclasses.replace(push(), priority="high", ttl_seconds=7200, sound="default")

    before = int(time.time())
    fcm.send(message)

    sent = fcm_server.sends[-1].body["message"]
    assert sent["android"] == {
        "priority": "HIGH",
        "ttl": "7200s",
        "notification": {"sound": "default"},
    }
    headers = sent["apns"]["headers"]
    assert headers["apns-priority"] == "10"
    assert before + 7200 <= int(headers["apns-expiration"]) <= int(time.time()) + 7200
    assert sent["apns"]["payload"] == {"aps": {"sound": "default"}}


def test_normal_priority_alone(fcm, fcm_server):
    fcm.send(dataclasses.replace(push(), priority="normal"))

    sent = fcm_server.sends[-1].body["message"]
    assert sent["android"] == {"priority": "NORMAL"}
    assert sent["apns"] == {"headers": {"apns-priority": "5"}}


def test_no_options_means_no_android_or_apns_block(fcm, fcm_server):
    fcm.send(push())

    assert {"android", "apns"}.isdisjoint(fcm_server.sends[-1].body["message"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"notification": {}}, "message.notification"),
        ({"data": {"n": 1}}, "message.data.n"),
        ({"notification": {"title": "t", "sound": "default"}}, "message.notification"),
        ({"android": {"priority": "high"}}, "message.android.priority"),
        ({"android": {"ttl": "3600"}}, "message.android.ttl"),
        ({"apns": {"headers": {"apns-priority": 10}}}, "message.apns.headers.apns-priority"),
        ({"badge": 1}, "message"),
        ({"data": {"from": "x"}}, "message.data"),
    ],
)
def test_the_local_server_refuses_what_fcm_s_message_shape_refuses(fcm_server, change, field):
    message = {"token": "device-token-1", "notification": {"title": "t"}} | change

    answer = httpx.post(
        f"{fcm_server.url}/v1/projects/{FCM_PROJECT}/messages:send",
        json={"message": message},
        headers={"Authorization": f"Bearer {FCM_ACCESS_TOKEN}"},
    )

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    [violation] = error["details"][1]["fieldViolations"]
    assert violation["field"] == field


def test_dead_token_is_permanent_unregistered_token(fcm, fcm_server):
    fcm_server.unregistered.add("gone-token")

    with pytest.raises(PermanentSendError) as caught:
        fcm.send(push(token="gone-token"))

    assert caught.value.reason == "unregistered_token"
    assert "UNREGISTERED" in str(caught.value)


def test_invalid_argument_is_permanent(fcm, fcm_server):
    fcm_server.fail_next(400, code="INVALID_ARGUMENT", message="Invalid value at 'message.data'")

    with pytest.raises(PermanentSendError) as caught:
        fcm.send(push())

    assert caught.value.reason == "invalid_argument"


def test_another_project_s_token_is_a_dead_token(fcm, fcm_server):
    fcm_server.foreign.add("other-app-token")

    with pytest.raises(PermanentSendError) as caught:
        fcm.send(push(token="other-app-token"))

    assert caught.value.reason == "unregistered_token"
    assert "SENDER_ID_MISMATCH" in str(caught.value)


def test_a_token_fcm_calls_invalid_is_a_dead_token(fcm, fcm_server):
    fcm_server.malformed.add("not-a-token")

    with pytest.raises(PermanentSendError) as caught:
        fcm.send(push(token="not-a-token"))

    assert caught.value.reason == "unregistered_token"
    assert "INVALID_ARGUMENT" in str(caught.value)


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
