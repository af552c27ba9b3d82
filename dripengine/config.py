"""Settings: ``drip.toml`` in the working folder, every value overridable by environment.

Lookup order for the file: the ``--config`` option, ``$DRIP_CONFIG``, ``./drip.toml``; with none of
them the defaults apply (SQLite ``drip.db`` and the ``outbox`` provider in the current folder).
Every key ``section.key`` can be overridden by ``DRIP_SECTION_KEY`` (``DRIP_DATABASE_URL``); a few
short aliases exist (``DRIP_PROVIDER``). Relative paths are taken from the folder of the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from dripengine.exceptions import ConfigError
from dripengine.suggest import did_you_mean

CONFIG_FILENAME = "drip.toml"
Provider = Literal["outbox", "smtp", "sendgrid"]
HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
SPAN = re.compile(r"(\d{1,6})\s*([mhdw])")  # 48h, 2d, 90m, 1w
LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")  # BCP 47, as <html lang> takes it

ALIASES = {
    "DRIP_PROVIDER": ("sending", "provider"),
    "DRIP_OUTBOX_DIR": ("sending", "outbox_dir"),
    "DRIP_TIMEZONE": ("general", "timezone"),
    "DRIP_BASE_URL": ("sender", "base_url"),
    "DRIP_SECRET_KEY": ("sender", "secret_key"),
    "DRIP_POSTAL_ADDRESS": ("sender", "postal_address"),
    "SENDGRID_API_KEY": ("sendgrid", "api_key"),
    "DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY": ("webhooks", "sendgrid_public_key"),
    "DRIP_API_TOKEN": ("web", "api_token"),
    "DRIP_CRM_WEBHOOK_URL": ("crm", "webhook_url"),
    "DRIP_CRM_WEBHOOK_SECRET": ("crm", "webhook_secret"),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatabaseSettings(_Section):
    url: str = "sqlite:///drip.db"
    echo: bool = False
    # PostgreSQL connections a process keeps, opens beyond them, waits for (s) when all are busy
    pool_size: int = Field(default=5, ge=1, le=1_000)  # SQLAlchemy's defaults; SQLite: unused
    max_overflow: int = Field(default=10, ge=0, le=1_000)
    pool_timeout: float = Field(default=30.0, gt=0)
    pgbouncer: bool = False  # PgBouncer's transaction pooling: no prepared statements (engine.py)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError(
                f"{value!r} is not a supported database URL (accepted: sqlite:///PATH "
                "or postgresql+psycopg://USER@HOST:PORT/DB)"
            )
        if value.startswith("postgresql:"):
            value = "postgresql+psycopg:" + value.removeprefix("postgresql:")
        return value

    @field_validator("pgbouncer")
    @classmethod
    def _pgbouncer_is_postgresql(cls, value: bool, info: ValidationInfo) -> bool:
        url = str(info.data.get("url", ""))
        if value and not url.startswith("postgresql"):
            raise ValueError(
                "true is for PostgreSQL behind PgBouncer, but database.url is not a PostgreSQL "
                "URL (set it to false, or point database.url at PgBouncer)"
            )
        return value


class SendingSettings(_Section):
    provider: Provider = "outbox"
    outbox_dir: str = "outbox"
    max_per_lead_per_week: int = Field(default=3, ge=1)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    lease_seconds: int = Field(default=300, ge=10)  # a claimed batch is another worker's after this
    max_attempts: int = Field(default=5, ge=1)  # retries (429, 5xx, timeouts), then failed
    tick_seconds: float = Field(default=5.0, gt=0)  # how often `drip run` looks for due work
    # per provider and process: a token bucket of `burst` emails refilled at this rate (None: no limit)
    rate_per_second: float | None = Field(default=None, gt=0)
    burst: int = Field(default=10, ge=1)
    daily_cap: int | None = Field(default=None, ge=0)  # emails a UTC day per provider (None: none)
    # a SendGrid message a crash left unknown, with no event for it this long while others arrive,
    # was never accepted: it is failed, not resent (docs/sending.md)
    unknown_grace_hours: float = Field(default=48.0, gt=0)
    # marketing email to a lead waits this long after a rep's call, email or meeting (0/off: never)
    quiet_after_sales_touch: timedelta = timedelta(hours=48)

    @field_validator("quiet_after_sales_touch", mode="before")
    @classmethod
    def _span(cls, value: Any) -> Any:
        text = str(value).strip().lower()
        if isinstance(value, timedelta) or text in ("0", "off", "false"):
            return value if isinstance(value, timedelta) else timedelta(0)
        if (span := SPAN.fullmatch(text)) is None:
            raise ValueError(f"{value!r} is not a duration (e.g. 48h, 2d, 90m; 0 or off: never)")
        return timedelta(minutes=int(span[1]) * {"m": 1, "h": 60, "d": 1440, "w": 10080}[span[2]])


class SMTPSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    tls: Literal["starttls", "tls", "none"] = "starttls"
    timeout: float = Field(default=30.0, gt=0)


class SendGridSettings(_Section):
    api_key: str | None = None
    host: str | None = None  # None: SendGrid's global API host; EU subusers set the EU host
    # requests in flight hide the round trip: 128 x (1 / 50 ms) = 2,560 emails/s at most
    max_in_flight: int = Field(default=128, ge=1, le=256)
    timeout: float = Field(default=30.0, gt=0)


class SenderSettings(_Section):
    postal_address: str = "Acme GmbH, Example Street 1, 10115 Berlin, Germany"
    base_url: str = "http://127.0.0.1:8080"
    # signs every email's unsubscribe and tracking links; `drip init` writes a random one
    secret_key: str | None = Field(default=None, min_length=16)
    # how the unsubscribe and preferences pages present the sender (docs/tracking.md)
    brand_name: str | None = Field(default=None, min_length=1, max_length=100)  # None: see below
    logo_url: str | None = Field(default=None, max_length=2_000)  # https:// only
    brand_color: str | None = None  # #rrggbb or #rgb: the pages' buttons and top border
    language: str = "en"  # BCP 47 tag of the pages' <html lang>

    @field_validator("logo_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or any(c in value for c in "\"' <>"):
            raise ValueError(
                f"{value!r} is not an https:// URL of an image (e.g. https://acme.example/logo.png)"
            )
        return value

    @field_validator("brand_color")
    @classmethod
    def _hex_color(cls, value: str | None) -> str | None:
        if value is not None and not HEX_COLOR.fullmatch(value):
            raise ValueError(f"{value!r} is not a colour written #rrggbb or #rgb (e.g. #4338ca)")
        return value.lower() if value else None

    @field_validator("language")
    @classmethod
    def _bcp47(cls, value: str) -> str:
        if not LANGUAGE_TAG.fullmatch(value) or value.lower() == "und":
            raise ValueError(f"{value!r} is not a language tag (e.g. en, de, en-GB, pt-BR)")
        return value

    @property
    def display_name(self) -> str:
        """``brand_name``, else the organisation the postal address starts with (``Acme GmbH``)."""
        return self.brand_name or re.split(r"[,\n]", self.postal_address, maxsplit=1)[0].strip()


class WebSettings(_Section):
    """`drip serve`."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    api_token: str | None = Field(default=None, min_length=16)  # bearer token of /api/*
    # GET /metrics (Prometheus): behind the API token (token), to anyone who reaches it (open;
    # a private network), or not served (off)
    metrics: Literal["token", "open", "off"] = "token"
    max_body_bytes: int = Field(default=5_000_000, ge=1_000)  # larger bodies get 413
    # every large body being read at once, together; past it a large body gets 503 + Retry-After
    body_buffer_bytes: int = Field(default=32_000_000, ge=1_000_000)
    body_idle_seconds: float = Field(default=10.0, gt=0)  # no bytes this long: 408, closed
    body_total_seconds: float = Field(default=60.0, gt=0)  # a whole body takes longer: 408
    # open connections a process takes (503 past it)
    max_connections: int = Field(default=1_000, ge=10)
    track_opens: bool = True  # our own pixel in SMTP / outbox mail (SendGrid tracks its own)
    track_clicks: bool = True  # our own click redirect in SMTP / outbox mail
    # an unsubscribe from the page or the one-click button can be undone this long after (0: never)
    unsubscribe_undo_minutes: float = Field(default=30.0, ge=0, le=24 * 60)


class WebhookSettings(_Section):
    """Provider webhooks coming in."""

    sendgrid_public_key: str | None = None  # base64 DER, as SendGrid's settings page shows it
    verify_signatures: bool = True  # turn off only behind your own authentication
    max_age_seconds: int = Field(default=600, ge=10)  # older signed timestamps are replays
    max_events: int = Field(default=10_000, ge=1)  # events accepted in one POST
    # Inbound Parse is unsigned: when set, replies are taken only at /webhooks/sendgrid/inbound/<it>
    # or with it as the HTTP basic-auth password
    inbound_secret: str | None = Field(default=None, min_length=16)
    # a reply counts only when SPF (for its return path) or DKIM passed aligned with its From
    # domain, and SpamAssassin (Inbound Parse's spam_score, when the spam check is on) rated it
    # below this
    inbound_max_spam_score: float = Field(default=5.0, gt=0, allow_inf_nan=False)


class FitRule(_Section):
    """Points for a profile attribute: ``field`` (a contact field or an attribute column) whose
    value is one of ``values``, contains one of ``contains`` (case-insensitive), or is at least
    ``min``."""

    field: str
    points: float
    values: list[str] | None = None
    contains: list[str] | None = None
    min: float | None = None


SENIOR_TITLES = ["head", "director", "vp", "vice president", "chief", "owner", "founder", "manager"]
DEFAULT_FIT_RULES = [
    FitRule(field="employees", min=50, points=10),
    FitRule(field="title", contains=SENIOR_TITLES, points=10),
]


class ScoringSettings(_Section):
    """Behaviour scoring rules (see docs/scoring.md); the defaults suit a B2B funnel."""

    half_life_days: float = Field(default=45.0, gt=0)
    event_points: dict[str, float] = Field(default_factory=dict)  # merged over the defaults
    tag_points: dict[str, float] = Field(default_factory=dict)  # merged over the defaults
    daily_caps: dict[str, float] = Field(default_factory=dict)  # points a day per event type
    fit_rules: list[FitRule] = Field(default_factory=lambda: list(DEFAULT_FIT_RULES))
    scanner_seconds: float = Field(default=10.0, ge=0)  # clicks this soon after delivery: a bot
    reset_on_recycle: bool = True  # a recycled lead's engagement score starts again at 0
    soft_bounce_limit: int = Field(default=3, ge=1)  # soft bounces in a row that suppress
    # complaint breaker: a campaign pauses itself past these rates over at least min_sample sends
    max_complaint_rate: float = Field(default=0.001, ge=0, le=1)
    max_bounce_rate: float = Field(default=0.02, ge=0, le=1)
    breaker_min_sample: int = Field(default=500, ge=1)


class CRMSettings(_Section):
    """The outbound handoff of requalified leads."""

    webhook_url: str | None = None  # None: the handoff waits in `drip leads list --requalified`
    webhook_secret: str | None = Field(default=None, min_length=16)  # HMAC-SHA256 of the body
    timeout: float = Field(default=10.0, gt=0)
    max_backoff_seconds: int = Field(default=3600, ge=1)
    sla_reminder_url: str | None = None  # SLA clocks that passed, signed as the handoff (sla.md)


class PathSettings(_Section):
    campaigns: str = "campaigns"
    templates: str = "templates"
    sla: str = "sla.yaml"


class GeneralSettings(_Section):
    timezone: str = "UTC"  # how times are shown when a lead has no zone of its own

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f'"{value}" is not an IANA time zone (e.g. Europe/Berlin, America/New_York)'
            ) from None
        return value


class Settings(_Section):
    database: DatabaseSettings = DatabaseSettings()
    sending: SendingSettings = SendingSettings()
    sender: SenderSettings = SenderSettings()
    smtp: SMTPSettings = SMTPSettings()
    sendgrid: SendGridSettings = SendGridSettings()
    web: WebSettings = WebSettings()
    webhooks: WebhookSettings = WebhookSettings()
    scoring: ScoringSettings = ScoringSettings()
    crm: CRMSettings = CRMSettings()
    paths: PathSettings = PathSettings()
    general: GeneralSettings = GeneralSettings()
    base_dir: Path = Path(".")
    source: Path | None = None  # the file read, if any

    @property
    def database_url(self) -> str:
        return _absolute_sqlite(self.database.url, self.base_dir)

    def path(self, name: Literal["campaigns", "templates", "sla"]) -> Path:
        return self.base_dir / getattr(self.paths, name)

    @property
    def outbox_dir(self) -> Path:
        return self.base_dir / self.sending.outbox_dir


def _absolute_sqlite(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != "sqlite:///:memory:":
        path = Path(url.removeprefix(prefix))
        if not path.is_absolute():
            return prefix + str((base / path).resolve())
    return url


def find_config_file(explicit: str | Path | None, env: Mapping[str, str]) -> Path | None:
    candidate = explicit or env.get("DRIP_CONFIG")
    if candidate:
        path = Path(candidate)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (from --config or DRIP_CONFIG)")
        return path
    default = Path(CONFIG_FILENAME)
    return default if default.is_file() else None


def load_settings(
    config: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read the file (if any), apply the environment, validate, and return Settings."""
    env = os.environ if env is None else env
    path = find_config_file(config, env)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    _apply_env(data, env)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    base = path.parent.resolve() if path is not None else Path.cwd()
    return settings.model_copy(update={"base_dir": base, "source": path})


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    for section_name, field in Settings.model_fields.items():
        annotation = field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, _Section)):
            continue
        for key in annotation.model_fields:
            var = f"DRIP_{section_name}_{key}".upper()
            if var in env:
                data.setdefault(section_name, {})[key] = env[var]
    for var, (section_name, key) in ALIASES.items():
        if var in env and f"DRIP_{section_name}_{key}".upper() not in env:
            data.setdefault(section_name, {})[key] = env[var]


def _describe(exc: ValidationError, path: Path | None) -> str:
    where = str(path) if path else "settings"
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        known = _known_keys(error["loc"])
        hint = did_you_mean(key, known.split(", "))
        return f"{where}: {key}: unknown setting{hint} (known: {known})"
    if error["type"] == "literal_error":
        accepted = ", ".join(_literal_values(error["loc"]))
        return f"{where}: {key}: {error['input']!r} is not accepted (use one of: {accepted})"
    message = str(error["msg"]).removeprefix("Value error, ")
    env_name = next(
        (var for var, target in ALIASES.items() if ".".join(target) == key),
        f"DRIP_{key.replace('.', '_')}".upper(),
    )
    return f"{where}: {key}: {message} (set it in the file or with {env_name})"


def _known_keys(loc: tuple[Any, ...]) -> str:
    if len(loc) == 1:
        return ", ".join(n for n in Settings.model_fields if n not in {"base_dir", "source"})
    annotation = Settings.model_fields[str(loc[0])].annotation
    assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return ", ".join(f"{loc[0]}.{n}" for n in annotation.model_fields)


def _literal_values(loc: tuple[Any, ...]) -> list[str]:
    annotation = Settings.model_fields[str(loc[0])].annotation
    assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return [str(v) for v in get_args(annotation.model_fields[str(loc[1])].annotation)]
