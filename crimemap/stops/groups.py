"""Search types, objects of search and outcomes, and the groups the pages show.

The groupings are data (``crimemap/schemas/stops_objects.json`` and
``stops_layouts.json``), read once; these functions only look values up.
"""

import functools
import json
from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"


@functools.lru_cache(maxsize=None)
def schema(name):
    """A declared stop and search layout or grouping, parsed once."""
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


def _key(text):
    return " ".join(str(text).split()).casefold()


@functools.lru_cache(maxsize=1)
def _object_lookup():
    lookup = {}
    for group in schema("stops_objects.json")["object_groups"]:
        for value in group["objects"]:
            lookup[_key(value)] = group["id"]
    return lookup


@functools.lru_cache(maxsize=1)
def _outcome_lookup():
    lookup = {}
    for group in schema("stops_objects.json")["outcome_groups"]:
        for value in group["outcomes"]:
            lookup[_key(value)] = group["id"]
    return lookup


def object_groups():
    """The object-of-search groups in display order: list of ``{id, label}``."""
    return [{"id": g["id"], "label": g["label"]} for g in schema("stops_objects.json")["object_groups"]]


def outcome_groups():
    """The outcome groups in display order: list of ``{id, label}``."""
    return [{"id": g["id"], "label": g["label"]} for g in schema("stops_objects.json")["outcome_groups"]]


def object_group(value):
    """The group id of an object of search (``other`` when unlisted, ``not-recorded`` when empty)."""
    if value is None or not str(value).strip():
        return "not-recorded"
    return _object_lookup().get(_key(value), "other")


def outcome_group(value):
    """The group id of an outcome (``arrest``, ``other-action``, ``no-further-action``, ``not-recorded``).

    An outcome police.uk adds later that is not listed counts as
    ``other-action`` unless it says "no further action".
    """
    if value is None or not str(value).strip():
        return "not-recorded"
    found = _outcome_lookup().get(_key(value))
    if found:
        return found
    return "no-further-action" if "no further action" in _key(value) else "other-action"


def type_ids():
    """Search type labels as police.uk writes them -> our ids."""
    return dict(schema("stops_layouts.json")["types"])


def type_labels():
    """Search type ids -> labels, in display order."""
    return dict(schema("stops_layouts.json")["type_labels"])
