"""Push: a title and a body to the newest device token the user registered."""

from kinds.base import ChannelKind, DeviceTokens, TemplateParts, Wording

PUSH = ChannelKind(
    name="push",
    address=DeviceTokens(),
    template=TemplateParts(
        required=frozenset({"title", "body"}),
        optional=frozenset({"link"}),
        body="body",
        title="title",
        link="link",
        options=("data", "priority", "ttl", "sound"),
    ),
    wording=Wording(zh="推送通知", en="push notifications"),
    # The app was uninstalled or the token rotated: no send will ever reach it.
    refusals={"unregistered_token": "address_dead"},
    rate_per_second=500,
    broadcast_rate_per_second=500,
)
