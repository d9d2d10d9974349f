"""Pure: WHOOP wire records → the column values of their tables (the raw payload kept)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from whoop_service.whoop.schemas import (
    WhoopCycle,
    WhoopRecovery,
    WhoopSleep,
    WhoopWorkout,
)

Row = dict[str, Any]


def _common(record: Any, user_id: str, synced_at: datetime) -> Row:
    return {
        "user_id": user_id,
        "whoop_user_id": record.user_id,
        "score_state": record.score_state,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "raw": record.model_dump(mode="json", exclude_none=True),
        "synced_at": synced_at,
    }


def cycle_row(c: WhoopCycle, user_id: str, synced_at: datetime) -> Row:
    s = c.score if c.score_state == "SCORED" else None
    return {
        **_common(c, user_id, synced_at),
        "id": c.id,
        "start": c.start,
        "end": c.end,
        "timezone_offset": c.timezone_offset,
        "strain": s.strain if s else None,
        "kilojoule": s.kilojoule if s else None,
        "average_heart_rate": s.average_heart_rate if s else None,
        "max_heart_rate": s.max_heart_rate if s else None,
    }


def recovery_row(r: WhoopRecovery, user_id: str, synced_at: datetime) -> Row:
    s = r.score if r.score_state == "SCORED" else None
    return {
        **_common(r, user_id, synced_at),
        "cycle_id": r.cycle_id,
        "sleep_id": r.sleep_id,
        "user_calibrating": s.user_calibrating if s else None,
        "recovery_score": s.recovery_score if s else None,
        "resting_heart_rate": s.resting_heart_rate if s else None,
        "hrv_rmssd_milli": s.hrv_rmssd_milli if s else None,
        "spo2_percentage": s.spo2_percentage if s else None,
        "skin_temp_celsius": s.skin_temp_celsius if s else None,
    }


def sleep_row(sl: WhoopSleep, user_id: str, synced_at: datetime) -> Row:
    s = sl.score if sl.score_state == "SCORED" else None
    stages = s.stage_summary if s else None
    return {
        **_common(sl, user_id, synced_at),
        "id": sl.id,
        "cycle_id": sl.cycle_id,
        "start": sl.start,
        "end": sl.end,
        "timezone_offset": sl.timezone_offset,
        "nap": sl.nap,
        "sleep_performance_percentage": s.sleep_performance_percentage if s else None,
        "sleep_efficiency_percentage": s.sleep_efficiency_percentage if s else None,
        "sleep_consistency_percentage": s.sleep_consistency_percentage if s else None,
        "respiratory_rate": s.respiratory_rate if s else None,
        "total_in_bed_time_milli": stages.total_in_bed_time_milli if stages else None,
        "total_light_sleep_time_milli": stages.total_light_sleep_time_milli
        if stages
        else None,
        "total_slow_wave_sleep_time_milli": (
            stages.total_slow_wave_sleep_time_milli if stages else None
        ),
        "total_rem_sleep_time_milli": stages.total_rem_sleep_time_milli
        if stages
        else None,
    }


def workout_row(w: WhoopWorkout, user_id: str, synced_at: datetime) -> Row:
    s = w.score if w.score_state == "SCORED" else None
    return {
        **_common(w, user_id, synced_at),
        "id": w.id,
        "start": w.start,
        "end": w.end,
        "timezone_offset": w.timezone_offset,
        "sport_name": w.sport_name[:64],
        "strain": s.strain if s else None,
        "kilojoule": s.kilojoule if s else None,
        "average_heart_rate": s.average_heart_rate if s else None,
        "max_heart_rate": s.max_heart_rate if s else None,
        "distance_meter": s.distance_meter if s else None,
    }
