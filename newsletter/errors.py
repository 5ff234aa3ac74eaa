"""Errors the user can act on. Each carries a ``hint``; only the ``cli`` package prints them.

NewsletterError
 ├─ ConfigError        config.yaml is missing or invalid
 ├─ FeedError          one feed could not be fetched or parsed (others go on)
 ├─ StoryNotFound      no stored story has that id
 ├─ TemplateError      a template or its MJML could not be rendered
 ├─ DeliveryError      the mail provider refused or failed
 └─ SubscriberError    bad address, unknown token, ...
"""

from __future__ import annotations


class NewsletterError(Exception):
    """Base of every error the user can act on."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(NewsletterError):
    """config.yaml is missing or invalid; the message names the file and the key path."""


class FeedError(NewsletterError):
    """One feed could not be fetched or parsed."""


class StoryNotFound(NewsletterError):
    """No stored story has the id asked for."""


class TemplateError(NewsletterError):
    """A template could not be rendered; the message names the file and line."""


class DeliveryError(NewsletterError):
    """The mail provider refused or failed."""


class SubscriberError(NewsletterError):
    """A subscriber operation failed: bad address, unknown token, ..."""


class StoreError(NewsletterError):
    """The database could not be opened or migrated."""
