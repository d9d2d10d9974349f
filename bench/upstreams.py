"""Emulated upstreams with fixed latencies, and the reference aggregator, as aiohttp apps.

Run as its own process (`python -m bench.upstreams ROLE PORT ...`) so the gateway under test, the
reference and the load generator do not share a CPU with them more than the machine forces.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
from aiohttp import web

SAHHA_LATENCY_S = 0.040
WHOOP_LATENCY_S = 0.010

SCORES = [
    {
        "id": f"s-{t}",
        "type": t,
        "state": "high",
        "score": 0.81,
        "factors": [],
        "dataSources": ["activity"],
        "scoreDateTime": "{day}T00:00:00+00:00",
        "createdAtUtc": "{day}T06:00:00Z",
        "version": 1,
    }
    for t in ("readiness", "sleep", "activity", "wellbeing", "mental_wellbeing")
]
BIOMARKERS = [
    {
        "id": f"b-{t}",
        "category": c,
        "type": t,
        "periodicity": "daily",
        "aggregation": "total",
        "value": v,
        "unit": u,
        "valueType": "double",
        "startDateTime": "{day}T00:00:00+00:00",
        "endDateTime": "{day}T23:59:59+00:00",
    }
    for c, t, v, u in (
        ("activity", "steps", "9000", "count"),
        ("activity", "total_energy_burned", "2300", "kcal"),
        ("sleep", "sleep_duration", "420", "minute"),
        ("vitals", "heart_rate_resting", "55", "bpm"),
    )
]


def _daily(user: str, day: str) -> dict[str, Any]:
    t = f"{day}T07:00:00Z"
    return {
        "user_id": user,
        "start_date": day,
        "end_date": day,
        "connection": "connected",
        "data_source": "database",
        "last_sync_at": t,
        "stale": False,
        "warning": None,
        "days": [
            {
                "date": day,
                "cycle": {
                    "id": 1,
                    "start": t,
                    "end": None,
                    "timezone_offset": "+00:00",
                    "score_state": "SCORED",
                    "strain": 11.2,
                    "kilojoule": 9000.0,
                    "average_heart_rate": 70,
                    "max_heart_rate": 160,
                    "updated_at": t,
                },
                "recovery": {
                    "cycle_id": 1,
                    "sleep_id": "s",
                    "score_state": "SCORED",
                    "recovery_score": 70.0,
                    "resting_heart_rate": 52.0,
                    "hrv_rmssd_milli": 60.0,
                    "spo2_percentage": 96.0,
                    "skin_temp_celsius": 33.0,
                    "user_calibrating": False,
                    "updated_at": t,
                },
                "sleeps": [
                    {
                        "id": "s",
                        "cycle_id": 1,
                        "start": t,
                        "end": t,
                        "timezone_offset": "+00:00",
                        "nap": False,
                        "main": True,
                        "score_state": "SCORED",
                        "sleep_performance_percentage": 90.0,
                        "sleep_efficiency_percentage": 91.0,
                        "sleep_consistency_percentage": 80.0,
                        "respiratory_rate": 15.0,
                        "total_in_bed_time_milli": 28_000_000,
                        "total_light_sleep_time_milli": 12_000_000,
                        "total_slow_wave_sleep_time_milli": 6_000_000,
                        "total_rem_sleep_time_milli": 6_000_000,
                        "updated_at": t,
                    }
                ],
                "workouts": [],
            }
        ],
    }


def sahha_app() -> web.Application:
    async def token(_: web.Request) -> web.Response:
        return web.json_response(
            {"accountToken": "bench-token", "expiresIn": 86400, "tokenType": "Account"}
        )

    async def scores(req: web.Request) -> web.Response:
        await asyncio.sleep(SAHHA_LATENCY_S)
        day = req.query["startDateTime"][:10]
        return web.Response(
            text=json.dumps(SCORES).replace("{day}", day),
            content_type="application/json",
        )

    async def biomarkers(req: web.Request) -> web.Response:
        await asyncio.sleep(SAHHA_LATENCY_S)
        day = req.query["startDateTime"][:10]
        return web.Response(
            text=json.dumps(BIOMARKERS).replace("{day}", day),
            content_type="application/json",
        )

    app = web.Application()
    app.router.add_post("/api/v1/oauth/account/token", token)
    app.router.add_get("/api/v1/profile/score/{user}", scores)
    app.router.add_get("/api/v1/profile/biomarker/{user}", biomarkers)
    return app


def whoop_service_app() -> web.Application:
    async def daily(req: web.Request) -> web.Response:
        await asyncio.sleep(WHOOP_LATENCY_S)
        return web.json_response(
            _daily(req.match_info["user"], req.query["start_date"])
        )

    app = web.Application()
    app.router.add_get("/internal/data/daily/{user}", daily)
    return app


def reference_app(sahha_url: str, whoop_url: str) -> web.Application:
    """The minimal aggregator: Sahha (both calls at once), then WHOOP, merged, as JSON."""
    state: dict[str, aiohttp.ClientSession] = {}

    async def start(app: web.Application) -> None:
        state["http"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))

    async def stop(app: web.Application) -> None:
        await state["http"].close()

    async def health(req: web.Request) -> web.Response:
        http, user, day = state["http"], req.match_info["user"], req.query["date"]
        params = {
            "startDateTime": f"{day}T00:00:00+00:00",
            "endDateTime": f"{day}T23:59:59+00:00",
        }
        headers = {"Authorization": "account bench-token"}

        async def get(url: str, p: dict[str, str]) -> Any:
            async with http.get(url, params=p, headers=headers) as r:
                return await r.json()

        scores, markers = await asyncio.gather(
            get(f"{sahha_url}/api/v1/profile/score/{user}", params),
            get(f"{sahha_url}/api/v1/profile/biomarker/{user}", params),
        )
        whoop = await get(
            f"{whoop_url}/internal/data/daily/{user}",
            {"start_date": day, "end_date": day},
        )
        day_whoop = whoop["days"][0]
        summary = {
            "readiness": day_whoop["recovery"]["recovery_score"],
            "activity": next(
                s["score"] * 100 for s in scores if s["type"] == "activity"
            ),
            "steps": float(next(b["value"] for b in markers if b["type"] == "steps")),
        }
        return web.json_response(
            {
                "user_id": user,
                "days": [
                    {
                        "date": day,
                        "summary": summary,
                        "sahha": {"scores": scores, "biomarkers": markers},
                        "whoop": day_whoop,
                    }
                ],
            }
        )

    app = web.Application()
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_get("/api/v1/health/{user}", health)
    return app


def main() -> None:
    role, port = sys.argv[1], int(sys.argv[2])
    app = {
        "sahha": sahha_app,
        "whoop_service": whoop_service_app,
        "reference": lambda: reference_app(sys.argv[3], sys.argv[4]),
    }[role]()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
