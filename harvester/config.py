"""Settings for a run: a TOML file, then command-line flags on top, then secrets from the
environment. Unknown keys and wrong types are errors that name the key."""

from __future__ import annotations

import os
import stat
import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harvester.errors import ConfigError

PASSWORD_ENV = "HARVESTER_PASSWORD"
TOKEN_ENV = "HARVESTER_OAUTH_TOKEN"
HISTORY_MODES = ("auto", "allrevisions", "pages")


@dataclass
class Settings:
    api: str | None = None
    mirror: str | None = None
    contact: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    oauth_token: str | None = field(default=None, repr=False)
    namespaces: list[int] | None = None
    current_only: bool = False
    concurrency: int = 1
    max_requests_per_second: float | None = None
    max_requests_per_minute: int | None = None
    maxlag: int = 5
    max_retries: int = 6
    request_timeout: float = 120.0
    history_mode: str = "auto"
    quiet: bool = False
    ignore_robots_txt: bool = False  # with the site's permission only
    live_history: bool = False  # a big Wikimedia wiki's history through the API anyway
    dumps_url: str | None = None  # where bootstrap finds the dumps
    files: bool = False  # every version of every file too
    files_max_size: int | None = None  # bytes: bigger files are skipped (and recorded)


# key -> (accepted python types, description for error messages)
_TYPES: dict[str, tuple[tuple[type[Any], ...], str]] = {
    "api": ((str,), "a URL string"),
    "mirror": ((str,), "a directory path string"),
    "contact": ((str,), "a string (URL or e-mail)"),
    "user": ((str,), "a string like Name@AppId"),
    "password": ((str,), "a string"),
    "oauth_token": ((str,), "a string"),
    "namespaces": ((list,), "a list of integers"),
    "current_only": ((bool,), "true or false"),
    "concurrency": ((int,), "an integer"),
    "max_requests_per_second": ((int, float), "a number"),
    "max_requests_per_minute": ((int,), "an integer"),
    "maxlag": ((int,), "an integer"),
    "max_retries": ((int,), "an integer"),
    "request_timeout": ((int, float), "a number"),
    "history_mode": ((str,), f"one of {', '.join(HISTORY_MODES)}"),
    "quiet": ((bool,), "true or false"),
    "ignore_robots_txt": ((bool,), "true or false"),
    "live_history": ((bool,), "true or false"),
    "dumps_url": ((str,), "a URL string"),
    "files": ((bool,), "true or false"),
    "files_max_size": ((int, str), "a size in bytes, or with K, M or G (like \"500M\")"),
}
assert set(_TYPES) == {f.name for f in fields(Settings)}


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    mode = _permissions(path)
    if ("password" in data or "oauth_token" in data) and mode & 0o077:
        print(
            f"harvester: warning: {path} holds a secret and is open to other users "
            f"(mode {mode:04o}; chmod 600 {path})",
            file=sys.stderr,
        )
    return data


def _permissions(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0


def check_value(key: str, value: Any, origin: str) -> Any:
    if key not in _TYPES:
        raise ConfigError(f"{origin}: unknown key '{key}'")
    types: tuple[type, ...]
    types, description = _TYPES[key]
    # bool is an int in Python; a flag given as a number (or vice versa) is a mistake
    wrong_bool = isinstance(value, bool) and bool not in types
    if wrong_bool or not isinstance(value, types):
        raise ConfigError(f"{origin}: '{key}' must be {description}, not {value!r}")
    if key == "namespaces" and not all(
        isinstance(n, int) and not isinstance(n, bool) for n in value
    ):
        raise ConfigError(f"{origin}: 'namespaces' must be a list of integers")
    if key == "files_max_size":
        return parse_size(value, f"{origin}: 'files_max_size'")
    return value


WIKI_TABLE = "wiki"
# A [[wiki]] table takes the settings of one wiki, plus its name and the names of
# the environment variables holding its secrets (never the secrets themselves).
WIKI_KEYS = {
    "name", "api", "mirror", "namespaces", "contact", "user", "password_env", "oauth_token_env",
    "concurrency", "max_requests_per_second", "max_requests_per_minute", "maxlag",
    "max_retries", "request_timeout", "quiet", "ignore_robots_txt", "live_history", "dumps_url",
    "files", "files_max_size",
}


def build_settings(
    config_file: Path | None, overrides: dict[str, Any], env: dict[str, str] | None = None
) -> Settings:
    """Config file values, then command-line values (those that are not None)."""
    data = load_toml(config_file) if config_file is not None else {}
    data.pop(WIKI_TABLE, None)
    return settings_from_values(data, str(config_file), overrides, env)


def settings_from_values(
    data: dict[str, Any], origin: str, overrides: dict[str, Any], env: dict[str, str] | None
) -> Settings:
    env = dict(os.environ) if env is None else env
    settings = Settings()
    for key, value in data.items():
        setattr(settings, key, check_value(key, value, origin))
    for key, value in overrides.items():
        if value is not None:
            setattr(settings, key, check_value(key, value, "command line"))
    settings.password = env.get(PASSWORD_ENV) or settings.password
    settings.oauth_token = env.get(TOKEN_ENV) or settings.oauth_token
    validate(settings)
    return settings


def wiki_settings(
    config_file: Path, overrides: dict[str, Any], env: dict[str, str] | None = None
) -> list[tuple[str, Settings]]:
    """Each ``[[wiki]]`` table of the file as (name, settings); top-level keys are defaults."""
    env = dict(os.environ) if env is None else env
    data = load_toml(config_file)
    tables = data.pop(WIKI_TABLE, None)
    if isinstance(tables, dict):
        raise ConfigError(f"{config_file}: 'wiki' must be written [[wiki]] (one per wiki), "
                          "not [wiki]")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{config_file}: --all needs [[wiki]] tables, and there are none")
    found = []
    for index, table in enumerate(tables, 1):
        origin = f"{config_file}: [[wiki]] number {index}"
        if not isinstance(table, dict):
            raise ConfigError(f"{origin} is not a table")
        if isinstance(table.get("name"), str):
            origin += f" ({table['name']})"
        unknown = sorted(set(table) - WIKI_KEYS)
        if unknown:
            raise ConfigError(f"{origin}: unknown key '{unknown[0]}'")
        for key in ("name", "password_env", "oauth_token_env"):
            if key in table and not isinstance(table[key], str):
                raise ConfigError(f"{origin}: '{key}' must be a string, not {table[key]!r}")
        values = {**data, **table}
        name = str(values.pop("name", f"wiki {index}"))
        secrets = wiki_secrets(values, origin, env)  # takes the *_env keys out of values
        found.append((name, settings_from_values(values, origin, overrides, secrets)))
    return found


def wiki_secrets(values: dict[str, Any], origin: str, env: dict[str, str]) -> dict[str, str]:
    """A [[wiki]]'s secrets come from the variables it names, not the shared ones."""
    found = {}
    for key, standard in (("password_env", PASSWORD_ENV), ("oauth_token_env", TOKEN_ENV)):
        variable = values.pop(key, None)
        if variable is None:
            continue
        if not env.get(variable):
            raise ConfigError(f"{origin}: '{key}' names ${variable}, which is not set")
        found[standard] = env[variable]
    return found


def validate(settings: Settings) -> None:
    if settings.concurrency < 1:
        raise ConfigError("concurrency must be at least 1")
    if settings.max_retries < 0:
        raise ConfigError("max_retries must not be negative")
    if settings.maxlag < 0:
        raise ConfigError("maxlag must not be negative")
    if settings.request_timeout <= 0:
        raise ConfigError("request_timeout must be positive")
    if settings.history_mode not in HISTORY_MODES:
        raise ConfigError(f"history_mode must be one of {', '.join(HISTORY_MODES)}")
    if settings.user and not settings.password:
        raise ConfigError(
            f"--user {settings.user} needs a password: set {PASSWORD_ENV} "
            "or 'password' in the config file"
        )
    if settings.user and "@" not in settings.user:
        raise ConfigError("--user takes a bot password login name like Name@AppId")


def parse_namespaces(text: str) -> list[int]:
    try:
        return sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as exc:
        raise ConfigError(f"--namespaces takes numbers separated by commas, not {text!r}") from exc


SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(value: int | str, what: str) -> int:
    """Bytes, from a number or a size like ``500M`` (K, M, G, T: powers of 1024)."""
    if isinstance(value, int) and value >= 0:
        return value
    text = str(value).strip().upper().removesuffix("B")
    number, unit = (text[:-1], text[-1]) if text[-1:] in ("K", "M", "G", "T") else (text, "")
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if amount < 0:
        raise ConfigError(f"{what} must be a size like 500M or 2G, not {value!r}")
    return int(amount * SIZE_UNITS[unit])
