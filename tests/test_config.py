from pathlib import Path

import pytest

from dripengine.config import load_settings
from dripengine.exceptions import ConfigError


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.sending.provider == "outbox"
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'drip.db'}"
    assert settings.source is None


def test_file_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "drip.toml").write_text(
        '[database]\nurl = "sqlite:///data/d.db"\n[paths]\ncampaigns = "c"\n'
    )
    settings = load_settings(folder / "drip.toml", env={})
    assert settings.database_url == f"sqlite:///{folder.resolve() / 'data' / 'd.db'}"
    assert settings.path("campaigns") == folder.resolve() / "c"


def test_environment_overrides_file(tmp_path: Path) -> None:
    (tmp_path / "drip.toml").write_text('[sending]\nprovider = "smtp"\n')
    env = {"DRIP_PROVIDER": "sendgrid", "DRIP_DATABASE_URL": "postgresql://u@127.0.0.1/x"}
    settings = load_settings(tmp_path / "drip.toml", env=env)
    assert settings.sending.provider == "sendgrid"
    assert settings.database_url == "postgresql+psycopg://u@127.0.0.1/x"
    long_form = load_settings(
        tmp_path / "drip.toml", env={"DRIP_SENDING_PROVIDER": "outbox", "DRIP_PROVIDER": "smtp"}
    )
    assert long_form.sending.provider == "outbox"


def test_drip_config_env_points_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "other.toml").write_text('[general]\ntimezone = "Asia/Tokyo"\n')
    assert (
        load_settings(env={"DRIP_CONFIG": str(tmp_path / "other.toml")}).general.timezone
        == "Asia/Tokyo"
    )


def test_wrong_provider_names_key_and_accepted_values() -> None:
    with pytest.raises(
        ConfigError,
        match=r"sending.provider: 'mailgun' is not accepted \(use one of: outbox, smtp, sendgrid\)",
    ):
        load_settings(env={"DRIP_PROVIDER": "mailgun"})


def test_unknown_key_lists_known_keys(tmp_path: Path) -> None:
    (tmp_path / "drip.toml").write_text('[database]\nuri = "sqlite:///x.db"\n')
    with pytest.raises(
        ConfigError,
        match=r'drip.toml: database.uri: unknown setting \(did you mean "database.url"\?\) '
        r"\(known: database.url, database.echo, database.pool_size, database.max_overflow, "
        r"database.pool_timeout, database.pgbouncer\)",
    ):
        load_settings(tmp_path / "drip.toml", env={})


def test_bad_timezone_and_url_name_the_env_var() -> None:
    with pytest.raises(
        ConfigError,
        match='general.timezone: "Mars/Base" is not an IANA time zone.*DRIP_TIMEZONE',
    ):
        load_settings(env={"DRIP_TIMEZONE": "Mars/Base"})
    with pytest.raises(ConfigError, match="is not a supported database URL"):
        load_settings(env={"DRIP_DATABASE_URL": "mysql://x"})


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "drip.toml").write_text("[database\n")
    with pytest.raises(ConfigError, match="drip.toml: "):
        load_settings(tmp_path / "drip.toml", env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})


def test_shipped_drip_toml_is_valid() -> None:
    from dripengine.cli.scaffold import SKELETON

    settings = load_settings(SKELETON / "drip.toml", env={})
    assert settings.sending.provider == "outbox"


@pytest.mark.parametrize(("value", "why"), [("nan", "finite"), ("0", "greater than 0")])
def test_the_inbound_spam_limit_is_a_positive_number(value: str, why: str) -> None:
    name = "DRIP_WEBHOOKS_INBOUND_MAX_SPAM_SCORE"
    assert load_settings(env={name: "7.5"}).webhooks.inbound_max_spam_score == 7.5
    with pytest.raises(ConfigError, match=f"webhooks.inbound_max_spam_score: .*{why}.*{name}"):
        load_settings(env={name: value})  # nan would refuse every reply, 0 as well


def test_pool_settings_from_the_file_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "drip.toml").write_text(
        '[database]\nurl = "postgresql://u@127.0.0.1:6432/drip"\npool_size = 3\npgbouncer = true\n'
    )
    env = {"DRIP_DATABASE_MAX_OVERFLOW": "0", "DRIP_DATABASE_POOL_TIMEOUT": "2.5"}
    database = load_settings(tmp_path / "drip.toml", env=env).database
    assert (database.pool_size, database.max_overflow, database.pool_timeout) == (3, 0, 2.5)
    assert database.pgbouncer is True
    defaults = load_settings(env={}).database  # SQLAlchemy's own: what every process had before
    assert (defaults.pool_size, defaults.max_overflow, defaults.pool_timeout) == (5, 10, 30.0)
    assert defaults.pgbouncer is False


def test_pool_settings_refused_with_the_key_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="database.pool_size: .*DRIP_DATABASE_POOL_SIZE"):
        load_settings(env={"DRIP_DATABASE_POOL_SIZE": "0"})
    (tmp_path / "drip.toml").write_text("[database]\npg_bouncer = true\n")
    with pytest.raises(ConfigError, match='did you mean "database.pgbouncer"'):
        load_settings(tmp_path / "drip.toml", env={})
    with pytest.raises(
        ConfigError,
        match=r"database.pgbouncer: true is for PostgreSQL behind PgBouncer, but database.url is "
        r"not a PostgreSQL URL \(set it to false, or point database.url at PgBouncer\) "
        r"\(set it in the file or with DRIP_DATABASE_PGBOUNCER\)",
    ):
        load_settings(env={"DRIP_DATABASE_PGBOUNCER": "true"})  # the default SQLite URL


def test_metrics_is_token_open_or_off() -> None:
    assert load_settings(env={}).web.metrics == "token"
    assert load_settings(env={"DRIP_WEB_METRICS": "open"}).web.metrics == "open"
    with pytest.raises(
        ConfigError, match=r"web.metrics: 'public' is not accepted \(use one of: token, open, off\)"
    ):
        load_settings(env={"DRIP_WEB_METRICS": "public"})
