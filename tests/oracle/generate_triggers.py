"""Regenerate trigger_vectors.json from real Quartz 2.3.2 (needs a JDK and libquartz2-java).

    apt-get install -y libquartz2-java default-jdk-headless
    PYTHONPATH=. python tests/oracle/generate_triggers.py

Queries (built below): DailyTimeIntervalTrigger and CalendarIntervalTrigger chains, and each of
the six calendars (alone and chained on a base) attached to cron and simple triggers, around
the DST changes of 2026 in America/New_York, Europe/Berlin and Australia/Lord_Howe; plus
is_time_included / next_included_time probes of every calendar.  QuartzTriggerOracle.java
answers them; the tests read only the JSON (tests/unit/test_quartz_trigger_oracle.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from woow_scheduler.cron.zones import transitions_in_year

HERE = Path(__file__).resolve().parent
JARS = ["/usr/share/java/quartz2.jar", "/usr/share/java/slf4j-api.jar", "/usr/share/java/slf4j-nop.jar"]
ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe"]

# (every seconds, start time, end time, Quartz days 1=SUN..7=SAT, repeat count or -1)
DTI = [
    (900, "09:00:00", "17:00:00", "2,3,4,5,6", -1),
    (1800, "00:00:00", "23:59:59", "1,2,3,4,5,6,7", -1),
    (3600, "01:00:00", "03:00:00", "1,2,3,4,5,6,7", -1),
    (45, "01:59:00", "02:31:00", "1,2,3,4,5,6,7", -1),
    (7200, "00:00:00", "23:59:59", "1,7", -1),
    (5400, "08:00:00", "12:00:00", "2,4,6", 7),
    (3600, "02:30:00", "02:30:00", "1,2,3,4,5,6,7", -1),
    (1, "10:00:00", "10:00:05", "3", 9),
]
# (unit, every, preserve hour, skip day)
CIT = [
    ("DAY", 1, 0, 0), ("DAY", 1, 1, 0), ("DAY", 1, 1, 1), ("DAY", 3, 0, 0), ("WEEK", 1, 1, 0),
    ("WEEK", 2, 0, 0), ("MONTH", 1, 0, 0), ("MONTH", 1, 1, 0), ("MONTH", 5, 1, 1), ("YEAR", 1, 0, 0),
    ("HOUR", 5, 0, 0), ("MINUTE", 90, 0, 0), ("SECOND", 86399, 0, 0), ("DAY", 1, 0, 1),
]  # fmt: skip
CALENDARS = [
    "holiday;{z};2026-03-09,2026-03-30,2026-04-06,2026-12-25",
    "annual;{z};03-09,03-30,04-06,12-25,01-01",
    "weekly;{z};SAT,SUN",
    "weekly;{z};MON,WED,FRI",
    "monthly;{z};1,8,15,29,31",
    "daily;{z};08:00:00-17:00:00",
    "daily;{z};01:30:00-02:45:00",
    "daily;{z};09:00:00-17:30:00!invert",
    "cron;{z};* * 0-7,18-23 ? * *",
    "cron;{z};* 0-29 * ? * MON-FRI",
    "daily;{z};12:00:00-13:00:00>weekly;{z};SAT,SUN",
    "holiday;{z};2026-03-10>monthly;UTC;9,11",
    "cron;{z};* * 12 ? * *>holiday;{z};2026-03-31",
]
CRONS = ["0 0 * * * ?", "0 */20 * * * ?", "0 0 9 ? * *", "0 30 2 * * ?", "0 0 0 * * ?"]


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _dst_starts(zone: str) -> list[datetime]:
    out = []
    for tr in transitions_in_year(ZoneInfo(zone), 2026):
        out.append(datetime.fromtimestamp(tr.at, UTC) - timedelta(days=2, hours=5))
    return out


def queries() -> list[str]:
    out: list[str] = []
    for z in ZONES:
        starts = [*_dst_starts(z), datetime(2026, 1, 30, 22, 17, 3, tzinfo=UTC)]
        for start in starts:
            for every, a, b, days, rep in DTI:
                count = 60 if every >= 900 else 120
                out.append(f"DTI\t{z}\t{_ms(start)}\t{every}\t{a}\t{b}\t{days}\t{rep}\t{count}\t-")
        for tr in transitions_in_year(ZoneInfo(z), 2026):
            local = datetime.fromtimestamp(tr.at, ZoneInfo(z))
            for anchor in (
                local.replace(hour=2, minute=30, second=0) - timedelta(days=3),
                local.replace(hour=1, minute=30, second=0) - timedelta(days=8),
                local.replace(hour=0, minute=15, second=0) - timedelta(days=40),
            ):
                for unit, every, keep, skip in CIT:
                    out.append(f"CIT\t{z}\t{_ms(anchor)}\t{unit}\t{every}\t{keep}\t{skip}\t25\t-")
        jan31 = datetime(2026, 1, 31, 2, 0, tzinfo=ZoneInfo(z))
        leap = datetime(2024, 2, 29, 23, 30, tzinfo=ZoneInfo(z))
        for anchor in (jan31, leap):
            for unit, every, keep, skip in CIT:
                out.append(f"CIT\t{z}\t{_ms(anchor)}\t{unit}\t{every}\t{keep}\t{skip}\t25\t-")
        cal_start = datetime(2026, 3, 5, 3, 7, tzinfo=UTC)
        for template in CALENDARS:
            cal = template.format(z=z)
            for start in (cal_start, _dst_starts(z)[1]):
                for expr in CRONS:
                    out.append(f"CRON\t{z}\t{_ms(start)}\t{expr}\t40\t{cal}")
                for interval_ms, rep in ((3_600_000, -1), (2_220_000, 300)):
                    out.append(f"SIMPLE\t{z}\t{_ms(start)}\t{interval_ms}\t{rep}\t40\t{cal}")
                out.append(f"DTI\t{z}\t{_ms(start)}\t1800\t07:00:00\t19:00:00\t2,3,4,5,6\t-1\t60\t{cal}")
                out.append(f"CIT\t{z}\t{_ms(start)}\tHOUR\t7\t0\t0\t40\t{cal}")
            probes = [_ms(cal_start + timedelta(minutes=37 * i, seconds=i % 3)) for i in range(0, 2000, 7)]
            probes += [_ms(_dst_starts(z)[0] + timedelta(minutes=20 * i)) for i in range(0, 400, 3)]
            out.append(f"CAL\t{cal}\t{','.join(map(str, probes))}")
    return out


def main() -> int:
    qs = queries()
    with tempfile.TemporaryDirectory() as tmp:
        cp = ":".join([tmp, *JARS])
        subprocess.run(["javac", "-cp", cp, "-d", tmp, str(HERE / "QuartzTriggerOracle.java")], check=True)
        res = subprocess.run(["java", "-cp", cp, "QuartzTriggerOracle"], input="\n".join(qs) + "\n",
                             capture_output=True, text=True, check=True)  # fmt: skip
    lines = res.stdout.splitlines()
    assert len(lines) == len(qs), (len(lines), len(qs))
    vectors = []
    for q, line in zip(qs, lines, strict=True):
        entry: dict[str, object] = {"q": q.split("\t")}
        if line.startswith("ERR"):
            entry["error"] = line[4:]
        else:
            entry["a"] = line
        vectors.append(entry)
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    head = {"source": "Quartz 2.3.2 (Debian libquartz2-java) via tests/oracle/QuartzTriggerOracle.java", "java": java}
    rows = ",\n".join(json.dumps(v, separators=(",", ":")) for v in vectors)
    text = json.dumps(head, indent=1)[:-2]
    (HERE / "trigger_vectors.json").write_text(f'{text},\n "vectors": [\n{rows}\n]}}\n')
    print(f"wrote {len(vectors)} vectors", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
