"""The loaded polygons each postcode falls in: ward, SNT and borough.

A postcode's areas are the polygons of the store's default layers that
contain its point, found with the same :class:`crimemap.join.AreaIndex` and
the same boundary rule as crime points, so the search always agrees with the
map. The join runs once for every postcode of a lookup version and is kept
as one small integer array per level; it is redone when the store's data
version changes (a new boundary layer).

The directory's own ward and district codes are kept as a cross-check:
:attr:`LookupAreas.disagreements` counts live postcodes whose directory ward
is not the ward polygon that contains them.
"""

import numpy as np
import shapely

from crimemap.join import AreaIndex

__all__ = ["LookupAreas", "LEVELS"]

LEVELS = ("ward", "snt", "borough")
CITY = "city-of-london"
MET = "metropolitan"
CITY_OF_LONDON_CODE = "E09000001"


class LookupAreas:
    """Per-postcode areas for one lookup version and one store data version.

    Attributes
    ----------
    data_version : str
        The store data version the polygons came from.
    layers : dict
        Level -> the store's layer dict (``id``, ``vintage``, ...), or None.
    index : dict
        Level -> int32 array, one entry per lookup row: position of the area
        in :attr:`info` (-1 outside every area), or None without a layer.
    info : dict
        Level -> list of ``{"code", "name"}`` dicts.
    force : dict
        Level -> list of the force of each area (``"metropolitan"`` or
        ``"city-of-london"``).
    disagreements : dict
        ``compared`` (live postcodes with a directory ward code inside a
        ward polygon), ``disagree`` (of those, where the codes differ),
        ``outside`` (live located postcodes in no ward polygon),
        ``borough_disagree`` (ward's borough differs from the borough polygon).
    """

    def __init__(self):
        self.data_version = None
        self.layers = {}
        self.index = {}
        self.info = {}
        self.force = {}
        self.borough_of = {}
        self.disagreements = None
        self.loaded = False

    @property
    def nbytes(self):
        unique = {id(a): a for a in self.index.values() if a is not None}  # SNT may share the ward array
        return int(sum(a.nbytes for a in unique.values()))

    @classmethod
    def build(cls, lookup, store, cell_m=50.0, data_version=None):
        """Join every postcode of ``lookup`` to the store's default layers.

        Parameters
        ----------
        lookup : crimemap.postcodes.lookup.PostcodeLookup
        store : crimemap.store.Store
        cell_m : float
            The join grid's cell size (``JOIN_GRID_CELL_M``).
        data_version : str, optional
            The store's data version, when the caller already read it.

        Returns
        -------
        LookupAreas
        """
        self = cls()
        self.data_version = store.data_version() if data_version is None else data_version
        x, y = lookup.coordinates()
        joined = {}
        for level in LEVELS:
            layer = store.layer(level)
            self.layers[level] = layer
            if layer is None:
                self.index[level] = None
                self.info[level] = []
                self.force[level] = []
                continue
            if layer["id"] in joined:
                # No SNT layer: the store answers the ward layer, so SNT = ward.
                self.index[level], self.info[level], self.force[level], self.borough_of[level] = joined[layer["id"]]
                continue
            areas = store.areas(layer["id"])
            geoms = np.asarray(areas.geometry.values, dtype=object)
            # Stored polygons are repaired on load; a layer written by another
            # tool might not be, and the index refuses invalid polygons.
            invalid = ~shapely.is_valid(geoms)
            if invalid.any():
                geoms[invalid] = shapely.make_valid(geoms[invalid], method="structure")
            index = AreaIndex(geoms, areas["code"].astype(str).tolist(), cell_m=cell_m)
            result = index.assign(x, y, threads=1)
            info = [{"code": c, "name": n} for c, n in zip(areas["code"], areas["name"].fillna(areas["code"]))]
            forces = areas["force"].fillna(MET).tolist()
            borough_of = list(zip(areas["borough_code"].tolist(), areas["borough_name"].tolist()))
            # int16 when it fits: two bytes per postcode per layer (2.6 million
            # postcodes x 3 layers in ~16 MB instead of 31 MB per process).
            positions = result.index.astype(np.int16) if len(info) < 2**15 else result.index
            joined[layer["id"]] = (positions, info, forces, borough_of)
            self.index[level], self.info[level], self.force[level], self.borough_of[level] = joined[layer["id"]]
        self.disagreements = self._cross_check(lookup)
        self._prepare()
        return self

    def _cross_check(self, lookup):
        ward = self.index["ward"]
        if ward is None:
            return None
        live = (lookup._terminated == 0) & ~np.isnan(lookup._east)
        table = np.asarray(lookup._tables["ward_code"] + [""], dtype=object)
        directory = table[lookup._codes["ward_code"]]
        polygon_codes = np.asarray([a["code"] for a in self.info["ward"]] + [""], dtype=object)
        polygon = polygon_codes[ward]  # -1 picks the trailing ""
        compared = live & (ward >= 0) & (directory != "")
        out = {"compared": int(compared.sum()),
               "disagree": int((compared & (directory != polygon)).sum()),
               "outside": int((live & (ward < 0)).sum()),
               "ward_vintage": self.layers["ward"]["vintage"]}
        borough = self.index["borough"]
        if borough is not None and self.layers["borough"]["id"] != self.layers["ward"]["id"]:
            ward_borough = np.asarray([b for b, _ in self.borough_of["ward"]] + [""], dtype=object)[ward]
            borough_codes = np.asarray([a["code"] for a in self.info["borough"]] + [""], dtype=object)[borough]
            both = live & (ward >= 0) & (borough >= 0) & (ward_borough != "")
            out["borough_disagree"] = int((both & (ward_borough != borough_codes)).sum())
        return out

    def _prepare(self):
        """Per area of each layer, what a lookup returns: built once, not per request."""
        self._names = {level: [dict(a) for a in self.info[level]] for level in LEVELS}
        borough_names = {a["code"]: a["name"] for a in self.info["borough"]}
        ward_borough = []
        for code, name in self.borough_of.get("ward", []):
            ward_borough.append({"code": code, "name": borough_names.get(code) or name or code} if code else None)
        self._ward_borough = ward_borough
        self.loaded = any(index is not None for index in self.index.values())

    def of_row(self, i):
        """The areas of lookup row ``i``.

        The borough is the borough of the containing ward (wards nest in
        boroughs, so the page's ward and borough never contradict each
        other); the borough polygon is used when no ward holds the point or
        the ward names no borough.

        Returns
        -------
        tuple
            ``(ward, snt, borough, force)``: the first three ``{code, name}``
            (fresh dicts the caller may change) or None, and ``force``
            ``"metropolitan"``, ``"city-of-london"`` or None (outside every
            loaded area).
        """
        ward = snt = borough = force = None
        index = self.index["ward"]
        if index is not None:
            w = index.item(i)
            if w >= 0:
                ward = self._names["ward"][w].copy()
                force = self.force["ward"][w]
                borough = self._ward_borough[w]
                borough = borough and borough.copy()
        index = self.index["snt"]
        if index is not None:
            t = index.item(i)
            if t >= 0:
                snt = self._names["snt"][t].copy()
                force = force or self.force["snt"][t]
        index = self.index["borough"]
        if index is not None and (borough is None or force is None):
            b = index.item(i)
            if b >= 0:
                borough = borough or self._names["borough"][b].copy()
                force = force or self.force["borough"][b]
        if borough is not None and force is None:
            force = CITY if borough["code"] == CITY_OF_LONDON_CODE else MET
        return ward, snt, borough, force
