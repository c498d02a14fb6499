"""Demo data: a believable list for a bilingual publication, with 18 months of history.

Addresses use the reserved `example.*` domains, so nothing can ever be mailed to a real
person. The data is generated from a fixed seed: the same call makes the same people.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.subscribers.models import (
    ConsentRecord,
    EventActor,
    EventKind,
    ImportJob,
    ImportStatus,
    Subscriber,
    SubscriberEvent,
    SubscriberSource,
    SubscriberStatus,
    SuppressionReason,
    pack_languages,
)

DEMO_STAFF_EMAIL = "demo@readership.local"
# Other features' demo data comes through the `loading_demo` and `loading_demo_history`
# signals of `webapp.subscribers.signals` (connected in `webapp.features`).
DEMO_SPAN = timedelta(days=548)  # about 18 months

_EN_FIRST = [
    "Alice",
    "Ben",
    "Chloe",
    "Daniel",
    "Emma",
    "Felix",
    "Grace",
    "Harry",
    "Isla",
    "Jack",
    "Kate",
    "Liam",
    "Maya",
    "Noah",
    "Olivia",
    "Peter",
    "Rose",
    "Sam",
    "Tara",
    "Will",
]
_EN_LAST = [
    "Adams",
    "Baker",
    "Clarke",
    "Davies",
    "Evans",
    "Fisher",
    "Green",
    "Hughes",
    "Irving",
    "Jones",
    "King",
    "Lewis",
    "Morgan",
    "Newman",
    "Owen",
    "Parker",
    "Reed",
    "Scott",
]
_RU_FIRST = [
    ("Анна", "anna"),
    ("Борис", "boris"),
    ("Вера", "vera"),
    ("Григорий", "grigory"),
    ("Дарья", "darya"),
    ("Екатерина", "ekaterina"),
    ("Иван", "ivan"),
    ("Ксения", "ksenia"),
    ("Леонид", "leonid"),
    ("Мария", "maria"),
    ("Никита", "nikita"),
    ("Ольга", "olga"),
    ("Павел", "pavel"),
    ("Светлана", "svetlana"),
    ("Тимур", "timur"),
    ("Юлия", "yulia"),
    ("Артём", "artyom"),
    ("Софья", "sofya"),
]
_RU_LAST = [
    ("Иванова", "ivanova"),
    ("Смирнов", "smirnov"),
    ("Кузнецова", "kuznetsova"),
    ("Попов", "popov"),
    ("Соколова", "sokolova"),
    ("Лебедев", "lebedev"),
    ("Козлова", "kozlova"),
    ("Новиков", "novikov"),
    ("Морозова", "morozova"),
    ("Волков", "volkov"),
    ("Орлова", "orlova"),
    ("Зайцев", "zaitsev"),
]
_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "post.example.org"]
_SOURCES = [
    (SubscriberSource.SIGNUP_PAGE, 40),
    (SubscriberSource.EMBED, 35),
    (SubscriberSource.DONATION, 10),
    (SubscriberSource.IMPORT, 12),
    (SubscriberSource.STAFF, 3),
]
_ARTICLES = [
    "war-economy",
    "sanctions-explained",
    "elections-2026",
    "media-freedom",
    "energy-prices",
    "migration-report",
    "regional-budgets",
    "weekly-notes",
]


@dataclass(frozen=True)
class DemoResult:
    """What `load_demo_subscribers` added."""

    created: int
    skipped: int


def database_is_empty(session: Session) -> bool:
    """True when there are no subscribers and no staff users yet."""
    from webapp.staff.models import StaffUser

    subscribers = session.scalar(select(func.count()).select_from(Subscriber)) or 0
    staff = session.scalar(select(func.count()).select_from(StaffUser)) or 0
    return subscribers == 0 and staff == 0


def _hash(rng: random.Random) -> str:
    return hashlib.sha256(rng.randbytes(16)).hexdigest()[:32]


def _person(rng: random.Random, index: int, language: str) -> tuple[str, str]:
    domain = rng.choice(_DOMAINS)
    if language == "ru":
        (first, first_latin), (last, last_latin) = rng.choice(_RU_FIRST), rng.choice(_RU_LAST)
    else:
        first, last = rng.choice(_EN_FIRST), rng.choice(_EN_LAST)
        first_latin, last_latin = first.lower(), last.lower()
    style = rng.random()
    if style < 0.4:
        local = f"{first_latin}.{last_latin}"
    elif style < 0.7:
        local = f"{first_latin[0]}{last_latin}"
    else:
        local = f"{first_latin}{rng.randint(1960, 2005)}"
    name = f"{first} {last}" if rng.random() < 0.7 else ""
    return f"{local}.{index}@{domain}", name


def load_demo_subscribers(
    session: Session,
    *,
    count: int,
    now: datetime,
    languages: tuple[str, ...],
    site_url: str,
    base_url: str,
    seed: int = 2026,
) -> DemoResult:
    """Add `count` demo subscribers with consent records and history (flushed in chunks;
    the caller commits). Addresses already present are skipped, so a rerun adds nothing."""
    rng = random.Random(seed)
    existing = set(
        session.scalars(select(Subscriber.email).where(Subscriber.email.like("%example%")))
    )
    import_at = now - DEMO_SPAN + timedelta(days=3)
    import_job = _demo_import_job(import_at, languages[0])
    sources = [source for source, _ in _SOURCES]
    weights = [weight for _, weight in _SOURCES]
    created = skipped = imported = 0
    for index in range(count):
        language = "ru" if "ru" in languages and rng.random() < 0.55 else languages[0]
        email, name = _person(rng, index, language)
        source = rng.choices(sources, weights)[0]
        if source == SubscriberSource.IMPORT:
            joined = import_at - timedelta(days=rng.randint(30, 900))
        else:
            # More recent signups than old ones: the list has been growing.
            joined = now - DEMO_SPAN * (rng.random() ** 1.6)
            joined -= timedelta(minutes=rng.randint(1, 600))
        if email in existing:
            skipped += 1
            continue
        subscriber = _make_subscriber(rng, email, name, language, languages, source, joined, now)
        session.add(subscriber)
        _add_history(rng, session, subscriber, source, joined, import_job, now, site_url, base_url)
        created += 1
        imported += source == SubscriberSource.IMPORT
        if created % 500 == 0:
            session.flush()
    import_job.created_count = import_job.processed_rows = import_job.total_rows = imported
    session.flush()
    return DemoResult(created=created, skipped=skipped)


def _demo_import_job(at: datetime, language: str) -> ImportJob:
    """The (finished) import the demo's imported subscribers came from."""
    return ImportJob(
        status=ImportStatus.FINISHED,
        filename="mailchimp-audience-export.csv",
        requested_format="auto",
        detected_format="mailchimp",
        default_language=language,
        created_at=at,
        started_at=at,
        finished_at=at + timedelta(seconds=4),
    )


def _make_subscriber(
    rng: random.Random,
    email: str,
    name: str,
    language: str,
    languages: tuple[str, ...],
    source: SubscriberSource,
    joined: datetime,
    now: datetime,
) -> Subscriber:
    extra = [code for code in languages if code != language and rng.random() < 0.08]
    recent = now - joined < timedelta(days=3)
    roll = rng.random()
    if recent and roll < 0.5:
        status = SubscriberStatus.PENDING
    elif roll < 0.82 or recent:
        status = SubscriberStatus.CONFIRMED
    elif roll < 0.95:
        status = SubscriberStatus.UNSUBSCRIBED
    else:
        status = SubscriberStatus.BOUNCED
    return Subscriber(
        email=email,
        name=name,
        name_key=name.casefold(),
        language=language,
        digest_languages=pack_languages([language, *extra]),
        status=status,
        source=source,
        created_at=joined,
        paused=False,
        suppressed=False,
        soft_bounce_count=0,
        last_confirmation_sent_at=joined if source != SubscriberSource.IMPORT else None,
    )


def _event(
    session: Session,
    subscriber: Subscriber,
    kind: EventKind,
    at: datetime,
    actor: EventActor = EventActor.READER,
    detail: str = "{}",
) -> None:
    session.add(
        SubscriberEvent(
            subscriber=subscriber, at=at, kind=kind.value, actor=actor.value, detail=detail
        )
    )


def _add_history(
    rng: random.Random,
    session: Session,
    subscriber: Subscriber,
    source: SubscriberSource,
    joined: datetime,
    import_job: ImportJob,
    now: datetime,
    site_url: str,
    base_url: str,
) -> None:
    status = subscriber.status
    confirmed_at = None
    if source == SubscriberSource.IMPORT:
        # Like a real import: the job is the history line and the consent evidence.
        subscriber.import_job = import_job
        confirmed_at = joined
    else:
        page = (
            f"{site_url.rstrip('/')}/{subscriber.language}/articles/{rng.choice(_ARTICLES)}"
            if source == SubscriberSource.EMBED
            else f"{base_url.rstrip('/')}/{subscriber.language}/subscribe"
        )
        actor = EventActor.STAFF if source == SubscriberSource.STAFF else EventActor.READER
        _event(
            session,
            subscriber,
            EventKind.SIGNUP,
            joined,
            actor,
            f'{{"source": "{source.value}", "language": "{subscriber.language}"}}',
        )
        _event(session, subscriber, EventKind.CONFIRMATION_SENT, joined, EventActor.SYSTEM)
        if status != SubscriberStatus.PENDING:
            confirmed_at = joined + timedelta(minutes=rng.randint(1, 2 * 24 * 60))
            confirmed_at = min(confirmed_at, now - timedelta(minutes=5))
            _event(session, subscriber, EventKind.CONFIRMED, confirmed_at)
        session.add(
            ConsentRecord(
                subscriber=subscriber,
                at=joined,
                source=source.value,
                page_url=page,
                wording_version="embed-2026-11-v1"
                if source == SubscriberSource.EMBED
                else "2026-11-v1",
                language=subscriber.language,
                ip_hash=_hash(rng),
                user_agent_hash=_hash(rng),
                confirmed_at=confirmed_at,
                confirm_ip_hash=_hash(rng) if confirmed_at else None,
            )
        )
    subscriber.confirmed_at = confirmed_at
    if confirmed_at is None:
        return
    left = confirmed_at + (now - confirmed_at) * rng.uniform(0.1, 0.95)
    if status == SubscriberStatus.UNSUBSCRIBED:
        how = rng.choice(["one_click", "one_click", "preferences", "unsubscribe_page"])
        subscriber.unsubscribed_at = left
        _event(session, subscriber, EventKind.UNSUBSCRIBED, left, detail=f'{{"how": "{how}"}}')
    elif status == SubscriberStatus.BOUNCED:
        subscriber.suppressed = True
        subscriber.suppression_reason = SuppressionReason.HARD_BOUNCE.value
        subscriber.suppressed_at = left
        _event(
            session,
            subscriber,
            EventKind.BOUNCED,
            left,
            EventActor.SYSTEM,
            '{"bounce": "permanent", "reason": "550 5.1.1 mailbox unavailable"}',
        )
        _event(
            session,
            subscriber,
            EventKind.SUPPRESSED,
            left,
            EventActor.SYSTEM,
            '{"reason": "hard_bounce"}',
        )
    elif rng.random() < 0.05:
        subscriber.paused = True
        subscriber.paused_at = left
        _event(session, subscriber, EventKind.PAUSED, left)
    elif rng.random() < 0.05:
        _event(
            session,
            subscriber,
            EventKind.PREFERENCES_CHANGED,
            left,
            detail=f'{{"languages": {subscriber.languages!r}}}'.replace("'", '"'),
        )
