"""Senders: one module per provider behind the :class:`channels.base.Channel` protocol."""
