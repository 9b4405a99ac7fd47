"""The API reference's response examples, verbatim, and the URLs of its two
endpoints for `JOURNEY_ID`, for tests to share."""

from __future__ import annotations

from typing import Any

TOKEN = "test-token-5f0c1e"
BASE_URL = "https://journey.pushwoosh.com"
JOURNEY_ID = "11111111-2222-3333-4444-555555555555"
STATS_URL = f"{BASE_URL}/api/journey/{JOURNEY_ID}/statistics/external"
REMOVAL_URL = f"{BASE_URL}/api/journey/drop-users/external"

MESSAGE_EXAMPLE: dict[str, Any] = {
    "payload": {
        "title": "Journey Title",
        "points": [
            {
                "pointTitle": "First Point Title",
                "campaignCode": "AAAAA-00000",
                "presetCode": "12345-67890",
                "pointStat": {"sent": 22648, "opened": 60, "conversion": 0.26492405510420347},
            }
        ],
    }
}

IN_APP_EXAMPLE: dict[str, Any] = {
    "payload": {
        "title": "Journey Title",
        "points": [
            {
                "pointTitle": "In-App element title",
                "campaignCode": "AAAAA-00000",
                "presetCode": "12345-67890",
                "pointStat": {"shows": 3148, "interactions": 2759, "skipped": 36},
            }
        ],
    }
}

MIXED_EXAMPLE: dict[str, Any] = {
    "payload": {
        "title": "Journey Title",
        "points": MESSAGE_EXAMPLE["payload"]["points"] + IN_APP_EXAMPLE["payload"]["points"],
    }
}
