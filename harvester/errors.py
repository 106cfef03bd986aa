"""One error hierarchy for everything that can go wrong on the remote side.

Low-level exceptions (httpx, json, trio timeouts) are mapped to these at the
boundary with ``raise ... from exc``; the CLI turns each class into a one-line
message and an exit code (see ``EXIT_CODES`` in ``harvester.cli``).
"""

from __future__ import annotations


class HarvesterError(Exception):
    """Base class: the message is a complete sentence meant for the user."""


class ConfigError(HarvesterError):
    """Bad command-line arguments or configuration file."""


class RemoteError(HarvesterError):
    """The remote side failed in a way that retrying will not fix."""


class NotMediaWikiError(RemoteError):
    """The URL does not lead to a MediaWiki Action API."""


class RedirectRefused(RemoteError):
    """A redirect to another host than the one the client is for: never followed."""


class HttpError(RemoteError):
    """An HTTP status that is not retryable (404, 403, ...)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ApiError(RemoteError):
    """The API answered with an error object that retrying will not fix."""

    def __init__(self, code: str, info: str) -> None:
        super().__init__(f"API error {code}: {info}")
        self.code = code
        self.info = info


class AuthError(ApiError):
    """Login failed or the credentials lack a needed right."""


class ContinuationLoopError(RemoteError):
    """The server handed back a continuation token it had already given."""


class RetryableError(HarvesterError):
    """A transient failure: the budget backs off and tries again.

    ``retry_after`` is the server's instruction in seconds, when it gave one.
    ``pushback`` marks signals that mean "you are too fast" (429, 503, maxlag,
    ratelimited); they slow every worker, not just the one that was told.
    """

    pushback = False

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransportError(RetryableError):
    """Connection refused, reset, timed out, or a response body we could not read."""


class ServerError(RetryableError):
    """HTTP 5xx other than 503."""


class BadResponseError(RetryableError):
    """HTTP 200 but the body is not the JSON we asked for (HTML error page, truncated)."""


class RateLimitedError(RetryableError):
    """HTTP 429/503 or the API's ``ratelimited`` error."""

    pushback = True


class MaxLagError(RetryableError):
    """The API's ``maxlag`` error: database replicas are lagging."""

    pushback = True


class ReadOnlyError(RetryableError):
    """The API's ``readonly`` error: the wiki is temporarily read-only."""


class RetriesExhaustedError(HarvesterError):
    """A request kept failing after the configured number of retries."""

    def __init__(self, message: str, last: RetryableError) -> None:
        super().__init__(message)
        self.last = last


class Terminated(KeyboardInterrupt):
    """SIGTERM, how systemd (and kill) stop a process: handled as Ctrl-C is, at the next
    safe point, but told apart by its exit code."""


def first_cause(group: BaseExceptionGroup) -> BaseException:
    """The one error to report from a nursery's group: an interrupt, then our own errors."""
    leaves: list[BaseException] = []

    def collect(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                collect(inner)
        else:
            leaves.append(exc)

    collect(group)
    for kind in (KeyboardInterrupt, HarvesterError, Exception):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return leaves[0]


class PolicyRefusal(HarvesterError):
    """The site's rules for robots (robots.txt, the robot policy) say not to go ahead."""
