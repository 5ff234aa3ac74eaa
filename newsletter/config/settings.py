"""The sections of config.yaml as pydantic models, with every default in one place (the
sections of ``newsletter serve`` in ``serving.py``).

``config.load_config`` validates a file against ``ConfigFile``; the stages' own settings
(``FetchLimits``, ``RenderSettings``, the classifier's thresholds) are built from these.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from newsletter.config.editorial import OverridesFile as OverridesFile
from newsletter.config.editorial import SponsorConfig
from newsletter.config.following import WatchlistConfig, WeeklyConfig
from newsletter.config.serving import DeskConfig, PrivacyConfig, SignupConfig, WebConfig
from newsletter.config.values import FromAddress, ImageUrl, Strict, time_zone_problem

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


def _weighted(value: Any) -> Any:
    """Keywords may be a list (each weighs 1) or a mapping of keyword to weight."""
    if isinstance(value, list):
        return {str(item): 1.0 for item in value}
    return value


class LogoConfig(Strict):
    """An image shown in the masthead of the email and the web pages."""

    url: ImageUrl | None = None  # https only: where readers' mail clients and browsers load it
    file: Path | None = None  # or an image file, served by `newsletter serve` (config/logo.py)
    width: int = Field(160, ge=16, le=600)  # pixels, as shown (give an image twice as wide)
    alt: str = Field(min_length=1, max_length=200)  # shown when images are off

    @model_validator(mode="after")
    def _one_source(self) -> LogoConfig:
        if (self.url is None) == (self.file is None):
            raise ValueError("give the logo's url (https://...) or its file, one of the two")
        return self


class PublicationConfig(Strict):
    name: str = Field("Top Insights Today", min_length=1, max_length=120)
    url: str = "https://example.com"  # the publisher's site; shown in the footer
    contact_url: str = "https://example.com/contact"  # named in our User-Agent when fetching
    # where readers reach the web app (sign-up, preferences, unsubscribe): links in every email
    base_url: str = "http://localhost:8000"
    postal_address: str = "Top Insights Today, 1 Example Street, London EC1A 1AA, United Kingdom"
    privacy_url: str = "https://example.com/privacy"
    terms_url: str = "https://example.com/terms"  # linked from the sign-up box's consent line
    logo: LogoConfig | None = None  # none: the publication's name as text
    language: str = Field("en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # the email's lang


class EmailConfig(Strict):
    # Jinja templates over: publication, edition_date, top (the first story of the brief),
    # headline (its headline made short: no outlet's name, at most about 60 characters),
    # following (the next two storylines' short headlines), story_count, sectors (names)
    subject: str = "{{ headline }}"
    preheader: str = (
        "{% if following %}Also: {{ following | join('; ') }} | {% endif %}"
        "{{ publication }}, {{ edition_date | shortdate }}"
    )
    max_kb: int = Field(100, ge=20)  # past this the "more" headlines are trimmed (Gmail clips)
    # "Read more insights" headlines at most, shared fairly between the reader's sections
    more_headlines: int = Field(30, ge=0, le=500)


class SectorConfig(Strict):
    slug: str = Field(pattern=SLUG_PATTERN)
    name: str = Field(min_length=1)
    description: str = ""  # one line, shown on the sign-up page
    # keyword or phrase → weight; matched on whole words, case-insensitively.
    # A trailing * matches any ending: "refiner*" matches refiner, refiners, refinery.
    keywords: Annotated[dict[str, float], BeforeValidator(_weighted)] = Field(min_length=1)
    exclude: list[str] = []  # any of these in a story rules this sector out
    # keywords with a second meaning ("recall", "mining"): they count only beside another
    # keyword of this sector, so they never decide it alone
    ambiguous: list[str] = []
    # a catch-all sector (Business & Politics): an industry sector whose headline alone fits
    # decisively goes first, so corporate news lands in the company's industry
    fallback: bool = False
    # a sector that cuts across the others (Sanctions & Regulation): when its headline alone is
    # decisive it goes first, and the industry it acts on second
    priority: bool = False
    # a fallback sector's keywords of corporate news (deals, listings, earnings): where an
    # industry sector fits the story at least as well as the fallback's other keywords, the
    # industry goes first (a chipmaker's IPO is chip news)
    corporate: list[str] = []


class FeedConfig(Strict):
    name: str = Field(min_length=1)
    url: str = Field(min_length=1)  # http(s) URL, or a file path relative to this config file
    sector: str | None = None  # optional hint: a sector slug
    weight: float = Field(1.0, gt=0, le=10)  # trust in this feed, used when ranking
    # take teasers from article pages when the feed's are empty or thin (default: collect.teasers)
    fetch_teasers: bool | None = None
    # sample items (a demo's, a test's): dated anew at each collect, the newest at that moment and
    # the others as far before it as the feed says, so an edition built from them is fresh
    sample: bool = False


class ModelConfig(Strict):
    """The sector model: a second opinion learnt from this publication's own stories."""

    enabled: bool = False  # used only once a model trained on min_examples is stored
    min_examples: int = Field(300, ge=20)  # stories it must have learnt from before it is used
    min_probability: float = Field(0.7, gt=0, le=1)  # below this its opinion is ignored
    lead_probability: float = Field(0.9, gt=0, le=1)  # at this it may let a story lead


class ClassifyConfig(Strict):
    title_weight: float = Field(2.0, ge=1)  # a match in the headline counts this many times
    min_score: float = Field(1.0, gt=0)  # below this a story does not fit the sector
    hint_bonus: float = Field(0.5, ge=0)  # added to the feed's hinted sector when the text fits it
    secondary_ratio: float = Field(0.5, ge=0, le=1)  # a further sector needs this share of the best
    # a story whose best sector scores this much is confident enough to lead a section; weaker
    # ones only fill its "more" list. None: twice min_score (a decisive word in the headline)
    lead_score: float | None = Field(None, gt=0)
    # words of stories to leave out (sport, celebrity, health, ...): a sector must outscore them
    off_topic: Annotated[dict[str, float], BeforeValidator(_weighted)] = Field(default_factory=dict)
    # folders of a story's link that mark it off-topic (sports: 6 for https://x.com/sports/...)
    off_topic_paths: Annotated[dict[str, float], BeforeValidator(_weighted)] = Field(
        default_factory=dict
    )

    model: ModelConfig = Field(default_factory=ModelConfig)

    @property
    def lead(self) -> float:
        return self.lead_score if self.lead_score is not None else 2 * self.min_score


class DigestConfig(Strict):
    per_sector: int = Field(3, ge=1, le=50)  # stories per sector; the rest become "more" links
    brief: int = Field(4, ge=1, le=5)  # the day's biggest storylines that open the email
    max_age_hours: int = Field(36, ge=1)  # older stories are left out of the edition
    freshness_half_life_hours: float = Field(12, gt=0)  # a story's rank halves at this age
    per_storyline: int = Field(2, ge=0, le=50)  # stories of one storyline per section; 0: any
    # languages of stories kept besides publication.language (ISO 639-1 codes, e.g. [fr, de])
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] = []
    overrides_dir: Path = Path(
        "overrides"
    )  # the editor's YYYY-MM-DD.yaml files (pins, drops, note)


def _quoted_time(value: object) -> object:
    # YAML 1.1 reads an unquoted 7:00 as the sexagesimal number 420
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(
            f'expected a time such as "07:00" in quotes, got the number {value!r} '
            '(YAML reads an unquoted 7:00 as 420): write it as "07:00"'
        )
    return value


LocalTime = Annotated[time, BeforeValidator(_quoted_time)]


class ApprovalConfig(Strict):
    """The scheduled send waits for an editor's "Approve" on the desk (``docs/desk.md``)."""

    deadline: LocalTime  # local time, after send_at: the latest the send waits for it
    on_timeout: Literal["send", "skip"] = "skip"  # not approved by the deadline


class ScheduleConfig(Strict):
    send_at: LocalTime = time(7, 0)  # local time of the daily send ("07:00", or "07:00:30")
    timezone: str = "UTC"  # IANA name, e.g. Europe/London; also decides the edition's date
    collect_every_minutes: float = Field(30, ge=0.05)
    # days to send on, e.g. [mon, tue, wed, thu, fri]; empty means every day
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = []
    # a send missed while the scheduler was down runs on restart within this; later it is skipped
    misfire_grace_minutes: float = Field(180, gt=0)
    # a scheduler holds its lock by beating every third of this; a standby (`run --standby`)
    # takes over once the holder has been silent this long
    lease_seconds: float = Field(60, ge=0.3, le=3600)
    require_approval: ApprovalConfig | None = None  # none: the send goes without an approval
    # local hours readers may choose (e.g. [6, 7, 8, 9]), each in the reader's own zone;
    # empty: send_at's hour only. A reader who chose none gets send_at (docs/readers.md)
    delivery_hours: list[Annotated[int, Field(ge=0, le=23)]] = []

    @model_validator(mode="after")
    def _deadline_after_send(self) -> ScheduleConfig:
        approval = self.require_approval
        if approval is not None and approval.deadline <= self.send_at:
            raise ValueError(
                f"require_approval.deadline ({approval.deadline:%H:%M}) must come after "
                f"send_at ({self.send_at:%H:%M}): the send waits from one to the other"
            )
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        problem = time_zone_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("delivery_hours")
    @classmethod
    def _hours_once(cls, value: list[int]) -> list[int]:
        return sorted(set(value))

    @property
    def hours(self) -> tuple[int, ...]:
        """The local hours a reader may choose: ``delivery_hours``, else send_at's."""
        return tuple(self.delivery_hours) or (self.send_at.hour,)


class TeasersConfig(Strict):
    """Teasers from article pages for stories whose feed gives none worth reading."""

    enabled: bool = False  # for every feed; a feed's own `fetch_teasers` overrides it
    min_length: int = Field(80, ge=0, le=1000)  # a shorter feed summary asks for the page
    timeout_seconds: float = Field(10.0, gt=0, le=120)  # one page, in all
    max_bytes: int = Field(2_000_000, ge=10_000)  # one page, as sent and decompressed
    max_per_run: int = Field(200, ge=0)  # pages fetched per collect at most
    budget_seconds: float = Field(60.0, gt=0, le=3600)  # the longest a run spends on pages
    # each article host's name is looked up once a run, for at most this long: the pages of a
    # host that does not resolve wait for a later run, and cost no more than this
    resolve_seconds: float = Field(2.0, gt=0, le=60)


class CollectConfig(Strict):
    timeout_seconds: float = Field(20.0, gt=0, le=300)  # per feed, in all, redirects included
    connect_timeout_seconds: float = Field(10.0, gt=0, le=300)
    read_timeout_seconds: float = Field(15.0, gt=0, le=300)  # the longest wait for more bytes
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024)  # a feed's body, as sent and decompressed
    max_concurrency: int = Field(128, ge=1, le=1000)  # fetches under way at once
    max_per_host: int = Field(4, ge=1, le=100)  # fetches under way at once to one host
    max_redirects: int = Field(5, ge=0, le=20)
    # processes that parse feeds; 0 = one per CPU when there are at least 50 feeds, else none
    parse_workers: int = Field(0, ge=0, le=64)
    keep_days: int = Field(30, ge=1)  # stories older than this are pruned
    flag_failing_after_hours: int = Field(48, ge=1)  # `status` flags a feed failing this long
    teasers: TeasersConfig = Field(default_factory=TeasersConfig)


class OutboxConfig(Strict):
    dir: Path = Path("outbox")
    parallel: int = Field(2, ge=1, le=64)  # batches written at once


class SmtpConfig(Strict):
    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
    username: str | None = None
    # the name of the environment variable that holds the password, never the password itself
    password_env: str = "SMTP_PASSWORD"  # noqa: S105
    security: Literal["none", "starttls", "tls"] = "none"
    timeout_seconds: float = Field(30, gt=0, le=300)  # one command to the server
    max_retries: int = Field(3, ge=0, le=10)  # for 4xx answers and dropped connections
    backoff_seconds: float = Field(1.0, ge=0, le=60)  # the first wait; doubled each retry
    connections: int = Field(4, ge=1, le=64)  # connections open at once, one batch each
    # the envelope sender (Return-Path) bounces go back to: a mailbox you read with
    # `bounces import`; "bounces+{id}@example.com" puts each reader's id in it (VERP)
    return_path: str | None = Field(None, pattern=r"^[^@\s<>]+@[^@\s<>]+$")


class SendgridConfig(Strict):
    api_key_env: str = "SENDGRID_API_KEY"  # the key is read from this environment variable
    api_host: str = "https://api.sendgrid.com"  # https://api.eu.sendgrid.com for EU accounts
    timeout_seconds: float = Field(30, gt=0, le=300)  # one request
    max_retries: int = Field(4, ge=0, le=10)  # for 5xx answers and timeouts, with backoff
    backoff_seconds: float = Field(1.0, ge=0, le=60)  # the first wait; doubled each retry
    # requests in flight at once: SendGrid's mail send has no request-rate limit, and what one
    # crash can repeat is bounded by delivery.readers_in_flight, not by this
    concurrency: int = Field(64, ge=1, le=128)
    # SendGrid's own open and click tracking (a pixel; links rewritten through SendGrid):
    # off by default, for the readers' privacy; `stats` counts opens and clicks only with them
    track_opens: bool = False
    track_clicks: bool = False
    # the Event Webhook (POST /webhooks/sendgrid on `newsletter serve`): the verification key
    # (the base64 public key SendGrid shows) is read from this environment variable
    webhook_key_env: str = "SENDGRID_WEBHOOK_KEY"
    webhook_max_age_seconds: int = Field(600, ge=10, le=86400)  # older signed batches refused
    webhook_max_bytes: int = Field(20_000_000, ge=10_000)  # a larger body is refused (413)


class BouncesConfig(Strict):
    """What bounces do to a reader (a hard bounce always sets them bounced)."""

    soft_limit: int = Field(5, ge=1, le=100)  # this many soft bounces ...
    soft_days: float = Field(7, gt=0, le=365)  # ... within this many days set a reader bounced


class DeliveryConfig(Strict):
    backend: Literal["outbox", "smtp", "sendgrid"] = "outbox"
    from_address: FromAddress = "Top Insights Today <insights@example.com>"
    batch_size: int = Field(1000, ge=1, le=1000)  # readers per batch (SendGrid allows 1,000)
    # readers whose request is under way or whose outcome is not yet recorded, in all (a
    # batch is at most this many): what one crash (SIGKILL) of a sender can send twice
    # (docs/delivery.md). 100,000 readers at 200 ms a request take about 10 s of requests
    # with it; raise it for large lists (20,000), with the larger bound that implies
    readers_in_flight: int = Field(2000, ge=1, le=100_000)
    # outcomes the database could not take (disk full, read-only, connection lost) are kept
    # in this folder until the next `send` records them; the send waits this long for the
    # database to come back, claiming nothing new meanwhile, then stops
    journal_dir: Path = Path("journal")
    database_wait_seconds: float = Field(120, ge=0, le=3600)
    # a sender beats on its claimed rows this often; one silent for claim_timeout_minutes
    # (killed, or its machine gone) has its rows given to another sender
    heartbeat_seconds: float = Field(15, gt=0, le=600)
    claim_timeout_minutes: float = Field(2, gt=0)
    # the List-Id header of every edition (RFC 2919); default: the publication's name with a
    # list id made of its name and the From domain, e.g. <top-insights-today.example.com>
    list_id: str | None = Field(None, pattern=r"^[A-Za-z0-9.-]+$")
    # `send` (not --dry-run) through smtp or sendgrid first checks base_url, the postal
    # address, the From domain and that the unsubscribe route answers; false skips it (tests)
    preflight: bool = True
    bounces: BouncesConfig = Field(default_factory=BouncesConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    sendgrid: SendgridConfig = Field(default_factory=SendgridConfig)


class WriterConfig(Strict):
    """The optional writer: the brief's summaries and a two-line intro written by a language
    model from the outlets' own text, each checked against it (docs/writer.md). Off while
    ``base_url`` is empty."""

    # an OpenAI-compatible endpoint: https://api.openai.com/v1, or a local server such as
    # Ollama (http://localhost:11434/v1) or vLLM (http://localhost:8000/v1); "": off
    base_url: str = Field("", pattern=r"^(https?://\S+)?$")
    model: str = Field("gpt-4o-mini", min_length=1, max_length=200)
    # the NAME of the environment variable holding the API key, never the key itself; a local
    # server needs none (the variable unset, or this empty)
    api_key_env: str = Field("NEWSLETTER_WRITER_API_KEY", pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$")
    timeout_seconds: float = Field(20, gt=0, le=300)  # one request, at most
    budget_seconds: float = Field(60, gt=0, le=1800)  # all the writing of one edition
    # tokens one edition may spend (as the server reports them); writing stops once spent
    max_tokens: int = Field(20_000, ge=100, le=10_000_000)
    max_storylines: int = Field(12, ge=1, le=100)  # storylines written per edition, biggest first
    # a short style line; "": plain, factual and brief, as the publication's name suggests
    voice: str = Field("", max_length=300)

    def voice_for(self, publication: str) -> str:
        """The voice the writer is asked to write in."""
        return self.voice or (
            f"the voice of {publication}, a daily industry briefing: plain, factual, brief; "
            "no hype, no opinion, no exclamation marks"
        )


class ConfigFile(Strict):
    """The file as written. ``load_config`` turns it into a ``Config`` with resolved paths."""

    publication: PublicationConfig = Field(default_factory=PublicationConfig)
    database: str = "sqlite:///newsletter.db"  # any SQLAlchemy URL
    templates: Path | None = None  # a folder whose templates override the built-in ones
    # in display order; or `sectors_file: other.yaml` to use the sectors of another config file
    sectors: list[SectorConfig] = Field(min_length=1)
    feeds: list[FeedConfig] = []
    classify: ClassifyConfig = Field(default_factory=ClassifyConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    collect: CollectConfig = Field(default_factory=CollectConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)
    signup: SignupConfig = Field(default_factory=SignupConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    sponsor: SponsorConfig | None = None
    web: WebConfig = Field(default_factory=WebConfig)
    writer: WriterConfig = Field(default_factory=WriterConfig)
    desk: DeskConfig = Field(default_factory=DeskConfig)
    weekly: WeeklyConfig = Field(default_factory=WeeklyConfig)
    watchlist: WatchlistConfig = Field(default_factory=WatchlistConfig)
