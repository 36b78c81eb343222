"""SMS: a text to the profile's phone number, with the opt-out text appended."""

from kinds.base import ChannelKind, ProfileColumn, TemplateParts, Wording

SMS = ChannelKind(
    name="sms",
    address=ProfileColumn("phone"),
    template=TemplateParts(
        required=frozenset({"body"}), body="body", opt_out_footer=True, segmented=True
    ),
    wording=Wording(zh="短信", en="text messages"),
    # The recipient replied STOP: the provider blocks the number, so do we.
    refusals={"opted_out": "consent_lost"},
    rate_per_second=50,
    broadcast_rate_per_second=50,
)
