"""Provider webhooks, applied: delivery facts and replies coming back from Twilio
(:mod:`~triggers.webhooks.twilio_sms`) and SendGrid (:mod:`~triggers.webhooks.sendgrid_email`).

The HTTP endpoints that check the providers' signatures and call these are in
:mod:`api.routes.twilio_webhooks` and :mod:`api.routes.sendgrid_webhooks`.
"""
