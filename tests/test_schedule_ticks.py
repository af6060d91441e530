"""Tick arithmetic with an injected clock: crontab weekdays, seconds, DST repeat and gap, intervals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from daemon.schedule.cron import CronError, weekdays
from daemon.schedule.ticks import CronTicks, EveryTicks, tick_key

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def _local(ticks, zone, start, count):
    found, at = [], start
    for _ in range(count):
        at = ticks.next_after(at)
        found.append(at.astimezone(zone))
    return found


def _day_ticks(expression, zone, day):
    """Every tick of a cron expression during one local calendar day (midnight to midnight)."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = start + timedelta(days=1, hours=2)  # the local midnight after, whatever the DST change
    ticks = CronTicks(expression, zone).between(start.astimezone(UTC) - timedelta(seconds=1), end.astimezone(UTC))
    return [t.astimezone(zone) for t in ticks if t.astimezone(zone).date() == day]


@pytest.mark.parametrize("expression", ["30 3 * * 0", "30 3 * * 7", "30 3 * * sun", "30 3 * * SUN"])
def test_crontab_day_0_and_7_are_sunday(expression):
    wednesday = datetime(2026, 11, 11, 12, tzinfo=UTC)
    fires = _local(CronTicks(expression, UTC), UTC, wednesday, 3)
    assert [f.strftime("%a %H:%M") for f in fires] == ["Sun 03:30"] * 3
    assert [f.day for f in fires] == [15, 22, 29]


def test_crontab_weekday_ranges_lists_and_steps():
    assert weekdays("1-5") == "mon,tue,wed,thu,fri"
    assert weekdays("5-7") == "sun,fri,sat"
    assert weekdays("0,6") == "sun,sat"
    assert weekdays("*/2") == "sun,tue,thu,sat"
    assert weekdays("*") == "*"
    fires = _local(CronTicks("0 9 * * 1-5", UTC), UTC, datetime(2026, 11, 13, 10, tzinfo=UTC), 3)
    assert [f.strftime("%a %d") for f in fires] == ["Mon 16", "Tue 17", "Wed 18"]


def test_crontab_day_of_month_or_day_of_week_when_both_are_given():
    # crontab: "the 1st, or any Monday" (APScheduler alone would mean "a Monday the 1st").
    ticks = CronTicks("0 0 1 * mon", UTC).between(
        datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 12, 10, tzinfo=UTC)
    )
    assert [t.strftime("%a %d") for t in ticks] == ["Mon 16", "Mon 23", "Mon 30", "Tue 01", "Mon 07"]


def test_six_fields_put_seconds_first():
    start = datetime(2026, 11, 11, 7, 0, 0, tzinfo=UTC)
    every_15s = _local(CronTicks("*/15 * * * * *", UTC), UTC, start, 4)
    assert [f.strftime("%H:%M:%S") for f in every_15s] == ["07:00:15", "07:00:30", "07:00:45", "07:01:00"]
    half_past = _local(CronTicks("30 0 7 * * *", UTC), UTC, start, 2)
    assert [f.strftime("%d %H:%M:%S") for f in half_past] == ["11 07:00:30", "12 07:00:30"]


@pytest.mark.parametrize("expression", ["61 * * * *", "0 7 * *", "0 7 * * 8", "0 7 * * funday", "0 7 * * 5-2"])
def test_invalid_cron_is_refused_in_one_sentence(expression):
    with pytest.raises(CronError) as caught:
        CronTicks(expression, UTC)
    assert expression in str(caught.value)


@pytest.mark.parametrize(
    ("zone", "fall_back"), [(BERLIN, datetime(2026, 10, 25).date()), (NEW_YORK, datetime(2026, 11, 1).date())]
)
def test_a_wall_clock_time_the_dst_change_repeats_fires_once(zone, fall_back):
    repeated = "30 1 * * *" if zone is NEW_YORK else "30 2 * * *"
    assert len(_day_ticks(repeated, zone, fall_back)) == 1
    half_hours = _day_ticks("*/30 * * * *", zone, fall_back)
    walls = [t.strftime("%H:%M") for t in half_hours]
    assert len(walls) == 48 and len(set(walls)) == 48  # 25 real hours, each wall-clock time once
    instants = [t.astimezone(UTC) for t in half_hours]
    assert instants == sorted(set(instants))


@pytest.mark.parametrize(
    ("zone", "spring_forward"), [(BERLIN, datetime(2026, 3, 29).date()), (NEW_YORK, datetime(2026, 3, 8).date())]
)
def test_a_wall_clock_time_the_dst_change_skips_fires_at_the_next_valid_instant(zone, spring_forward):
    fires = _day_ticks("30 2 * * *", zone, spring_forward)
    assert [f.strftime("%H:%M") for f in fires] == ["03:00"]  # 02:30 does not exist that night
    next_day = _local(CronTicks("30 2 * * *", zone), zone, fires[0], 1)[0]
    assert next_day.strftime("%d %H:%M") == f"{spring_forward.day + 1:02d} 02:30"
    half_hours = _day_ticks("*/30 * * * *", zone, spring_forward)
    assert len(half_hours) == 46  # 02:00 and 02:30 both fire at 03:00, which fires once
    assert [t.strftime("%H:%M") for t in half_hours[3:6]] == ["01:30", "03:00", "03:30"]


def test_every_counts_from_the_epoch_so_ticks_survive_restarts():
    ticks = EveryTicks(timedelta(minutes=15))
    now = datetime(2026, 11, 11, 10, 7, 42, tzinfo=UTC)
    assert ticks.next_after(now) == datetime(2026, 11, 11, 10, 15, tzinfo=UTC)
    assert ticks.next_after(datetime(2026, 11, 11, 10, 15, tzinfo=UTC)) == datetime(2026, 11, 11, 10, 30, tzinfo=UTC)
    assert ticks.latest_until(now, since=now - timedelta(days=1)) == datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
    assert tick_key(ticks.next_after(now)) == "tick:2026-11-11T10:15:00Z"


def test_latest_until_looks_back_far_enough_for_rare_schedules():
    yearly = CronTicks("0 0 1 1 *", UTC)
    now = datetime(2026, 11, 11, tzinfo=UTC)
    assert yearly.latest_until(now, since=now - timedelta(days=800)) == datetime(2026, 1, 1, tzinfo=UTC)
    assert yearly.latest_until(now, since=datetime(2026, 6, 1, tzinfo=UTC)) is None


def test_a_bad_cron_in_a_workflow_file_names_file_line_and_key(tmp_path):
    from daemon.errors import WorkflowError
    from daemon.workflow import load_workflow

    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ntrigger:\n  schedule: {cron: '0 7 * * 8'}\nsteps:\n  - write: {path: ~/x.md, content: x}\n"
    )
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    assert str(caught.value).startswith(f"{path}, line 3, key 'trigger.schedule.cron': the cron expression '0 7 * * 8'")
    assert "0 and 7 are Sunday" in str(caught.value)
