"""Email: a subject, an HTML and a text body to the profile's email address."""

from kinds.base import ChannelKind, ProfileColumn, TemplateParts, Wording

EMAIL = ChannelKind(
    name="email",
    address=ProfileColumn("email"),
    template=TemplateParts(
        required=frozenset({"subject", "html", "text"}),
        optional=frozenset({"preheader"}),
        body="text",
        subject="subject",
        html="html",
        preheader="preheader",
    ),
    wording=Wording(zh="邮件", en="emails"),
    one_click_unsubscribe=True,
    rate_per_second=100,
    broadcast_rate_per_second=100,
)
