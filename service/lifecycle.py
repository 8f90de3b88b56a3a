"""What the snapshot lifecycle reads and parses: the scheduler's clock, timestamps
(`expires`), durations (`retain_for`, a policy's `retain_duration`) and schedules.

The clock
---------
`now()` is the one "now" of the snapshot scheduler and of `retain_for`: the real UTC clock.
Tests (and only tests) set PIXSTOR_TEST_CLOCK_FILE to a file holding an ISO 8601 time, which
every process of the test then reads as "now"; unset, as in production, nothing but the real
clock is read.

Schedules
---------
Four cron fields, space-separated: minute (0-59), hour (0-23), day of month (1-31), day of
week (0-7, 0 and 7 both Sunday). Each field is `*`, a number, a range `a-b`, any of these
with a step (`*/15`, `8-18/2`), or a comma-separated list of them. As in cron, when both day
fields are restricted a day matches when either does. Times are UTC.
"""
import datetime
import os
import re

CLOCK_FILE = "PIXSTOR_TEST_CLOCK_FILE"
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DURATION = re.compile(r"([1-9][0-9]{0,5})([mhdw])")
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("day of week", 0, 7))
SLOT_FORMAT = "%Y%m%dT%H%MZ"     # the UTC time in a scheduled snapshot's name
SEARCH_DAYS = 400                # how far back a schedule's latest slot is looked for


def now():
    """UTC now, naive, to the second."""
    override = os.environ.get(CLOCK_FILE)
    if override:
        with open(override) as f:
            return parse_timestamp(f.read().strip())
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)


def parse_timestamp(value):
    """ISO 8601 ('2026-12-01T00:00:00Z', '2026-12-01T01:00:00+01:00', '2026-12-01') as naive UTC;
    a time without a zone is UTC. ValueError otherwise."""
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        if not isinstance(value, str):
            raise ValueError("expected an ISO 8601 timestamp such as 2026-12-01T00:00:00Z")
        text = value.strip()
        try:
            moment = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 timestamp such as 2026-12-01T00:00:00Z") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def parse_duration(value):
    """'7d', '12h', '30m', '2w' as a timedelta; ValueError otherwise."""
    match = DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a duration: a whole number and a unit, m (minutes), h (hours), "
                         "d (days) or w (weeks), such as 7d or 12h")
    return datetime.timedelta(seconds=int(match[1]) * UNITS[match[2]])


def duration(value):
    """A field's shape: the duration as given, once checked."""
    parse_duration(value)
    return value.strip()


def _field(text, name, low, high):
    values = set()
    for part in text.split(","):
        match = re.fullmatch(r"(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?", part)
        if match is None:
            raise ValueError(f"{name} field {text!r}: expected *, a number, a range a-b, a step /n or a list")
        if match[1] == "*":
            start, end = low, high
        else:
            start = int(match[2])
            end = int(match[3]) if match[3] is not None else (high if match[4] else start)
        step = int(match[4]) if match[4] else 1
        if not (low <= start <= high and low <= end <= high) or start > end or step < 1:
            raise ValueError(f"{name} field {text!r}: values must be from {low} to {high}, ranges ascending, "
                             "steps at least 1")
        values.update(range(start, end + 1, step))
    return values


class Schedule:
    """A parsed schedule: which minutes (UTC) are its slots."""

    def __init__(self, text):
        if not isinstance(text, str):
            raise ValueError("expected four cron fields: minute hour day-of-month day-of-week")
        parts = text.split()
        if len(parts) != len(FIELDS):
            raise ValueError(f"{text!r}: expected four cron fields, minute hour day-of-month day-of-week "
                             "(such as '0 * * *' hourly or '30 2 * 1-5' at 02:30 UTC on weekdays)")
        self.minutes, self.hours, days, weekdays = (_field(p, *f) for p, f in zip(parts, FIELDS))
        self.days, self.weekdays = days, {d % 7 for d in weekdays}
        self.any_day, self.any_weekday = parts[2] == "*", parts[3] == "*"

    def _day_matches(self, day):
        in_month = day.day in self.days
        in_week = (day.weekday() + 1) % 7 in self.weekdays     # cron: 0 is Sunday
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def latest(self, moment):
        """The latest slot at or before `moment` (a minute, naive UTC), or None within SEARCH_DAYS."""
        moment = moment.replace(second=0, microsecond=0)
        day = moment.replace(hour=0, minute=0)
        for back in range(SEARCH_DAYS):
            if self._day_matches(day):
                for hour in sorted(self.hours, reverse=True):
                    for minute in sorted(self.minutes, reverse=True):
                        slot = day.replace(hour=hour, minute=minute)
                        if slot <= moment:
                            return slot
            day -= datetime.timedelta(days=1)
        return None


def schedule(value):
    """A field's shape: the schedule as given (fields separated by single spaces), once checked."""
    Schedule(value)
    return " ".join(value.split())
