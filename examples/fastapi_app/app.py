"""
One client per app, opened and closed by the lifespan; each request takes a
`with_options` copy for the settings it needs (the same connections and the
same rate budget). Serve it with::

    uvicorn examples.fastapi_app.app:app

Configured from the environment: ``PUSHWOOSH_API_TOKEN`` (read by the
client), ``JOURNEY_BASE_URL`` (default: Pushwoosh's API).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request

import journey_async as ja

BASE_URL = os.environ.get("JOURNEY_BASE_URL", "https://journey.pushwoosh.com")

# A visitor waits for the page: two attempts and five seconds in all, not the
# default minute a background job can afford.
IN_A_WEB_REQUEST = ja.RetryPolicy(max_attempts=2, deadline=5.0)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with ja.AsyncJourneyClient(base_url=BASE_URL) as client:
        app.state.journeys = client
        yield


app = FastAPI(lifespan=lifespan)


def journeys(request: Request) -> ja.AsyncJourneyClient:
    client: ja.AsyncJourneyClient = request.app.state.journeys
    return client.with_options(retry=IN_A_WEB_REQUEST)


@app.get("/journeys/{journey_id}/stats")
async def journey_stats(journey_id: str, request: Request) -> dict[str, Any]:
    try:
        stats = await journeys(request).get_stats(journey_id)
    except (ja.NotFoundError, ValueError):
        # ValueError: an id the client refuses before sending (the path
        # parameter arrives decoded: "%2E%2E" is ".."), so no such journey.
        raise HTTPException(404, "no such journey") from None
    except ja.RateLimitError as exc:
        raise HTTPException(503, "busy, try again", {"Retry-After": "1"}) from exc
    except ja.JourneyError as exc:
        raise HTTPException(502, "the Journey API failed") from exc
    return {
        "title": stats.title,
        "points": [
            {"title": point.title, "campaign": point.campaign_code} for point in stats.points
        ],
    }
