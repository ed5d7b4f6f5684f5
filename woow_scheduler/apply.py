"""Workflow files for ``woow workflow apply``: YAML or JSON, one workflow or a list.

.. code-block:: yaml

    name: nightly-report
    description: Build and mail the report
    concurrency: forbid
    steps:
      - {name: hello, type: log, config: {message: "report starts"}}
    triggers:
      - {name: weekdays, cron: "0 0 9 ? * MON-FRI", tz: Europe/Berlin}
      - {name: heartbeat, every: 5m}
      - {name: launch, at: "2026-12-24T18:00:00+01:00"}

Trigger entries take the CLI's short keys (``cron``/``every``/``at``, ``tz``, ``misfire``,
``repeat``, ``start``, ``end``) or the stored spec's keys (``type``, ``expression``, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .errors import InvalidInput, InvalidTriggerSpec

_ALIASES = {
    "tz": "timezone",
    "misfire": "misfire_policy",
    "repeat": "repeat_count",
    "start": "start_at",
    "end": "end_at",
}


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Read a workflow file into a list of workflow documents (not yet validated)."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = " ".join(str(exc).split())
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise InvalidInput(f"file: '{path}' is not valid {kind}: {first}") from None
    if isinstance(data, dict) and "workflows" in data and "name" not in data:
        data = data["workflows"]
    docs = data if isinstance(data, list) else [data]
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise InvalidInput(f"workflows[{i}]: must be a mapping with at least 'name' and 'steps'")
    return docs


def trigger_entry_to_spec(entry: Any, where: str) -> tuple[str | None, dict[str, Any]]:
    """One trigger entry of a file -> (name, spec mapping for ``parse_trigger_spec``)."""
    if not isinstance(entry, dict):
        raise InvalidTriggerSpec(f"{where}: must be a mapping like {{name: daily, cron: '0 0 9 * * ?'}}")
    data = dict(entry)
    name = data.pop("name", None)
    for short, full in _ALIASES.items():
        if short in data:
            data[full] = data.pop(short)
    kinds = [k for k in ("cron", "every", "at") if k in data]
    if len(kinds) > 1 or (kinds and "type" in data):
        raise InvalidTriggerSpec(f"{where}: give one of cron, every, at (or type)")
    if kinds == ["cron"]:
        data["type"], data["expression"] = "cron", data.pop("cron")
    elif kinds == ["every"]:
        data["type"] = "interval"
    elif kinds == ["at"]:
        data["type"], data["run_at"] = "once", data.pop("at")
    elif "type" not in data:
        raise InvalidTriggerSpec(f"{where}: needs one of cron, every or at")
    return (str(name) if name is not None else None), data
