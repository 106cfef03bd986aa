"""The API's ``continue`` protocol, resumable from a saved token."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

from harvester.client import ApiClient
from harvester.errors import ContinuationLoopError

# A server that hands back a token it gave recently is looping; remembering a
# few is enough to catch that without the memory growing with the walk.
RECENT_TOKENS = 8

Continue = dict[str, Any]


async def iterate_query(
    client: ApiClient, params: Mapping[str, Any], resume: Continue | None = None
) -> AsyncIterator[tuple[dict[str, Any], Continue | None]]:
    """Yield ``(response, next_token)`` for each request of a query walk.

    ``next_token`` is what a later run passes as ``resume`` to continue right
    after this response; it is ``None`` on the last response. Saving the token
    together with the response's data is what makes a walk resumable.
    """
    token: Continue = dict(resume) if resume else {"continue": ""}
    recent: deque[str] = deque(maxlen=RECENT_TOKENS)
    while True:
        response = await client.call({**params, **token})
        nxt = response.get("continue")
        if nxt is not None and not isinstance(nxt, dict):
            nxt = None
        yield response, nxt
        if not nxt:
            return
        key = json.dumps(nxt, sort_keys=True)
        if key in recent or nxt == token:
            raise ContinuationLoopError(
                f"the wiki returned the continuation {key} again; stopping instead of looping"
            )
        recent.append(key)
        token = nxt
