"""The "postcodes" member of the status document (``crimemap status``, ``/api/v1/status``)."""

from pathlib import Path

from crimemap.postcodes.build import describe

__all__ = ["status"]


def status(instance, store=None, settings=None):
    """Describe the postcode lookup of an instance.

    Parameters
    ----------
    instance : str or Path
        The instance folder (for the SQLite store, ``store.path.parent``).
    store : crimemap.store.Store, optional
        With a store, the directory's ward codes are cross-checked against
        the loaded ward polygons (computed once per lookup version and store
        data version, then cached in the process).
    settings : dict, optional
        Passed to :func:`crimemap.postcodes.get_lookup`.

    Returns
    -------
    dict
        ``loaded``; when loaded also ``version``, ``source``,
        ``refreshed_at``, ``count``, ``live``, ``terminated``,
        ``no_location``, ``layouts``, ``kept_versions``, and with a store
        ``ward_disagreements`` (live postcodes whose directory ward code is
        not the ward polygon containing them; None without a ward layer) and
        ``cross_check`` (the counts behind it).
    """
    meta = describe(instance)
    if meta is None:
        return {"loaded": False, "version": None}
    doc = {"loaded": True, **meta}
    doc["version"] = str(meta["version"])
    if store is not None:
        from crimemap.postcodes.lookup import get_lookup

        lookup = get_lookup({**(settings or {}), "INSTANCE": str(Path(instance))}, store)
        check = lookup.areas.disagreements if lookup is not None and lookup.areas is not None else None
        doc["ward_disagreements"] = check["disagree"] if check else None
        doc["cross_check"] = check
    return doc


def format_status(doc):
    """Lines for ``crimemap status`` describing :func:`status`'s document."""
    if not doc.get("loaded"):
        return ["Postcode lookup: none loaded (crimemap postcodes refresh SOURCE)"]
    lines = [f"Postcode lookup: version {doc['version']}, refreshed {doc['refreshed_at']}, {doc['count']:,} postcodes "
             f"({doc['live']:,} live, {doc['terminated']:,} terminated), from {doc['source']}"]
    check = doc.get("cross_check")
    if check:
        lines.append(f"  {check['disagree']:,} of {check['compared']:,} live postcodes have a directory ward code other "
                     f"than the {check['ward_vintage']} ward polygon containing them; {check['outside']:,} lie in no "
                     "ward polygon")
    return lines
