"""How a job talks to a wiki: its polite budget, the client's settings, the etiquette
checked before the first request, and the login."""

from __future__ import annotations

from harvester.auth import Identity, check_bearer_token, login_bot_password, whoami
from harvester.budget import BudgetPolicy, PoliteBudget, is_wikimedia_host
from harvester.client import ApiClient, ClientSettings
from harvester.config import Settings
from harvester.errors import ConfigError


def budget_for(settings: Settings, host: str) -> PoliteBudget:
    """The host's polite defaults, with the run's settings on top (0 means no ceiling)."""
    policy = BudgetPolicy.for_host(
        host, concurrency=settings.concurrency, max_retries=settings.max_retries,
        per_second=settings.max_requests_per_second,
        per_minute=settings.max_requests_per_minute,
    )
    return PoliteBudget(policy)


def client_settings(settings: Settings) -> ClientSettings:
    return ClientSettings(
        contact=settings.contact, maxlag=settings.maxlag or None,
        request_timeout=settings.request_timeout, bearer_token=settings.oauth_token,
    )


def check_etiquette(settings: Settings, host: str) -> None:
    if is_wikimedia_host(host) and not settings.contact:
        raise ConfigError(
            f"{host} is a Wikimedia wiki: give a contact (--contact URL-or-email, or 'contact' "
            "in the config) so its operators can reach you, as their API etiquette requires"
        )


async def authenticate(client: ApiClient, settings: Settings) -> Identity:
    if settings.user and settings.password:
        return await login_bot_password(client, settings.user, settings.password)
    if settings.oauth_token:
        return await check_bearer_token(client)
    return await whoami(client)
