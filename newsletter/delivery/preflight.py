"""The checks before a real send (``send`` without ``--dry-run``, and ``run``) through SMTP or
SendGrid: what would get the mail filtered, or leave readers with links that go nowhere.

- ``publication.base_url`` is public https (not localhost, not http): every email's unsubscribe
  and preferences links point there;
- ``publication.postal_address`` and the From domain are not the example ones (CAN-SPAM wants
  a real address; mail from example.com fails every authentication check);
- the web app answers at ``base_url`` (``/healthz``), so the one-click unsubscribe works;
- no link a reader sees (the site, the privacy policy and terms, the logo, the sponsor's link
  and image) still points at an example domain, as ``init``'s config does.

``delivery.preflight: false`` skips them (a test setup; never for real readers).
"""

from __future__ import annotations

import ipaddress
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from email.utils import parseaddr
from urllib.parse import urlsplit

from newsletter.config import Config
from newsletter.config.settings import DeliveryConfig, PublicationConfig

EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net")
_LOCAL_HOSTS = ("localhost", "localhost.localdomain", "0.0.0.0")  # noqa: S104


def needed(config: Config, *, dry_run: bool) -> bool:
    delivery = config.file.delivery
    return delivery.preflight and not dry_run and delivery.backend in ("smtp", "sendgrid")


def problems(config: Config, *, probe: Callable[[str], str | None] | None = None) -> list[str]:
    """Every problem found, each naming the key to fix; ``probe`` fetches a URL and says why
    it failed (None: it answered as the web app does)."""
    found = []
    publication, delivery = config.publication, config.file.delivery
    base = publication.base_url.rstrip("/")
    parts = urlsplit(base)
    host = (parts.hostname or "").lower()
    public = True
    if parts.scheme != "https":
        found.append(
            f"publication.base_url is {base}: readers' links must be https; set it to the public "
            "https address where `newsletter serve` runs (behind your proxy)"
        )
        public = False
    if _is_local(host):
        found.append(
            f"publication.base_url points at this machine ({host or 'no host'}): readers could "
            "not unsubscribe; set it to the public address of `newsletter serve`"
        )
        public = False
    default_address = PublicationConfig.model_fields["postal_address"].default
    if publication.postal_address.strip() == default_address:
        found.append(
            "publication.postal_address is still the example address: put your real postal "
            "address in every email's footer, as CAN-SPAM asks"
        )
    sender = parseaddr(delivery.from_address)[1]
    domain = sender.rpartition("@")[2].lower()
    default_sender = DeliveryConfig.model_fields["from_address"].default
    if delivery.from_address == default_sender or _is_example(domain):
        found.append(
            f"delivery.from_address is {delivery.from_address!r}: send from a domain you "
            "own and have authenticated (SPF, DKIM, DMARC; see docs/deliverability.md)"
        )
    found += _example_links(config)
    if public:
        why = (probe or _probe)(f"{base}/healthz")
        if why is not None:
            found.append(
                f"the unsubscribe links would not work: the web app does not answer at "
                f"{base}/healthz ({why}); run `newsletter serve` there, or fix "
                "publication.base_url"
            )
    return found


def _example_links(config: Config) -> list[str]:
    """The links readers see that still point at an example domain, each with its key."""
    publication, sponsor = config.publication, config.file.sponsor
    links = {
        "publication.url": publication.url,
        "publication.privacy_url": publication.privacy_url,
        "publication.terms_url": publication.terms_url,
        "publication.logo.url": publication.logo.url if publication.logo else None,
        "sponsor.cta_url": sponsor.cta_url if sponsor else None,
        "sponsor.image.url": sponsor.image.url if sponsor and sponsor.image else None,
    }
    found = []
    for key, url in links.items():
        if url and _is_example((urlsplit(url).hostname or "").lower()):
            fix = (
                "the sponsor slot shows it: set your sponsor's, or remove `sponsor:`"
                if key.startswith("sponsor")
                else "every email shows it: point it at your own"
            )
            found.append(f"{key} is {url}, an example site; {fix}")
    return found


def _is_local(host: str) -> bool:
    if host in _LOCAL_HOSTS or host.endswith((".localhost", ".local")):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return not host
    return address.is_loopback or address.is_private or address.is_unspecified


def _is_example(domain: str) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in EXAMPLE_DOMAINS) or domain.endswith(
        (".example", ".invalid", ".test", ".localhost")
    )


def _probe(url: str) -> str | None:
    """None when ``url`` answers 200 "healthy" (our web app), else why not."""
    if urlsplit(url).scheme not in ("http", "https"):
        return "not an http(s) URL"
    request = urllib.request.Request(url, headers={"User-Agent": "newsletter preflight"})  # noqa: S310
    context = ssl.create_default_context()
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:  # noqa: S310
            body = answer.read(100).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return str(reason)
    if body.strip() != "healthy":
        return "something else answers there"
    return None
