"""Errors the user can act on. Each carries a ``hint``; only the ``cli`` package prints them.

NewsletterError
 ├─ ConfigError        config.yaml (or the environment) is missing or invalid
 ├─ InputError         a file the command was given cannot be read (a labelled file, ...)
 ├─ FeedError          one feed could not be fetched or parsed (others go on); knows its feed
 ├─ StoryNotFound      no stored story has that id
 ├─ TemplateError      a template or its MJML could not be rendered
 ├─ EditionError       no edition for a day, or it could not be stored; knows the day
 ├─ DeliveryError      the mail provider refused or failed; knows its reader when it is one
 ├─ ScheduleError      the scheduler cannot run (another one holds the database)
 ├─ SubscriberError    bad address, unknown token, ...
 ├─ EditorError        a desk account cannot be added or changed (unknown, the last admin, ...)
 └─ StoreError         the database could not be opened or migrated
     └─ StoreUnavailable  the database stopped answering or taking writes (disk full,
                          read-only, connection lost); worth trying again later

Context comes as keyword arguments (``FeedError(..., feed=url)``), so code that catches an
error can tell which feed or reader it was about without reading the message.

Each error knows the exit code of its family (``exit_code``), which the command exits with:
0 done, 1 done with failures to retry (and any other problem to fix), 2 a usage mistake
(click's own), 3 the configuration, 4 the database or the file system unavailable, 5 nothing
to send today.
"""

from __future__ import annotations

from datetime import date


class NewsletterError(Exception):
    """Base of every error the user can act on."""

    exit_code = 1  # done with failures to retry, or another problem to fix

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(NewsletterError):
    """config.yaml is missing or invalid; the message names the file and the key path.
    ``problems`` are the file's problems, each ``line N: key.path: what is wrong``, when there
    were several (or one) found in it."""

    exit_code = 3

    def __init__(
        self, message: str, *, hint: str | None = None, problems: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems


class InputError(NewsletterError):
    """A file given on the command line cannot be read; the message names it and the line."""


class FeedError(NewsletterError):
    """One feed could not be fetched or parsed; ``feed`` is its URL when known."""

    def __init__(self, message: str, *, hint: str | None = None, feed: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.feed = feed


class StoryNotFound(NewsletterError):
    """No stored story has the id asked for."""


class TemplateError(NewsletterError):
    """A template could not be rendered; the message names the file and line."""


class EditionError(NewsletterError):
    """No edition for ``day``, or it could not be stored."""

    exit_code = 5  # nothing to send today

    def __init__(self, message: str, *, day: date, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.day = day


class DeliveryError(NewsletterError):
    """The mail provider refused or failed; ``reader`` is the address when it was about one."""

    def __init__(self, message: str, *, hint: str | None = None, reader: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reader = reader


class MailerSetupError(DeliveryError):
    """The mailer cannot work as configured (an SMTP server that offers no STARTTLS or login,
    or does not speak TLS; a refused login): sending again changes nothing, so the send stops
    at once and the error names the setting to change."""

    exit_code = 3  # the configuration's


class ScheduleError(NewsletterError):
    """The scheduler cannot run."""


class SubscriberError(NewsletterError):
    """A subscriber operation failed: bad address, unknown token, ..."""


class EditorError(NewsletterError):
    """An editor account cannot be added or changed: an address already taken, an unknown
    one, the last admin disabled or removed, a password too short, ..."""


class StoreError(NewsletterError):
    """The database could not be opened or migrated."""

    exit_code = 4


class StoreUnavailable(StoreError):
    """The database cannot be reached or written just now (a full disk, a read-only file or
    server, a lost connection, a lock held too long): the operation may succeed later."""
