"""The readers' pages under real faults: a mail provider that hangs or fails, sign-ups that
must not change a pending reader, spoofed proxy headers, typos, expired links."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from newsletter.config import Config, load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.errors import ConfigError
from newsletter.models import Channel, MailKind, MailStatus, Source, SubscriberStatus
from newsletter.readers.subscriptions import add_subscriber
from newsletter.records import Outgoing
from newsletter.store import Store
from newsletter.web.app import create_app
from tests.conftest import NOW, write_config
from tests.sendgrid_server import SendgridServer, sendgrid_server
from tests.test_send import _wait_for
from tests.webserver import running, signed_up

KEY = "SG.web-fault-key"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[SendgridServer]:
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    with sendgrid_server(api_key=KEY) as server:
        yield server


WEB = Source(Channel.WEB, "10.0.0.1")


def _config(tmp_path: Path, provider: SendgridServer, **signup: object) -> Config:
    delivery = {
        "backend": "sendgrid",
        "sendgrid": {"api_host": provider.url, "timeout_seconds": 2, "max_retries": 0},
    }
    return load_config(
        write_config(tmp_path, {"feeds": [], "delivery": delivery, "signup": signup})
    )


def _csrf(client: httpx.Client, path: str = "/subscribe") -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match
    return match.group(1)


@pytest.mark.slow
def test_while_the_provider_hangs_every_page_answers_at_once(
    tmp_path: Path, provider: SendgridServer
) -> None:
    config = _config(tmp_path, provider)
    store = Store.open(config.database_url)
    tokens = [
        add_subscriber(store, f"r{i}@example.com", known_sectors=config.sector_slugs, now=NOW)[
            0
        ].token
        for i in range(40)
    ]
    provider.delay = 30  # every request to the provider hangs
    app = create_app(config, store, make_mailer(config), now=Clock(), worker_interval=3600)
    with running(app) as base, httpx.Client(base_url=base, timeout=1.0) as client:
        csrf = _csrf(client)
        signed = client.post("/subscribe", data={"csrf": csrf, "email": "new@example.com"})
        assert signed.status_code == 200 and "Check your inbox" in signed.text
        for token in tokens:  # a 1 s client timeout: any wait on the provider fails the test
            done = httpx.post(f"{base}/unsubscribe/{token}", timeout=1.0)
            assert done.status_code == 200
        assert provider.requests >= 1  # the worker was inside the provider all along
    found = [store.readers.subscriber_by_token(t) for t in tokens]
    assert {r.status for r in found if r is not None} == {SubscriberStatus.UNSUBSCRIBED}
    assert None not in found
    store.close()


def test_a_failing_provider_never_gives_a_500_and_the_email_is_retried(
    tmp_path: Path, provider: SendgridServer
) -> None:
    config = _config(tmp_path, provider)
    store = Store.open(config.database_url)
    clock = Clock()
    provider.faults.append(("500", 0))
    app = create_app(config, store, make_mailer(config), now=clock, worker_interval=3600)
    with running(app) as base, httpx.Client(base_url=base) as client:
        csrf = _csrf(client)
        signed = client.post("/subscribe", data={"csrf": csrf, "email": "ana@example.com"})
        assert signed.status_code == 200
        signed_up(store)
        reader = store.readers.subscriber_by_email("ana@example.com")
        assert reader is not None and reader.status == SubscriberStatus.PENDING

        def tried() -> Outgoing | None:
            mail = store.outgoing.latest_mail(reader.id, kind=MailKind.CONFIRMATION)
            return mail if mail is not None and mail.attempts else None

        _wait_for(tried, timeout=10)  # the worker's first attempt, which the provider fails
    mail = tried()
    assert mail is not None and mail.status == MailStatus.PENDING and mail.attempts == 1
    from newsletter.delivery.outgoing import drain

    clock.now = NOW + timedelta(minutes=10)  # past the first retry's wait
    assert drain(config, store, make_mailer(config), now=clock) == 1
    assert "ana@example.com" in provider.recipients
    store.close()


def test_a_pending_readers_data_changes_only_when_they_confirm(
    tmp_path: Path, provider: SendgridServer
) -> None:
    config = _config(tmp_path, provider)
    store = Store.open(config.database_url)
    clock = Clock()
    app = create_app(config, store, make_mailer(config), now=clock, worker_interval=3600)
    with running(app) as base, httpx.Client(base_url=base) as client:
        csrf = _csrf(client)
        first = {"csrf": csrf, "email": "ana@example.com", "name": "Ana", "sectors": "oil-gas"}
        client.post("/subscribe", data=first)
        signed_up(store)
        reader = store.readers.subscriber_by_email("ana@example.com")
        assert reader is not None
        stranger = {**first, "name": "Not Ana", "sectors": "mining-metals"}
        client.post("/subscribe", data=stranger)  # anyone may type Ana's address
        signed_up(store)
        reader = store.readers.subscriber_by_email("ana@example.com")
        assert reader is not None and (reader.name, reader.sectors) == ("Ana", ("oil-gas",))
        token = reader.token
        confirm_csrf = _csrf(client, f"/confirm/{token}")
        client.post(f"/confirm/{token}", data={"csrf": confirm_csrf})
    reader = store.readers.subscriber_by_email("ana@example.com")
    assert reader is not None and reader.status == SubscriberStatus.CONFIRMED
    assert (reader.name, reader.sectors) == ("Not Ana", ("mining-metals",))  # the newest choice
    store.close()


@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_for_counts_only_from_a_trusted_proxy_and_typos_do_not_count(
    tmp_path: Path, provider: SendgridServer, trusted: bool
) -> None:
    config = _config(tmp_path, provider, trusted_proxies=["127.0.0.1"] if trusted else [])
    store = Store.open(config.database_url)
    app = create_app(config, store, make_mailer(config), now=Clock(), worker_interval=3600)
    with running(app) as base, httpx.Client(base_url=base) as client:
        for i in range(3):  # typos are refused and never counted
            bad = client.post("/subscribe", data={"csrf": _csrf(client), "email": f"typo{i}@"})
            assert bad.status_code == 400
        csrf = _csrf(client)
        codes = [
            client.post(
                "/subscribe",
                data={"csrf": csrf, "email": f"r{i}@example.com"},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            ).status_code
            for i in range(7)
        ]
    # trusted: seven different visitors; untrusted: one visitor lying about its address
    assert codes == ([200] * 7 if trusted else [200] * 5 + [429] * 2)
    store.close()


def test_the_sign_up_rate_comes_from_the_config_and_a_bad_one_is_named(
    tmp_path: Path, provider: SendgridServer
) -> None:
    config = _config(tmp_path, provider, per_ip="2/10 minutes")
    store = Store.open(config.database_url)
    app = create_app(config, store, make_mailer(config), now=Clock(), worker_interval=3600)
    with running(app) as base, httpx.Client(base_url=base) as client:
        csrf = _csrf(client)
        codes = [
            client.post("/subscribe", data={"csrf": csrf, "email": f"r{i}@example.com"}).status_code
            for i in range(3)
        ]
    assert codes == [200, 200, 429]
    broken = _config(tmp_path / "b", provider, rate_limit_storage="carrier-pigeon://loft")
    with pytest.raises(
        ConfigError, match=re.escape("signup.rate_limit_storage 'carrier-pigeon://loft'")
    ):
        create_app(broken, store, make_mailer(broken), now=Clock())
    store.close()


@pytest.mark.parametrize("storage", ["database", "memory://"])
def test_the_sign_up_limit_is_shared_by_web_instances_through_the_database(
    tmp_path: Path, provider: SendgridServer, storage: str
) -> None:
    config = _config(tmp_path, provider, per_ip="3/10 minutes", rate_limit_storage=storage)
    clock = Clock()
    stores = [Store.open(config.database_url) for _ in range(2)]  # two machines, one database
    apps = [
        create_app(config, s, make_mailer(config), now=clock, worker_interval=3600) for s in stores
    ]
    with running(apps[0]) as one, running(apps[1]) as two:
        clients = [httpx.Client(base_url=base) for base in (one, two)]
        csrfs = [_csrf(c) for c in clients]

        def sign_up(i: int) -> int:  # alternating between the instances, from one address
            data = {"csrf": csrfs[i % 2], "email": f"r{i}@example.com"}
            return clients[i % 2].post("/subscribe", data=data).status_code

        codes = [sign_up(i) for i in range(5)]
        clock.now += timedelta(minutes=11)  # the window has moved on
        later = sign_up(5)
        for c in clients:
            c.close()
    if storage == "database":
        assert codes == [200, 200, 200, 429, 429] and later == 200
    else:  # each process counts its own: the limit is per instance
        assert codes == [200] * 5
    for s in stores:
        s.close()


def test_a_confirmation_link_expires_and_the_page_offers_a_new_one(
    tmp_path: Path, provider: SendgridServer
) -> None:
    config = _config(tmp_path, provider, confirm_link_days=7)
    store = Store.open(config.database_url)
    clock = Clock()
    app = create_app(config, store, make_mailer(config), now=clock, worker_interval=3600)
    with running(app) as base, httpx.Client(base_url=base) as client:
        client.post("/subscribe", data={"csrf": _csrf(client), "email": "ana@example.com"})
        signed_up(store)
        reader = store.readers.subscriber_by_email("ana@example.com")
        assert reader is not None
        clock.now = NOW + timedelta(days=8)
        page = client.get(f"/confirm/{reader.token}")
        assert page.status_code == 410 and "expired" in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        late = client.post(f"/confirm/{reader.token}", data={"csrf": csrf.group(1)})
        assert late.status_code == 410
        csrf = re.search(r'name="csrf" value="([^"]+)"', late.text)
        assert csrf is not None
        renewed = client.post(f"/confirm/{reader.token}/renew", data={"csrf": csrf.group(1)})
        assert renewed.status_code == 200 and "new confirmation link" in renewed.text
        # the new link is a new token: the expired one stays dead, whoever holds it
        dead = client.post(f"/confirm/{reader.token}", data={"csrf": csrf.group(1)})
        assert dead.status_code == 404
        now = store.readers.subscriber_by_email("ana@example.com")
        assert now is not None and now.token != reader.token
        fresh = client.get(f"/confirm/{now.token}")
        assert fresh.status_code == 200 and "Confirm my subscription" in fresh.text
        # another sign-up of the address after the link expired: a new token again
        clock.now += timedelta(days=8)
        client.post("/subscribe", data={"csrf": _csrf(client), "email": "ana@example.com"})
        signed_up(store)
        again = store.readers.subscriber_by_email("ana@example.com")
        assert again is not None and again.token not in (reader.token, now.token)
        assert client.get(f"/confirm/{now.token}").status_code == 404
    assert again.status == SubscriberStatus.PENDING
    store.close()


def test_signing_up_again_after_unsubscribing_makes_the_old_links_dead(tmp_path: Path) -> None:
    from newsletter.readers.subscriptions import confirm, sign_up, unsubscribe

    config = load_config(write_config(tmp_path, {"feeds": []}))
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    web = Source(Channel.WEB, "test")
    sign_up(config, store, address="ana@example.com", name="", sectors=[], source=web, now=NOW)
    first = store.readers.subscriber_by_email("ana@example.com")
    assert first is not None
    confirm(store, first.token, source=web, now=NOW)
    unsubscribe(store, first.token, source=web, now=NOW)
    sign_up(config, store, address="ana@example.com", name="", sectors=[], source=web, now=NOW)
    again = store.readers.subscriber_by_email("ana@example.com")
    assert again is not None and again.status == SubscriberStatus.PENDING
    # an old email's link (its confirmation, its unsubscribe) confirms nobody now
    assert again.token != first.token
    assert store.readers.subscriber_by_token(first.token) is None
    store.close()


def test_a_queued_sign_up_is_forgotten_when_its_address_is_erased_first(tmp_path: Path) -> None:
    from newsletter.delivery.outgoing import take_sign_ups
    from newsletter.readers.subscriptions import erase_person, request_sign_up

    config = load_config(write_config(tmp_path, {"feeds": []}))
    store = Store.open(config.database_url, privacy_key=config.privacy_key())
    for address in ("ana@example.com", "bo@example.com"):  # taken by the web, not carried out
        request_sign_up(config, store, address=address, name="", sectors=[], source=WEB, now=NOW)
    assert store.outgoing.queued_signups() == 2
    erase_person(config, store, "Ana@Example.com", now=NOW)
    assert store.outgoing.queued_signups() == 1  # nothing of ana's address waits anywhere
    assert take_sign_ups(config, store, now=Clock()) == 1
    assert store.outgoing.queued_signups() == 0
    assert store.readers.subscriber_by_email("ana@example.com") is None
    bo = store.readers.subscriber_by_email("bo@example.com")
    assert bo is not None and bo.status == SubscriberStatus.PENDING
    assert store.readers.events_of(bo.id)[0].source == WEB
    store.close()
