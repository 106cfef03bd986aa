"""MediaWiki Action API client: one request, retried politely, errors mapped.

The client takes an ``httpx`` transport so tests can put a fake wiki
(``httpx.MockTransport``) behind it. Every request goes through the run's
:class:`~harvester.budget.PoliteBudget`. Timeouts are applied with
``trio.fail_after`` around each attempt, not passed down as arguments.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import trio

from harvester import __version__
from harvester.budget import PoliteBudget
from harvester.errors import (
    ApiError,
    BadResponseError,
    HttpError,
    MaxLagError,
    RateLimitedError,
    ReadOnlyError,
    RemoteError,
    RetriesExhaustedError,
    RetryableError,
    ServerError,
    TransportError,
)

log = logging.getLogger("harvester.client")

MAX_REDIRECTS = 5
SECRET_PARAMS = frozenset({"lgpassword", "lgtoken", "token", "password"})


def user_agent(contact: str | None) -> str:
    return f"harvester/{__version__} ({contact or 'no contact configured'})"


@dataclass(frozen=True)
class ClientSettings:
    contact: str | None = None
    maxlag: int | None = 5
    request_timeout: float = 120.0
    max_response_bytes: int = 256 * 1024 * 1024
    bearer_token: str | None = None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def redact(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: ("***" if k in SECRET_PARAMS else v) for k, v in params.items()}


class ApiClient:
    """Speaks to one wiki's api.php; only ever follows URLs on that wiki's host."""

    def __init__(
        self, http: httpx.AsyncClient, budget: PoliteBudget, settings: ClientSettings, host: str
    ) -> None:
        self.http = http
        self.budget = budget
        self.settings = settings
        self.host = host.lower()
        self.api_url: str | None = None

    # -- one attempt --------------------------------------------------------------

    async def fetch_once(
        self, url: str, *, params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """One HTTP exchange under the budget, following same-host redirects only."""
        async with self.budget.slot() as started:
            try:
                with trio.fail_after(self.settings.request_timeout):
                    response = await self._exchange(url, params, data)
            except trio.TooSlowError as exc:
                raise TransportError(
                    f"no answer from {self.host} within {self.settings.request_timeout:g} s"
                ) from exc
        response.extensions["started"] = started
        return response

    async def _exchange(
        self, url: str, params: Mapping[str, Any] | None, data: Mapping[str, Any] | None
    ) -> httpx.Response:
        method = "POST" if data is not None else "GET"
        for _ in range(MAX_REDIRECTS + 1):
            self._check_host(url)
            try:
                request = self.http.build_request(method, url, params=params, data=data)
                response = await self.http.send(request, stream=True)
                try:
                    if response.has_redirect_location:
                        url = urljoin(str(response.url), response.headers["location"])
                        continue
                    body = await self._read_capped(response)
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                raise TransportError(f"connection to {self.host} failed: {exc}") from exc
            return httpx.Response(
                response.status_code, headers=response.headers, content=body,
                request=response.request,
            )
        raise RemoteError(f"too many redirects from {url}")

    def _check_host(self, url: str) -> None:
        host = (urlsplit(url).hostname or "").lower()
        if host != self.host:
            raise RemoteError(f"refusing to follow {url}: it is not on {self.host}")

    async def _read_capped(self, response: httpx.Response) -> bytes:
        cap = self.settings.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise RemoteError(f"response from {self.host} exceeds {cap:,} bytes; refusing it")
            chunks.append(chunk)
        return b"".join(chunks)

    # -- the API ------------------------------------------------------------------

    async def call(
        self, params: Mapping[str, Any], *, post: bool = False
    ) -> dict[str, Any]:
        """An API request with retries; returns the decoded JSON object."""
        if self.api_url is None:
            raise RuntimeError("api_url is not known yet")
        full = {"format": "json", "formatversion": "2", **params}
        if self.settings.maxlag is not None:
            full.setdefault("maxlag", str(self.settings.maxlag))
        attempt = 0
        while True:
            try:
                result, started = await self._call_once(full, post)
            except RetryableError as exc:
                if attempt >= self.budget.policy.max_retries:
                    raise RetriesExhaustedError(
                        f"giving up after {attempt + 1} attempts: {exc}", exc
                    ) from exc
                wait = self.budget.note_failure(exc, attempt)
                log.info("retrying in %.1f s after: %s", wait, exc)
                attempt += 1
                await trio.sleep(wait)
                continue
            self.budget.note_success(started)
            return result

    async def _call_once(
        self, params: dict[str, Any], post: bool
    ) -> tuple[dict[str, Any], float]:
        assert self.api_url is not None
        log.debug("request %s", redact(params))
        if post:
            response = await self.fetch_once(self.api_url, data=params)
        else:
            response = await self.fetch_once(self.api_url, params=params)
        check_status(response, self.host)
        try:
            data = json.loads(response.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadResponseError(f"{self.host} sent a response that is not JSON") from exc
        if not isinstance(data, dict):
            raise BadResponseError(f"{self.host} sent JSON that is not an object")
        if "error" in data:
            raise map_api_error(data["error"], response)
        return data, float(response.extensions["started"])


def check_status(response: httpx.Response, host: str) -> None:
    status = response.status_code
    if status < 300:
        return
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status in (429, 503):
        raise RateLimitedError(f"{host} answered HTTP {status}", retry_after)
    if status >= 500:
        raise ServerError(f"{host} answered HTTP {status}", retry_after)
    raise HttpError(f"{host} answered HTTP {status} for {response.request.url}", status)


def map_api_error(error: Any, response: httpx.Response) -> Exception:
    if not isinstance(error, dict):
        return BadResponseError("the API returned a malformed error object")
    code = str(error.get("code", "unknown"))
    info = str(error.get("info", error.get("text", "")))
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if code == "maxlag":
        return MaxLagError(f"server lag: {info}", retry_after)
    if code == "ratelimited":
        return RateLimitedError(f"rate limited: {info}", retry_after)
    if code == "readonly":
        return ReadOnlyError(f"wiki is read-only: {info}", retry_after)
    if code.startswith("internal_api_error"):
        return ServerError(f"internal error on the wiki: {info}", retry_after)
    if code == "readapidenied":
        return ApiError(code, "this wiki requires logging in to read (use --user)")
    return ApiError(code, info)


@asynccontextmanager
async def open_client(
    url: str, budget: PoliteBudget, settings: ClientSettings,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[ApiClient]:
    """An :class:`ApiClient` for the wiki at ``url`` (any URL on its host)."""
    host = urlsplit(url).hostname
    if not host or urlsplit(url).scheme not in ("http", "https"):
        raise RemoteError(f"not an http(s) URL: {url}")
    headers = {"User-Agent": user_agent(settings.contact), "Accept-Encoding": "gzip"}
    if settings.bearer_token:
        headers["Authorization"] = f"Bearer {settings.bearer_token}"
    async with httpx.AsyncClient(
        headers=headers, transport=transport, timeout=None, follow_redirects=False
    ) as http:
        yield ApiClient(http, budget, settings, host)
