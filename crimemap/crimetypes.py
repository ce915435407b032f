"""Crime types: ids, labels, groups, and what each one counts in each source.

Three families of ids live side by side (docs/crime-types.md):

- ``all-crime`` and ``mopac7``, which always exist;
- police.uk categories under their police.uk slugs (``burglary``,
  ``violent-crime``), declared in ``schemas/police_uk_categories.json``;
- the Met's major and minor types (MajorText/MinorText of its count tables):
  ``met-<major>`` and ``met-<major>.<minor>``, each part a slug of the
  published text, declared in ``schemas/crime_types.json``.

police.uk slugs never start with ``met-`` and no slug holds a ``.``, so the
families cannot collide; :func:`registry` refuses a schema that breaks this.
Types found in loaded data but not declared get ids by the same rule, so a new
Met minor type is usable as soon as it is loaded.

A pure core module: text in, specifications out. :class:`CrimeType` says which
police.uk categories and which Met (major, minor) pairs a type counts, so the
same id works against either source.
"""

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from crimemap.errors import BadQuery

ALL_CRIME = "all-crime"
MOPAC7 = "mopac7"
MET_PREFIX = "met-"

SCHEMAS = Path(__file__).resolve().parent / "schemas"

# Kinds of crime type, in the order the listing shows them.
KINDS = ("total", "group", "police.uk", "met-major", "met-minor")


def slug(text):
    """A URL-safe slug of published text: ``"BURGLARY - RESIDENTIAL"`` -> ``"burglary-residential"``.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        Lower case letters, digits and single hyphens; never empty (``"unnamed"``).
    """
    out = re.sub(r"[^a-z0-9]+", "-", str(text).lower().replace("&", " and ")).strip("-")
    return out or "unnamed"


def met_major_id(major):
    """The id of a Met major type (MajorText)."""
    return f"{MET_PREFIX}{slug(major)}"


def met_minor_id(major, minor):
    """The id of a Met minor type (MinorText under a MajorText)."""
    return f"{met_major_id(major)}.{slug(minor)}"


def _sentence_case(text):
    text = " ".join(str(text).split())
    return text[:1].upper() + text[1:].lower() if text else text


@dataclass(frozen=True)
class CrimeType:
    """One crime type and what it counts.

    Attributes
    ----------
    id, label : str
    kind : str
        One of :data:`KINDS`.
    group : str or None
        The id of the type this one belongs to (a Met minor type's major), or
        ``"mopac7"`` for nothing; None at the top level.
    police_uk : tuple of str or None
        police.uk categories counted; None means every category; an empty
        tuple means point data cannot answer this type.
    met : tuple or None
        Met rules ``(major, minor)`` in :func:`norm_text` form, ``minor`` None
        for "every minor type of the major"; None means every row; an empty
        tuple means the Met tables cannot answer this type.
    approximate_in_points : bool
        Point data only approximates the type (MOPAC 7).
    declared : bool
        Listed in a schema file (else discovered in loaded data).
    historic : bool
        A retired police.uk category: accepted, listed only when data holds it.
    children : tuple of str
        Ids of the types this one is made of (a major's minors, MOPAC 7's members).
    """

    id: str
    label: str
    kind: str
    group: str = None
    police_uk: tuple = ()
    met: tuple = ()
    approximate_in_points: bool = False
    declared: bool = True
    historic: bool = False
    children: tuple = field(default=(), compare=False)

    def counts_points(self):
        """True when police.uk point data can count this type."""
        return self.police_uk is None or len(self.police_uk) > 0

    def counts_met(self):
        """True when the Met's count tables can count this type."""
        return self.met is None or len(self.met) > 0

    def matches_met(self, major, minor):
        """Whether a Met row of (major, minor) text counts towards this type."""
        if self.met is None:
            return True
        major, minor = slug(major), slug(minor)
        return any(major == ma and (mi is None or minor == mi) for ma, mi in self.met)


class Registry:
    """Every crime type crimemap knows: declared ones plus those found in data.

    Use :func:`registry` to get the declared registry and
    :meth:`with_loaded` to add types found in a store.
    """

    def __init__(self, types, mopac7_members):
        self._types = dict(types)
        self.mopac7_members = mopac7_members

    def __contains__(self, crime):
        return crime in self._types

    def __iter__(self):
        return iter(self._types.values())

    def ids(self):
        """Every id, in listing order."""
        return list(self._types)

    def get(self, crime):
        """The :class:`CrimeType` of an id.

        Raises
        ------
        BadQuery
            For an unknown id; the message lists the allowed ids.
        """
        if not isinstance(crime, str) or crime not in self._types:
            raise BadQuery(f"unknown crime type {crime!r}; expected one of {', '.join(self._types)} "
                           "(see /api/v1/crime-types)")
        return self._types[crime]

    def with_loaded(self, police_uk_categories=(), met_pairs=()):
        """A registry that also knows types found in loaded data.

        Parameters
        ----------
        police_uk_categories : iterable of str
            Category slugs present in point data.
        met_pairs : iterable of (str, str)
            (MajorText, MinorText) present in Met count tables.

        Returns
        -------
        Registry
        """
        types = dict(self._types)
        for category in sorted(set(police_uk_categories) - set(types)):
            if category.startswith(MET_PREFIX) or "." in category or category in (ALL_CRIME, MOPAC7):
                continue  # cannot be told apart from another family; never shadow one
            types[category] = CrimeType(category, _sentence_case(category.replace("-", " ")), "police.uk",
                                        police_uk=(category,), met=(), declared=False)
        for major, minor in sorted(set(met_pairs)):
            major_id, minor_id = met_major_id(major), met_minor_id(major, minor)
            if major_id not in types:
                types[major_id] = CrimeType(major_id, _sentence_case(major), "met-major", police_uk=(),
                                            met=((slug(major), None),), declared=False)
            if minor_id not in types:
                types[minor_id] = CrimeType(minor_id, _sentence_case(minor), "met-minor", group=major_id,
                                            police_uk=(), met=((slug(major), slug(minor)),),
                                            declared=False)
        return Registry(_ordered(types), self.mopac7_members)


def _ordered(types):
    """Totals and groups, police.uk categories, then each Met major type followed by its minor types."""
    order = [t for t in types.values() if t.kind in ("total", "group")]
    order += [t for t in types.values() if t.kind == "police.uk"]
    for major in (t for t in types.values() if t.kind == "met-major"):
        order.append(major)
        order += [t for t in types.values() if t.kind == "met-minor" and t.group == major.id]
    seen = {t.id for t in order}
    order += [t for t in types.values() if t.id not in seen]  # a minor type whose major is unknown
    return {t.id: t for t in order}


def _load(name):
    with open(SCHEMAS / name, encoding="utf-8") as f:
        return json.load(f)


@lru_cache(maxsize=1)
def registry():
    """The declared crime types (``schemas/police_uk_categories.json`` and ``schemas/crime_types.json``).

    Returns
    -------
    Registry
    """
    return build_registry(_load("police_uk_categories.json")["categories"], _load("crime_types.json"))


def build_registry(police, declared):
    """A registry from the two schema documents.

    Parameters
    ----------
    police : list of dict
        police.uk categories (``slug``, ``label``, optional ``historic``).
    declared : dict
        The ``crime_types.json`` document (``met``, ``mopac7``).

    Returns
    -------
    Registry

    Raises
    ------
    ValueError
        If the documents break the id rules: a police.uk slug that starts
        with ``met-`` or holds a ``.``, a Met id that is not the id of its
        text, or an id declared twice.
    """
    types = {}

    def add(crime_type):
        if crime_type.id in types:
            raise ValueError(f"crime type id {crime_type.id!r} is declared twice")
        types[crime_type.id] = crime_type

    mopac = declared["mopac7"]
    members = tuple(mopac["members"])
    mopac_points = tuple(dict.fromkeys(c for m in members for c in m["police_uk"]))
    mopac_met = tuple((slug(r["major"]), slug(r["minor"]) if r.get("minor") else None)
                      for m in members for r in m["met"])
    add(CrimeType(ALL_CRIME, "All crime", "total", police_uk=None, met=None))
    add(CrimeType(MOPAC7, mopac["label"], "group", police_uk=mopac_points, met=mopac_met,
                  approximate_in_points=True, children=tuple(m["id"] for m in members)))
    for entry in police:
        if entry["slug"].startswith(MET_PREFIX) or "." in entry["slug"]:
            raise ValueError(f"police.uk slug {entry['slug']!r} collides with the Met id family")
        add(CrimeType(entry["slug"], entry["label"], "police.uk", police_uk=(entry["slug"],), met=(),
                      historic=bool(entry.get("historic"))))
    for major in declared["met"]:
        if major["id"] != met_major_id(major["major"]):
            raise ValueError(f"{major['id']!r} is not the id of {major['major']!r} ({met_major_id(major['major'])})")
        minors = []
        for minor in major["minors"]:
            expected = met_minor_id(major["major"], minor["minor"])
            if minor["id"] != expected:
                raise ValueError(f"{minor['id']!r} is not the id of {minor['minor']!r} ({expected})")
            minors.append(CrimeType(minor["id"], minor["label"], "met-minor", group=major["id"], police_uk=(),
                                    met=((slug(major["major"]), slug(minor["minor"])),)))
        add(CrimeType(major["id"], major["label"], "met-major", police_uk=(),
                      met=((slug(major["major"]), None),), children=tuple(m.id for m in minors)))
        for minor in minors:
            add(minor)
    return Registry(_ordered(types), members)


def mopac7_rules(member):
    """Met rules of one MOPAC 7 member, in :attr:`CrimeType.met` form."""
    return tuple((slug(r["major"]), slug(r["minor"]) if r.get("minor") else None) for r in member["met"])


def listing(reg, type_sources):
    """The crime types as ``/api/v1/crime-types`` lists them.

    Parameters
    ----------
    reg : Registry
        Declared types plus those found in loaded data.
    type_sources : dict
        Crime type id to the sources whose loaded data carry it.

    Returns
    -------
    dict
        ``crime_types`` (``id, label, kind, group, children, sources, loaded,
        declared``), ``mopac7`` (its members, with the Met ids and police.uk
        categories each counts) and ``kinds``.
    """
    types = []
    for crime_type in reg:
        sources = type_sources.get(crime_type.id, [])
        if crime_type.historic and not sources:
            continue  # a retired police.uk category that no loaded data holds
        entry = {"id": crime_type.id, "label": crime_type.label, "kind": crime_type.kind,
                 "group": crime_type.group, "children": list(crime_type.children), "sources": sources,
                 "loaded": bool(sources), "declared": crime_type.declared}
        if crime_type.kind == "police.uk":
            entry["answered_by"] = ["police.uk"]
        elif crime_type.kind in ("met-major", "met-minor"):
            entry["answered_by"] = ["mps-ward", "mps-borough", "mps-lsoa"]
        else:
            entry["answered_by"] = ["mps-ward", "mps-borough", "mps-lsoa", "police.uk"]
        if crime_type.id == MOPAC7:
            entry["approximate_in"] = ["police.uk"]
        types.append(entry)
    members = []
    for member in reg.mopac7_members:
        met_ids = []
        for major, minor in mopac7_rules(member):
            met_ids.append(f"{MET_PREFIX}{major}" + (f".{minor}" if minor else ""))
        members.append({"id": member["id"], "label": member["label"], "met": met_ids,
                        "police_uk": list(member["police_uk"])})
    kinds = {
        "total": "Every crime of the source. police.uk's all-crime includes anti-social behaviour; the Met's "
                 "counts do not.",
        "group": "A named group of offences (MOPAC 7).",
        "police.uk": "A police.uk street-level crime category, counted from point data.",
        "met-major": "A Metropolitan Police major type (MajorText), from its count tables.",
        "met-minor": "A Metropolitan Police minor type (MinorText) under its major type.",
    }
    return {"crime_types": types, "mopac7": {"id": MOPAC7, "label": reg.get(MOPAC7).label,
                                             "members": members}, "kinds": kinds}
