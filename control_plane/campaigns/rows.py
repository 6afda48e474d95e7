"""A campaign's CSV: numbers checked as E.164, each row's time zone, and the variables its
columns give to the agent's ``{placeholders}``. Every problem is reported with its line."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

from stimm.placeholders import PLACEHOLDER

NUMBER_COLUMN = "phone_number"
ZONE_COLUMN = "timezone"
MAX_ROWS = 100_000
MAX_PROBLEMS = 50


@dataclass(frozen=True)
class ParsedRow:
    line: int
    number: str
    timezone: str
    variables: dict[str, str]


@dataclass
class ParsedCsv:
    columns: list[str] = field(default_factory=list)
    """The variable columns (every column but the number and the time zone)."""
    rows: list[ParsedRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def zone_problem(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)"
    return None


def e164(raw: str) -> str | None:
    """``raw`` as an E.164 number, or None when it is not one."""
    text = raw.strip()
    if not text.startswith("+") or not text[1:].isdigit() or not 8 <= len(text) <= 16:
        return None
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def zone_of(number: str, default: str) -> str:
    """The number's time zone when its prefix names exactly one, else ``default``."""
    zones = number_zones.time_zones_for_number(phonenumbers.parse(number, None))
    if len(zones) == 1 and zones[0] != number_zones.UNKNOWN_TIMEZONE:
        return str(zones[0])
    return default


def parse_csv(text: str, default_zone: str) -> ParsedCsv:
    out = ParsedCsv()
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in next(reader, [])]
    if NUMBER_COLUMN not in header:
        out.problems.append(f"line 1: the header needs a {NUMBER_COLUMN!r} column")
        return out
    for name in header:
        if name != ZONE_COLUMN and not PLACEHOLDER.fullmatch("{" + name + "}"):
            out.problems.append(
                f"line 1: column {name!r} is not a usable variable name (letters, digits, _)"
            )
    if len(set(header)) != len(header):
        out.problems.append("line 1: a column name is repeated")
    if out.problems:
        return out
    out.columns = [h for h in header if h not in (NUMBER_COLUMN, ZONE_COLUMN)]
    seen: dict[str, int] = {}
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(out.rows) >= MAX_ROWS:
            out.problems.append(f"more than {MAX_ROWS} rows")
            break
        if len(values) != len(header):
            out.problems.append(f"line {line}: {len(values)} values for {len(header)} columns")
            continue
        cells = dict(zip(header, (v.strip() for v in values), strict=True))
        number = e164(cells[NUMBER_COLUMN])
        if number is None:
            out.problems.append(
                f"line {line}: {cells[NUMBER_COLUMN]!r} is not an E.164 number (+ country "
                "code and number, e.g. +14155550101)"
            )
            continue
        if number in seen:
            out.problems.append(f"line {line}: {number} is already on line {seen[number]}")
            continue
        seen[number] = line
        zone = cells.get(ZONE_COLUMN) or zone_of(number, default_zone)
        if problem := zone_problem(zone):
            out.problems.append(f"line {line}: {problem}")
            continue
        variables = {c: cells[c] for c in out.columns}
        out.rows.append(ParsedRow(line=line, number=number, timezone=zone, variables=variables))
    if not out.rows and not out.problems:
        out.problems.append("the CSV has no rows")
    return out


def in_window(now: datetime, zone: str, start: time, end: time) -> bool:
    """Whether ``now`` is inside the calling window in time zone ``zone``."""
    local = now.astimezone(ZoneInfo(zone)).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end  # the window spans midnight
