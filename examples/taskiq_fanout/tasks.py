"""
The two tasks. Results travel through Redis as JSON, so they are plain dicts:
`journey_async.result_to_dict` and `journey_async.error_to_dict` on the
worker, `result_from_dict` and `error_from_dict` where they are read.
"""

from __future__ import annotations

from typing import Any

from taskiq import Context, TaskiqDepends

import journey_async as ja

from .broker import broker


def _client(context: Context) -> ja.AsyncJourneyClient:
    client: ja.AsyncJourneyClient = context.state.client
    return client


@broker.task
async def fetch_stats(
    journey_ids: list[str], context: Context = TaskiqDepends()
) -> list[dict[str, Any]]:
    """The statistics of a shard of journeys: one result dict per id, in order."""
    results = await _client(context).get_stats_many(journey_ids)
    return [ja.result_to_dict(result) for result in results]


@broker.task
async def remove_users(
    user_ids: list[str],
    journey_ids: list[str] | None = None,
    all_journeys: bool = False,
    context: Context = TaskiqDepends(),
) -> dict[str, Any]:
    """A batched removal; every user ends in ``removed`` or ``failed``."""
    try:
        result = await _client(context).remove_users(user_ids, journey_ids, all_journeys)
    except ja.RemovalError as exc:
        return {
            "removed": list(exc.removed),
            "failed": list(exc.failed),
            "errors": [ja.error_to_dict(error) for error in exc.errors],
        }
    except ja.JourneyError as exc:
        return {"removed": [], "failed": user_ids, "errors": [ja.error_to_dict(exc)]}
    return {"removed": list(result.user_ids), "failed": [], "errors": []}
