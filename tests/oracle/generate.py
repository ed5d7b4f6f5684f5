"""Regenerate quartz_vectors.json from real Quartz 2.3.2 (needs a JDK and libquartz2-java).

    apt-get install -y libquartz2-java default-jdk-headless
    PYTHONPATH=. python tests/oracle/generate.py

Compiles QuartzOracle.java into a temporary directory, feeds it the queries built below
(expressions x time zones x start instants, including every DST change of 2025 and 2026 in
the zones listed) and writes the answers next to this file.  The tests read only the JSON.
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
DST_ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Chatham"]

GENERAL = [
    # the seed's examples
    "0 0 9 * * ?",
    "0 0 8 ? * MON",
    "0 */15 * * * ?",
    "0 0 * ? * MON-FRI",
    "0 0 9 ? * MON-FRI",
    # steps, lists, ranges, wraps, names, whitespace
    "*/10 * * * * ?",
    "0/15 * * * * ?",
    "5/20 10-50/7 * * * ?",
    "0 0 22-2 * * ?",
    "0 0 22-2/2 * * ?",
    "0 50-10 * * * ?",
    "0 0 12 ? * FRI-MON",
    "0 0 12 1 NOV-FEB ?",
    "0 0 12 ? * sun,Wed,fri",
    "0 0 6 28-3 * ?",
    "0 0 0 */5 * ?",
    "0 0 0 ? * */2",
    "0 0 0 ? JAN,jul 2#1",
    "0 15 10 ? * 6L",
    "0 0  12 * *  ?",
    "0 0 12 1/2 * ?",
    "0 0 12 ? 2/3 *",
    "0 0 12 ? * 7-1",
    "0 30 10 ? * *",
    "0 0 0 29 2 ?",
    "0 0 0 31 * ?",
    "0 0 0 30 * ?",
    "0 0 0 1,15,31 * ?",
    "59 59 23 31 12 ?",
    "0 0 0 1 1 ? 2027",
    "0 0 0 1 1 ? 2026-2030/2",
    "0 0 0 ? * MON 2026,2028",
    "0 0 0 1 1 ? 2025",
    "0 0 0 30 2 ?",
    "0 0 0 31 4,6,9,11 ?",
    # L, L-n, LW, L-nW, nW
    "0 0 0 L * ?",
    "0 0 18 L-2 * ?",
    "0 0 0 L-30 * ?",
    "0 0 0 L-28 * ?",
    "0 0 9 LW * ?",
    "0 0 9 L-3W * ?",
    "0 0 9 1W * ?",
    "0 0 9 15W * ?",
    "0 0 9 31W * ?",
    "0 0 9 30W * ?",
    "0 0 9 29W 2 ?",
    "0 0 9 2W * ?",
    "0 0 9 L-1W * ?",
    # nL, n#k, L in day-of-week
    "0 0 10 ? * 6#5",
    "0 0 10 ? * 2#1",
    "0 0 10 ? * 1#5",
    "0 0 10 ? * FRI#3",
    "0 0 10 ? * 1L",
    "0 0 10 ? * 7L",
    "0 0 10 ? * L",
    "0 0 10 ? * 6#4",
    "0 0 10 ? FEB 6#5",
    # dense ones
    "* * * * * ?",
    "0 * * * * ?",
    "30 * 9-17 ? * MON-FRI",
    "0 0/5 14,18 * * ?",
]
# expressions Quartz itself rejects: we must reject them too
REJECTED = [
    "0 0 25 * * ?", "0 60 * * * ?", "60 * * * * ?", "0 0 0 32 * ?", "0 0 0 ? 13 *", "0 0 0 ? * 8",
    "0 0 0 * * *", "0 0 0 ? * ?", "0 0 0 ? * MON#6", "0 0 0 ? * FOO", "0 0 0 ? XYZ *",
    "0 0 0 L-31 * ?", "0 0 0 * *", "not a cron", "0 0 0 1-40 * ?", "0 0 0 ? * 1-9",
]  # fmt: skip
DST_EXPRS = [
    "0 */15 * * * ?", "0 0 * * * ?", "0 30 * * * ?", "0 30 2 * * ?", "0 30 1 * * ?", "0 0 2 * * ?",
    "0 0 3 * * ?", "0 45 2 * * ?", "0 15,40 * * * ?", "0 50 3 * * ?", "0 0/30 1-3 * * ?",
    "0 0 2 ? * SUN", "0 30 2 ? * SUN", "0 15 2 * * ?", "0 5 * * * ?", "*/20 59 * * * ?",
]  # fmt: skip


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def queries() -> list[tuple[str, str, int, int]]:
    out: list[tuple[str, str, int, int]] = []
    starts = [datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 2, 27, 13, 7, 11, tzinfo=UTC),
              datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2024, 2, 28, tzinfo=UTC)]  # fmt: skip
    for expr in REJECTED:
        out.append((expr, "UTC", _ms(starts[1]), 1))
    for expr in GENERAL:
        for zone in ["UTC", "Europe/Berlin", "America/New_York"]:
            for start in starts:
                out.append((expr, zone, _ms(start), 12))
    for zone in DST_ZONES:
        zi = ZoneInfo(zone)
        for year in (2025, 2026):
            for tr in transitions_in_year(zi, year):
                for back in (timedelta(hours=3), timedelta(minutes=61), timedelta(minutes=30), timedelta(0)):
                    start = datetime.fromtimestamp(tr.at, UTC) - back
                    for expr in DST_EXPRS:
                        out.append((expr, zone, _ms(start), 10))
                for expr in ("0 0 9 ? * MON-FRI", "0 0 12 L * ?", "0 0 0 * * ?"):
                    out.append((expr, zone, _ms(datetime.fromtimestamp(tr.at, UTC) - timedelta(days=2)), 6))
    return out


def main() -> int:
    qs = queries()
    with tempfile.TemporaryDirectory() as tmp:
        cp = ":".join([tmp, *JARS])
        subprocess.run(["javac", "-cp", cp, "-d", tmp, str(HERE / "QuartzOracle.java")], check=True)
        stdin = "".join(f"{e}\t{z}\t{s}\t{n}\n" for e, z, s, n in qs)
        res = subprocess.run(["java", "-cp", cp, "QuartzOracle"], input=stdin, capture_output=True,
                             text=True, check=True)  # fmt: skip
    lines = res.stdout.splitlines()
    assert len(lines) == len(qs), (len(lines), len(qs))
    vectors = []
    for (expr, zone, start, count), line in zip(qs, lines, strict=True):
        entry: dict[str, object] = {"expr": expr, "tz": zone, "start_ms": start, "count": count}
        if line.startswith("ERR"):
            entry["error"] = line[4:]
        else:
            toks = line.split()
            entry["ended"] = bool(toks and toks[-1] == "-")
            entry["fires_ms"] = [int(x) for x in toks if x != "-"]
        vectors.append(entry)
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    doc = {
        "source": "org.quartz.CronExpression.getNextValidTimeAfter, Quartz 2.3.2 (Debian libquartz2-java)",
        "java": java,
        "vectors": vectors,
    }
    rows = ",\n".join(json.dumps(v, separators=(",", ":")) for v in vectors)
    head = json.dumps({k: v for k, v in doc.items() if k != "vectors"}, indent=1)[:-2]
    (HERE / "quartz_vectors.json").write_text(f'{head},\n "vectors": [\n{rows}\n]}}\n')
    print(f"wrote {len(vectors)} vectors", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
