"""
The caller's side: shard the ids over the workers, wait, read results back.

    results = await fetch_all(journey_ids, shard_size=100)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import journey_async as ja

from .tasks import fetch_stats, remove_users

RESULT_TIMEOUT = 600.0
"""Seconds a caller waits for one task's result."""


async def fetch_all(journey_ids: Sequence[str], *, shard_size: int = 100) -> list[ja.StatsResult]:
    """Every journey's `StatsResult`, in input order, fetched by the workers."""
    shards = [list(journey_ids[i : i + shard_size]) for i in range(0, len(journey_ids), shard_size)]
    tasks = [await fetch_stats.kiq(shard) for shard in shards]
    done = await asyncio.gather(*(task.wait_result(timeout=RESULT_TIMEOUT) for task in tasks))
    results: list[ja.StatsResult] = []
    for outcome in done:
        outcome.raise_for_error()
        results.extend(ja.result_from_dict(item) for item in outcome.return_value)
    return results


async def remove_everywhere(user_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Remove *user_ids* from all journeys through one task: (removed, failed)."""
    task = await remove_users.kiq(list(user_ids), None, True)
    outcome = await task.wait_result(timeout=RESULT_TIMEOUT)
    outcome.raise_for_error()
    report = outcome.return_value
    return report["removed"], report["failed"]
