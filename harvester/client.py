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
import math
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
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
    RedirectRefused,
    RemoteError,
    RetriesExhaustedError,
    RetryableError,
    ServerError,
    TransportError,
)

log = logging.getLogger("harvester.client")

T = TypeVar("T")

MAX_REDIRECTS = 5
DEFAULT_PORTS = {"http": 80, "https": 443}
SECRET_PARAMS = frozenset({"lgpassword", "lgtoken", "token", "password"})


def user_agent(contact: str | None) -> str:
    return f"harvester/{__version__} ({contact or 'no contact configured'})"


@dataclass(frozen=True)
class ClientSettings:
    contact: str | None = None
    maxlag: int | None = 5
    request_timeout: float = 120.0
    # MediaWiki caps a response's content at $wgAPIMaxResultSize (8 MiB by default);
    # far above that is a broken or hostile server, and the cap bounds our memory.
    max_response_bytes: int = 64 * 1024 * 1024
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
    """Speaks to one wiki's api.php; only ever follows URLs on that wiki's host and port."""

    def __init__(
        self, http: httpx.AsyncClient, budget: PoliteBudget, settings: ClientSettings, host: str,
        *, scheme: str = "http", port: int | None = None,
    ) -> None:
        self.http = http
        self.budget = budget
        self.settings = settings
        self.host = host.lower()
        self.scheme = scheme
        self.port = port or DEFAULT_PORTS.get(scheme)
        self.api_url: str | None = None
        # This client's own requests: its budget may be shared with other wikis on the
        # same host (a fleet), whose requests the budget's count includes.
        self.requests = 0

    # -- one attempt --------------------------------------------------------------

    async def fetch_once(
        self, url: str, *, params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None, max_bytes: int | None = None,
    ) -> httpx.Response:
        """One HTTP exchange under the budget, following same-host redirects only; a body
        over ``max_bytes`` (default: the settings' cap) is abandoned."""
        cap = self.settings.max_response_bytes if max_bytes is None else max_bytes
        async with self.budget.slot() as started:
            self.requests += 1
            try:
                with trio.fail_after(self.settings.request_timeout):
                    response = await self._exchange(url, params, data, cap)
            except trio.TooSlowError as exc:
                raise TransportError(
                    f"no answer from {self.host} within {self.settings.request_timeout:g} s"
                ) from exc
        response.extensions["started"] = started
        return response

    async def _exchange(
        self, url: str, params: Mapping[str, Any] | None, data: Mapping[str, Any] | None,
        cap: int,
    ) -> httpx.Response:
        method = "POST" if data is not None else "GET"
        async with self._following(method, url, params=params, data=data) as response:
            try:
                body = await self._read_capped(response, cap)
            except httpx.TransportError as exc:
                raise self._transport_error(exc) from exc
        return httpx.Response(
            response.status_code, headers=response.headers, content=body,
            request=response.request,
        )

    @asynccontextmanager
    async def open_stream(
        self, url: str, *, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """A GET whose body is read as it comes (:func:`body_chunks`), holding one of the
        budget's slots until it is closed: a download is one connection for its whole
        length. Same-host redirects only; a status other than 2xx or 416 raises."""
        async with self.budget.slot() as started:
            self.requests += 1
            async with self._following("GET", url, headers=headers,
                                       timeout=self.settings.request_timeout) as response:
                if response.status_code != 416:
                    check_status(response, self.host)
                response.extensions["started"] = started
                yield response

    @asynccontextmanager
    async def _following(
        self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """The answer at the end of same-host redirects, its body not read yet (closed on
        leaving). ``timeout`` bounds each request's wait for its answer's headers."""
        for _ in range(MAX_REDIRECTS + 1):
            self._check_host(url)
            request = self.http.build_request(method, url, params=params, data=data,
                                              headers=headers)
            try:
                with trio.fail_after(math.inf if timeout is None else timeout):
                    response = await self.http.send(request, stream=True)
            except trio.TooSlowError as exc:
                raise TransportError(f"no answer from {self.host} within {timeout:g} s") from exc
            except httpx.TransportError as exc:
                raise self._transport_error(exc) from exc
            try:
                if not response.has_redirect_location:
                    yield response
                    return
                url = urljoin(str(response.url), response.headers["location"])
            finally:
                await response.aclose()
        raise RemoteError(f"too many redirects from {url}")

    def _transport_error(self, exc: httpx.TransportError) -> RemoteError | TransportError:
        """A failed connection: retryable, unless it is TLS refusing the certificate."""
        failure = tls_failure(exc)
        if failure is not None:  # a bad certificate does not get better by retrying
            return RemoteError(f"TLS connection to {self.host} failed: {failure}")
        return TransportError(f"connection to {self.host} failed: {exc}")

    async def body_chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        """The body of an :meth:`open_stream` response; a pause longer than the request
        timeout, or a dropped connection, is a retryable transport error."""
        chunks = response.aiter_bytes().__aiter__()
        while True:
            try:
                with trio.fail_after(self.settings.request_timeout):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            except trio.TooSlowError as exc:
                raise TransportError(f"{self.host} stopped sending for "
                                     f"{self.settings.request_timeout:g} s") from exc
            except httpx.TransportError as exc:
                raise self._transport_error(exc) from exc
            yield chunk

    def _check_host(self, url: str) -> None:
        """Only the wiki's own host and port; http may turn into https there, never back."""
        parts = urlsplit(url)
        try:
            port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        except ValueError:
            port = None
        host = (parts.hostname or "").lower()
        same = (parts.scheme, port) == (self.scheme, self.port)
        upgrade = (self.scheme, self.port, parts.scheme, port) == ("http", 80, "https", 443)
        if host != self.host or not (same or upgrade):
            where = self.host if self.port == DEFAULT_PORTS.get(self.scheme) else (
                f"{self.host}:{self.port}")
            raise RedirectRefused(
                f"refusing to follow {url}: it is not on {self.scheme}://{where}")

    async def _read_capped(self, response: httpx.Response, cap: int) -> bytes:
        """The body, read chunk by chunk and abandoned as soon as it passes the cap."""
        claimed = response.headers.get("content-length", "")
        if claimed.isdigit() and int(claimed) > cap:
            raise RemoteError(
                f"response from {self.host} exceeds {cap:,} bytes (it announces "
                f"{int(claimed):,}); refusing it"
            )
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
        return await self.retrying(lambda: self._call_once(full, post))

    async def fetch(
        self, url: str, *, params: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        """A GET outside the API proper (discovery), retried like API calls when the
        server throttles, fails or cannot be reached; other statuses are returned."""

        async def attempt() -> tuple[httpx.Response, float]:
            response = await self.fetch_first(url, params=params)
            return response, float(response.extensions["started"])

        return await self.retrying(attempt)

    async def fetch_first(
        self, url: str, *, params: Mapping[str, Any] | None = None,
        max_bytes: int | None = None,
    ) -> httpx.Response:
        """One attempt of :meth:`fetch`: throttling and server failures raise
        retryable errors, nothing listening at all does not."""
        try:
            response = await self.fetch_once(url, params=params, max_bytes=max_bytes)
        except TransportError as exc:
            # Nothing listening is not a hiccup worth backing off for at first contact.
            if isinstance(exc.__cause__, httpx.ConnectError):
                raise RemoteError(f"cannot reach {self.host}: {exc}") from exc
            raise
        if response.status_code == 429 or response.status_code >= 500:
            check_status(response, self.host)
        return response

    async def retrying(self, once: Callable[[], Awaitable[tuple[T, float]]]) -> T:
        """Run ``once`` (returning a result and when its request started) until it
        succeeds, backing off under the shared budget on retryable errors."""
        attempt = 0
        while True:
            try:
                result, started = await once()
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


def tls_failure(exc: BaseException) -> str | None:
    """The TLS error behind a connection failure (bad certificate, not TLS at all), if any."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            reason = str(cause.reason or cause).lower().replace("_", " ")
            # what OpenSSL says when the other end answers in plain HTTP
            plain = ("wrong version number", "record layer failure", "http request")
            hint = " (is it plain http on that port?)" if reason in plain else ""
            return reason + hint
        cause = cause.__cause__ or cause.__context__
    return None


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
    parts = urlsplit(url)
    host = parts.hostname
    if not host or parts.scheme not in ("http", "https"):
        raise RemoteError(f"not an http(s) URL: {url}")
    try:
        port = parts.port
    except ValueError as exc:
        raise RemoteError(f"not a valid port in {url}") from exc
    headers = {"User-Agent": user_agent(settings.contact), "Accept-Encoding": "gzip"}
    if settings.bearer_token:
        headers["Authorization"] = f"Bearer {settings.bearer_token}"
    async with httpx.AsyncClient(
        headers=headers, transport=transport, timeout=None, follow_redirects=False
    ) as http:
        yield ApiClient(http, budget, settings, host, scheme=parts.scheme, port=port)
