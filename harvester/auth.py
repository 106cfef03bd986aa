"""Logging in: bot passwords through action=login, or an OAuth 2 bearer token."""

from __future__ import annotations

from dataclasses import dataclass

from harvester.client import ApiClient
from harvester.errors import AuthError


@dataclass(frozen=True)
class Identity:
    name: str
    anonymous: bool
    high_limits: bool  # the apihighlimits right: 500 revisions with content per request
    rights: frozenset[str] = frozenset()


async def whoami(client: ApiClient) -> Identity:
    data = await client.call({"action": "query", "meta": "userinfo", "uiprop": "rights"})
    info = data["query"]["userinfo"]
    return Identity(
        name=str(info.get("name", "")),
        anonymous=bool(info.get("anon", False)),
        high_limits="apihighlimits" in info.get("rights", []),
        rights=frozenset(str(r) for r in info.get("rights", [])),
    )


async def login_bot_password(client: ApiClient, username: str, password: str) -> Identity:
    """Log in with a bot password (``Name@AppId``); the session lives in the cookie jar."""
    tokens = await client.call({"action": "query", "meta": "tokens", "type": "login"})
    token = tokens["query"]["tokens"]["logintoken"]
    result = await client.call(
        {"action": "login", "lgname": username, "lgpassword": password, "lgtoken": token},
        post=True,
    )
    outcome = result.get("login", {})
    if outcome.get("result") != "Success":
        reason = outcome.get("reason") or outcome.get("result") or "unknown reason"
        raise AuthError("login-failed", f"login as {username} failed: {reason}")
    identity = await whoami(client)
    if identity.anonymous:
        raise AuthError("login-failed", f"login as {username} did not stick (cookies refused?)")
    return identity


async def check_bearer_token(client: ApiClient) -> Identity:
    identity = await whoami(client)
    if identity.anonymous:
        raise AuthError("token-rejected", "the OAuth access token was not accepted by the wiki")
    return identity
