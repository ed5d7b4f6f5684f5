"""RedBeat's JSON codec, extended with our schedule type, and the exact form of an entry.

RedBeat stores each entry as a hash with ``definition`` (name, task, args, kwargs, options,
schedule, enabled) and ``meta`` (``last_run_at``, ``total_run_count``) in its own JSON dialect.
It knows only its own schedule types, so :class:`WoowJSONEncoder` / :class:`WoowJSONDecoder`
add ``{"__type__": "woow_trigger", ...}`` (see :mod:`woow_scheduler.scheduler.schedule`).  They are
registered through :class:`woow_scheduler.beat.WoowSchedulerEntry` only, never by patching RedBeat.

Definitions are written canonically (sorted keys, compact separators) by every writer, so the
reconciler can tell an unchanged entry by comparing strings.
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from redbeat.decoder import RedBeatJSONDecoder, RedBeatJSONEncoder

from ..messaging.payload import TASK_EXECUTE, shadow_name
from .schedule import SCHEDULE_TYPE, WoowTriggerSchedule, iso_utc, schedule_json


class WoowJSONEncoder(RedBeatJSONEncoder):  # type: ignore[misc]
    def default(self, obj: Any) -> Any:
        if isinstance(obj, WoowTriggerSchedule):
            return obj.to_json()
        return super().default(obj)


class WoowJSONDecoder(RedBeatJSONDecoder):  # type: ignore[misc]
    def dict_to_object(self, d: dict[str, Any]) -> Any:
        if d.get("__type__") == SCHEDULE_TYPE:
            return WoowTriggerSchedule.from_json(d)
        return super().dict_to_object(d)


def dumps(obj: Any) -> str:
    """Canonical JSON in RedBeat's dialect with our types."""
    return json.dumps(obj, cls=WoowJSONEncoder, sort_keys=True, separators=(",", ":"))


# json.loads(text, cls=...) builds a decoder (and its scanner) per call, ~10 us, more than decoding
# a short meta; beat decodes one definition and one meta per fire of a cold burst.  One decoder per
# thread (the scanner is not meant to be shared across threads), one meta encoder (stateless).
_decoders = threading.local()
_META_ENCODER = RedBeatJSONEncoder()


def _decoder(cls: type[json.JSONDecoder]) -> json.JSONDecoder:
    name = cls.__name__
    decoder: json.JSONDecoder | None = getattr(_decoders, name, None)
    if decoder is None:
        decoder = cls()
        setattr(_decoders, name, decoder)
    return decoder


def loads(text: str) -> Any:
    return _decoder(WoowJSONDecoder).decode(text)


def entry_definition(
    *,
    trigger_id: uuid.UUID | str,
    workflow_id: uuid.UUID | str,
    workflow_name: str,
    user_id: str | None,
    spec: Mapping[str, Any],
    anchor: datetime,
    version: int,
    options: Mapping[str, Any] | None = None,
    calendar: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``definition`` of a trigger's entry, as a JSON-ready dict (schedule left as its JSON form).

    ``options`` are the publish options (queue, shadow, time limits: the worker's ``publish_options``).
    """
    return {
        "name": str(trigger_id),
        "task": TASK_EXECUTE,
        "args": [],
        "kwargs": {"workflow_id": str(workflow_id), "trigger_id": str(trigger_id), "user_id": user_id},
        "options": dict(options) if options is not None else {"shadow": shadow_name(workflow_name)},
        "schedule": schedule_json(spec, anchor, version, calendar),
        "enabled": True,
    }


_DEFINITION = (
    '{"args":[],"enabled":true,"kwargs":{"trigger_id":"%s","user_id":%s,"workflow_id":"%s"},"name":"%s",'
    '"options":%s,"schedule":{"__type__":"%s","anchor":"%s",%s"spec":%s,"version":%d},"task":"%s"}'
)


def definition_text(
    *,
    trigger_id: uuid.UUID | str,
    workflow_id: uuid.UUID | str,
    user_id: str | None,
    options_json: str,
    spec_json: str,
    anchor: datetime,
    version: int,
    calendar_json: str | None = None,
) -> str:
    """The canonical ``definition`` string, built without a generic JSON pass (the reconciler's hot path).

    Byte-identical to ``json.dumps(entry_definition(...), sort_keys=True, separators=(",", ":"))``
    when ``options_json``, ``spec_json`` and ``calendar_json`` are canonical JSON (a test holds it to that).
    """
    tid = str(uuid.UUID(str(trigger_id)))
    return _DEFINITION % (
        tid,
        json.dumps(user_id),
        uuid.UUID(str(workflow_id)),
        tid,
        options_json,
        SCHEDULE_TYPE,
        iso_utc(anchor),
        f'"calendar":{calendar_json},' if calendar_json is not None else "",
        spec_json,
        version,
        TASK_EXECUTE,
    )


@functools.lru_cache(maxsize=4096)  # a burst writes the same few metas many times (datetimes are immutable)
def encode_meta(last_run_at: datetime | None, total_run_count: int = 0) -> str:
    """``meta`` exactly as RedBeat writes it (its datetime dialect), so RedBeat tools still read it."""
    last = last_run_at.astimezone(UTC) if last_run_at is not None else None
    return str(_META_ENCODER.encode({"last_run_at": last, "total_run_count": total_run_count}))


def decode_meta(text: str | None) -> tuple[datetime | None, int]:
    """``(last_run_at, total_run_count)`` of a stored meta (missing → ``(None, 0)``)."""
    if not text:
        return None, 0
    data = _decoder(RedBeatJSONDecoder).decode(text)
    last = data.get("last_run_at")
    if isinstance(last, datetime):
        last = last.astimezone(UTC) if last.tzinfo is not None else last.replace(tzinfo=UTC)
    else:
        last = None
    return last, int(data.get("total_run_count") or 0)
