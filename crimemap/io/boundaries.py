"""Read area boundaries (wards, SNT areas, boroughs, LSOAs) into one shape.

Every boundary file, whatever its publisher, comes out as a
:class:`BoundaryLayer` whose ``gdf`` is in British National Grid (EPSG:27700)
with the columns ``code, name, borough_code, borough_name, force, geometry``,
valid Polygon/MultiPolygon geometries and one row per code.

The column layouts of the files we know are data, declared in
``crimemap/schemas/boundary_layouts.json`` and interpreted by
:func:`match_layout` alone; supporting a new publisher means adding a layout
there, not code here.

What is done to a file
----------------------
- CRS: EPSG:27700 is kept; British National Grid without an EPSG code (the
  Esri ``.prj`` of the 2014 London Datastore files) is recognised; any other
  CRS is reprojected with :func:`crimemap.crs.to_bng`. A file without a CRS is
  taken as British National Grid or as longitude/latitude if its coordinates
  fit London in one of them, and refused otherwise. A GeoJSON without a crs
  member reads as EPSG:4326; if its coordinates are plainly British National
  Grid metres for London they are taken as such. ``crs_note`` says which.
- Invalid geometries are repaired with ``shapely.make_valid`` keeping only the
  polygonal parts; each repair is listed in ``repairs`` with its areas.
- Features without a code, with an empty geometry or with no polygon at all
  are dropped, and a warning names them.
- Features sharing a code are dissolved into one, with a warning.
- Features reaching outside a generous box around London get a warning (a
  sign of a wrong CRS), not an error.
- ``borough_name`` is normalised through the declared aliases (e.g. "City and
  County of the City of London" -> "City of London"); ``name`` is kept as
  published.

SNT areas
---------
Safer Neighbourhood Teams are the Metropolitan Police's neighbourhood policing
areas. When no SNT layer is loaded the service uses SNT = ward, i.e. the ward
layer stands in for the SNT layer. That is an approximation: the Met's SNT
areas are not exactly wards (about 657 neighbourhood-team areas against 629
borough wards in 2014), so some SNTs cover parts of wards or several wards.
SNT layers (police.uk neighbourhood boundaries with ``id``/``name``, or files
with ``SNT_CODE``/``SNT_NAME``-like columns) do not say their year, so reading
one needs ``vintage=``.

City of London
--------------
The City of London has its own police force. Areas in it (borough code
``E09000001``, the City's own code, or one of its 25 ward codes) get
``force == "city-of-london"``; all others ``"metropolitan"``.
"""

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj.exceptions import CRSError, ProjError

from crimemap.crs import BNG, LONDON_BNG_BOUNDS, LONDON_LONLAT_BOUNDS, WGS84, to_bng
from crimemap.errors import BadInput

LEVELS = ("ward", "snt", "borough", "lsoa")
CITY_OF_LONDON = "E09000001"
OUTPUT_COLUMNS = ["code", "name", "borough_code", "borough_name", "force", "geometry"]
FIELDS = ("code", "name", "borough_code", "borough_name")
LAYOUTS_PATH = Path(__file__).resolve().parents[1] / "schemas" / "boundary_layouts.json"

# Geometry types GDAL reports for layers we can use; "Unknown" is what a
# GeoJSON with mixed or no features reports, so it is checked after reading.
_POLYGON_LAYER_TYPES = {"Polygon", "MultiPolygon", "CurvePolygon", "MultiSurface"}
_POLYGONAL = ("Polygon", "MultiPolygon")
# Long lists of codes in a warning help nobody; show this many and count the rest.
_MAX_LISTED = 20


@dataclass
class BoundaryLayer:
    """Areas of one level and vintage, ready for joins (EPSG:27700).

    Attributes
    ----------
    level : str
        One of :data:`LEVELS`.
    vintage : str
        Year of the boundary set, e.g. ``"2014"``; codes are only comparable
        between data of the same vintage.
    layout : str
        Name of the matched layout in ``boundary_layouts.json``.
    source : str
        The path as given.
    crs_note : str
        How the CRS was found, e.g. ``"EPSG:27700 (from .prj)"``.
    gdf : geopandas.GeoDataFrame
        Columns ``code, name, borough_code, borough_name, force, geometry``.
    repairs : list of dict
        One per repaired feature: ``code, name, problem, area_before_m2, area_after_m2``.
    warnings : list of str
        Anything a person loading the file should know (dropped or merged
        features, features outside London, approximate boundaries).
    """

    level: str
    vintage: str
    layout: str
    source: str
    crs_note: str
    gdf: geopandas.GeoDataFrame
    repairs: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


@lru_cache(maxsize=None)
def _load_layouts(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_layouts(path=None):
    """Return the declared layouts (the parsed ``boundary_layouts.json``).

    Parameters
    ----------
    path : str or Path, optional
        Another layouts file; defaults to the packaged one.

    Returns
    -------
    dict
        With keys ``layouts``, ``city_of_london`` and ``borough_name_aliases``.
    """
    return _load_layouts(str(path or LAYOUTS_PATH))


def _find_column(patterns, columns):
    """First column matching the first pattern that matches any; with its match."""
    for pattern in patterns:
        regex = re.compile(pattern, re.IGNORECASE)
        for column in columns:
            found = regex.fullmatch(str(column))
            if found:
                return column, found
    return None, None


def _fit(layout, columns):
    """Column mapping and detected vintage if ``layout`` fits ``columns``, else None."""
    def present(pattern):
        return _find_column([pattern], columns)[0] is not None

    if not all(present(p) for p in layout.get("requires", [])):
        return None
    if any(present(p) for p in layout.get("excludes", [])):
        return None
    optional = set(layout.get("optional", []))
    mapping, matches = {}, {}
    for name, patterns in layout["columns"].items():
        column, found = _find_column(patterns, columns)
        if column is None and name not in optional:
            return None
        mapping[name], matches[name] = column, found
    vintage = layout.get("vintage")
    if layout.get("vintage_from"):
        vintage = "20" + matches[layout["vintage_from"]].group("yy")
    return mapping, vintage


def _describe(layout):
    parts = []
    for name, patterns in layout["columns"].items():
        # Show the year group as plain digits: people read this, not regex engines.
        text = re.sub(r"\(\?P<\w+>", "(", "|".join(patterns))
        parts.append(f"{name}={text}" + ("?" if name in layout.get("optional", []) else ""))
    parts += [f"requires {p}" for p in layout.get("requires", [])]
    parts += [f"excludes {p}" for p in layout.get("excludes", [])]
    return f"{layout['name']} ({', '.join(parts)})"


def match_layout(columns, level, layouts=None):
    """Find the declared layout that reads ``columns`` as areas of ``level``.

    Parameters
    ----------
    columns : sequence of str
        Attribute column names of the file (geometry excluded).
    level : str
        One of :data:`LEVELS`.
    layouts : dict, optional
        Parsed layouts; defaults to :func:`load_layouts`.

    Returns
    -------
    tuple
        ``(layout, mapping, vintage)``: the layout dict, a mapping from each of
        ``code, name, borough_code, borough_name`` to a column name (None when
        an optional field is absent), and the vintage the layout implies
        (None when the file does not say).

    Raises
    ------
    BadInput
        If no layout of ``level`` fits; the message lists the columns found,
        the layouts tried and any other level the file does fit.
    """
    layouts = layouts or load_layouts()
    _check_level(level)
    columns = [str(c) for c in columns]
    tried = []
    for layout in layouts["layouts"]:
        if level not in layout["levels"]:
            continue
        fit = _fit(layout, columns)
        if fit is not None:
            return layout, fit[0], fit[1]
        tried.append(_describe(layout))
    other = [
        f"{lv} (layout {layout['name']})"
        for lv in LEVELS
        if lv != level
        for layout in layouts["layouts"]
        if lv in layout["levels"] and _fit(layout, columns) is not None
    ][:1]
    hint = f" The file does fit level {other[0]}." if other else ""
    raise BadInput(
        f"no {level} layout fits this file. Columns found: {', '.join(columns) or 'none'}. "
        f"Layouts tried (field=column pattern, ? optional): {'; '.join(tried)}.{hint}",
        columns=columns,
    )


def _check_level(level):
    if level not in LEVELS:
        raise BadInput(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


def _listed(codes):
    codes = [str(c) for c in codes]
    text = ", ".join(codes[:_MAX_LISTED])
    if len(codes) > _MAX_LISTED:
        text += f" and {len(codes) - _MAX_LISTED} more"
    return text


# --- reading ---------------------------------------------------------------


def _choose_layer(path, layer):
    """Name of the layer to read: ``layer`` if given, else the one polygon layer."""
    try:
        layers = pyogrio.list_layers(path)
    except (pyogrio.errors.DataSourceError, OSError) as exc:
        raise BadInput(f"cannot open {path} as a boundary file: {exc}") from exc
    listing = ", ".join(f"{name} ({kind})" for name, kind in layers)
    names = [str(name) for name, _ in layers]
    if layer is not None:
        if str(layer) not in names:
            raise BadInput(f"{path} has no layer {layer!r}; layers: {listing or 'none'}")
        return str(layer)
    if len(layers) == 0:
        raise BadInput(f"{path} contains no layers")
    polygonal = [str(name) for name, kind in layers if str(kind).split(" ")[0] in _POLYGON_LAYER_TYPES]
    if len(polygonal) == 1:
        return polygonal[0]
    if len(polygonal) > 1:
        raise BadInput(f"{path} has several polygon layers ({listing}); pass layer= to pick one")
    # GeoJSON reports "Unknown" for mixed or empty collections; the type of
    # what is actually inside is checked once read.
    unknown = [str(name) for name, kind in layers if kind in (None, "Unknown")]
    if len(layers) == 1 and unknown:
        return unknown[0]
    raise BadInput(f"{path} has no polygon layer; layers: {listing}")


def _read(path, layer):
    try:
        return pyogrio.read_dataframe(path, layer=layer)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
            pyogrio.errors.FieldError, pyogrio.errors.GeometryError, OSError) as exc:
        raise BadInput(f"cannot read layer {layer!r} of {path}: {exc}") from exc


def _as_text(series):
    """Codes and names as stripped strings; integers read as floats lose the '.0'."""
    if pd.api.types.is_float_dtype(series):
        series = series.map(lambda v: None if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v)))
    def text(value):
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        return str(value).strip() or None

    return series.map(text)


# --- CRS -------------------------------------------------------------------


def _crs_source(path):
    suffix = Path(path).suffix.lower()
    return {".shp": ".prj", ".gpkg": "GeoPackage CRS", ".geojson": "GeoJSON crs member",
            ".json": "GeoJSON crs member"}.get(suffix, "the file's CRS")


def _within(bounds, box):
    minx, miny, maxx, maxy = bounds
    return bool(np.all(np.isfinite(bounds))) and minx >= box[0] and miny >= box[1] and maxx <= box[2] and maxy <= box[3]


def _is_bng(crs):
    """True for British National Grid in metres, also without an EPSG code."""
    if not crs.is_projected:
        return False
    if any(axis.unit_name not in ("metre", "meter", "Meter") for axis in crs.axis_info):
        return False
    # Esri-style .prj files (London Datastore 2014) round the scale factor, so
    # PROJ identifies them only at low confidence.
    if crs.to_epsg(min_confidence=20) == 27700:
        return True
    wkt = crs.to_wkt()
    return any(name in wkt for name in ("British_National_Grid", "OSGB36 / British National Grid",
                                        "OSGB 1936 / British National Grid"))


def _resolve_crs(gdf, path):
    """Return ``(gdf in EPSG:27700, note on how its CRS was found)``."""
    bounds = gdf.total_bounds
    where = _crs_source(path)
    if gdf.crs is None:
        if _within(bounds, LONDON_BNG_BOUNDS):
            return gdf.set_crs(BNG), ("no CRS in the file; coordinates fit British National Grid "
                                      "for London, assumed EPSG:27700")
        if _within(bounds, LONDON_LONLAT_BOUNDS):
            return _reproject(gdf.set_crs(WGS84)), ("no CRS in the file; coordinates look like "
                                                    "longitude/latitude in London, assumed EPSG:4326 "
                                                    "and reprojected from it")
        raise BadInput(
            f"{path} has no CRS and its coordinates (bounds {', '.join(f'{b:.6g}' for b in bounds)}) "
            "fit neither British National Grid nor longitude/latitude for London; "
            "add a .prj or reproject the file"
        )
    epsg = gdf.crs.to_epsg()
    if epsg == 27700:
        return gdf, f"EPSG:27700 (from {where})"
    if _is_bng(gdf.crs):
        return (gdf.set_crs(BNG, allow_override=True),
                f"British National Grid recognised from a {where} without an EPSG code")
    if gdf.crs.is_geographic and not _within(bounds, (-180, -90, 180, 90)) and _within(bounds, LONDON_BNG_BOUNDS):
        # GDAL assigns WGS84 to every GeoJSON without a crs member, even one
        # whose coordinates are plainly eastings and northings.
        return gdf.set_crs(BNG, allow_override=True), (
            f"the file reads as {gdf.crs.to_string()} (GDAL's default for a GeoJSON without a crs member) "
            "but its coordinates are British National Grid metres for London; assumed EPSG:27700")
    label = f"EPSG:{epsg}" if epsg else gdf.crs.name
    return _reproject(gdf), f"reprojected from {label}"


def _reproject(gdf):
    try:
        out = to_bng(gdf)
    except (CRSError, ProjError) as exc:
        raise BadInput(f"cannot reproject from {gdf.crs.name} to EPSG:27700: {exc}") from exc
    if not np.all(np.isfinite(out.total_bounds)):
        raise BadInput(f"reprojecting from {gdf.crs.name} to EPSG:27700 failed for some coordinates; "
                       "is the file's CRS right?")
    return out


# --- geometry --------------------------------------------------------------


def _polygonal(geom):
    """The polygonal part of ``geom`` as a Polygon or MultiPolygon (maybe empty)."""
    if geom.geom_type in _POLYGONAL:
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in _POLYGONAL]
    if not parts:
        return shapely.Polygon()
    return shapely.union_all(parts)


def _clean_geometries(frame):
    """Drop unusable features, keep polygonal parts, repair invalid ones.

    Returns ``(frame, repairs, warnings)``; ``frame`` must be in EPSG:27700
    already so that areas are in square metres.
    """
    repairs, warnings = [], []
    geoms = shapely.force_2d(np.asarray(frame.geometry.values))

    other = [i for i, g in enumerate(geoms) if g.geom_type not in _POLYGONAL]
    for i in other:
        geoms[i] = _polygonal(geoms[i])
    mixed = [i for i in other if not geoms[i].is_empty]
    if mixed:
        warnings.append(f"{len(mixed)} feature(s) mixed polygons with other geometries; kept only the polygons: "
                        f"{_listed(frame['code'].iloc[mixed])}")
    not_polygons = [i for i in other if geoms[i].is_empty]
    if not_polygons:
        warnings.append(f"{len(not_polygons)} feature(s) dropped: not polygons: "
                        f"{_listed(frame['code'].iloc[not_polygons])}")

    for i in np.flatnonzero(~shapely.is_valid(geoms)):
        before = geoms[i]
        after = _polygonal(shapely.make_valid(before))
        repairs.append({
            "code": frame["code"].iloc[i],
            "name": frame["name"].iloc[i],
            "problem": shapely.is_valid_reason(before),
            "area_before_m2": float(before.area),
            "area_after_m2": float(after.area),
        })
        geoms[i] = after

    frame = frame.set_geometry(geopandas.GeoSeries(geoms, index=frame.index, crs=frame.crs))
    unusable = frame.geometry.is_empty | ~frame.geometry.is_valid
    unusable.iloc[not_polygons] = False  # already reported
    if unusable.any():
        warnings.append(f"{int(unusable.sum())} feature(s) dropped: no valid polygon left after repair: "
                        f"{_listed(frame.loc[unusable, 'code'])}")
    return frame[~(frame.geometry.is_empty | ~frame.geometry.is_valid)], repairs, warnings
    return frame, repairs, warnings


def _dissolve_duplicates(frame):
    """One row per code: union the geometries of repeated codes, keep the first attributes."""
    repeated = frame["code"].duplicated(keep=False)
    if not repeated.any():
        return frame, []
    described = []
    for code, group in frame[repeated].groupby("code", sort=False):
        names = list(dict.fromkeys(group["name"].dropna()))
        also = f", names {' / '.join(names)}" if len(names) > 1 else ""
        described.append(f"{code} ({len(group)} features{also})")
    merged = frame.dissolve(by="code", sort=False, aggfunc="first", as_index=False)
    merged["geometry"] = [_polygonal(g) if g.is_valid else _polygonal(shapely.make_valid(g)) for g in merged.geometry]
    merged = merged[frame.columns]
    warning = f"{len(described)} duplicate code(s) dissolved into one feature each: {_listed(described)}"
    return merged, [warning]


def _boroughs_and_force(frame, level, layouts):
    frame = frame.copy()
    if level == "borough":
        # A borough's borough is itself.
        frame["borough_code"] = frame["code"]
        frame["borough_name"] = frame["name"]
    aliases = layouts.get("borough_name_aliases", {})
    frame["borough_name"] = frame["borough_name"].map(lambda v: aliases.get(v, v))
    city = layouts["city_of_london"]
    in_city = frame["borough_code"].eq(city["borough_code"]) | frame["code"].isin(city["area_codes"])
    frame["force"] = np.where(in_city, "city-of-london", "metropolitan")
    return frame


def _outside_london(frame):
    bounds = frame.geometry.bounds
    box = LONDON_BNG_BOUNDS
    outside = (bounds.minx < box[0]) | (bounds.miny < box[1]) | (bounds.maxx > box[2]) | (bounds.maxy > box[3])
    if not outside.any():
        return []
    return [f"{int(outside.sum())} feature(s) reach outside London's plausible box "
            f"(x {box[0]:.0f}-{box[2]:.0f}, y {box[1]:.0f}-{box[3]:.0f} in EPSG:27700; a wrong CRS?): "
            f"{_listed(frame.loc[outside, 'code'])}"]


# --- the reader ------------------------------------------------------------


def read_boundaries(path, level, vintage=None, layer=None):
    """Read a boundary file into a :class:`BoundaryLayer` in EPSG:27700.

    Parameters
    ----------
    path : str or Path
        A Shapefile (``.shp``), GeoPackage or GeoJSON file.
    level : str
        What the areas are: one of :data:`LEVELS`.
    vintage : str or int, optional
        Year of the boundary set (four digits). Overrides the year a layout
        implies; required for layouts that imply none (generic and SNT files).
    layer : str, optional
        Layer to read from a multi-layer file; by default the only polygon layer.

    Returns
    -------
    BoundaryLayer
        Areas with ``code, name, borough_code, borough_name, force, geometry``;
        the module docstring says what is repaired, dropped and merged.

    Raises
    ------
    BadInput
        If the file cannot be read, has no features or no polygons, fits no
        declared layout of ``level``, needs a vintage that was not given, or
        has no usable CRS.

    Examples
    --------
    >>> wards = read_boundaries("London-wards-2018/London_Ward.shp", "ward")  # doctest: +SKIP
    >>> wards.vintage, len(wards.gdf)  # doctest: +SKIP
    ('2018', 657)
    """
    _check_level(level)
    if vintage is not None:
        vintage = str(vintage).strip()
        if not re.fullmatch(r"\d{4}", vintage):
            raise BadInput(f"vintage must be a four-digit year such as 2018, got {vintage!r}")
    source = str(path)
    if not Path(path).exists():
        raise BadInput(f"boundary file not found: {source}")
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise BadInput(f"{source} is empty (0 bytes)")

    layer_name = _choose_layer(source, layer)
    raw = _read(source, layer_name)
    if len(raw) == 0:
        raise BadInput(f"{source} (layer {layer_name}) contains no features")
    if not isinstance(raw, geopandas.GeoDataFrame):
        # A CSV or a DBF on its own reads as a table: there is nothing to draw.
        raise BadInput(f"{source} has no geometry: it reads as a plain table with the columns "
                       f"{', '.join(map(str, raw.columns[:8]))}; boundaries must be a Shapefile, "
                       "GeoPackage or GeoJSON with polygons")
    kinds = set(raw.geometry.dropna().geom_type)
    if not any(k in _POLYGONAL or k == "GeometryCollection" for k in kinds):
        raise BadInput(f"{source} (layer {layer_name}) holds {', '.join(sorted(kinds)) or 'no geometries'}, "
                       "not polygons; boundaries must be Polygon or MultiPolygon")

    layouts = load_layouts()
    layout, mapping, detected = match_layout([c for c in raw.columns if c != raw.geometry.name], level, layouts)
    vintage = vintage or detected
    if vintage is None:
        raise BadInput(f"{source} matches layout {layout['name']}, which does not say which year its "
                       "boundaries are; pass vintage= (e.g. 2018)")

    frame = geopandas.GeoDataFrame(
        {f: (_as_text(raw[mapping[f]]) if mapping.get(f) else pd.Series(None, index=raw.index, dtype=object))
         for f in FIELDS},
        geometry=raw.geometry.values, crs=raw.crs,
    )
    warnings = []
    if layout.get("note"):
        warnings.append(layout["note"])

    no_code = frame["code"].isna()
    if no_code.any():
        warnings.append(f"{int(no_code.sum())} feature(s) without a code dropped "
                        f"(rows {_listed(np.flatnonzero(no_code))})")
        frame = frame[~no_code]
    no_geometry = frame.geometry.isna() | frame.geometry.is_empty
    if no_geometry.any():
        warnings.append(f"{int(no_geometry.sum())} feature(s) with empty geometry dropped: "
                        f"{_listed(frame.loc[no_geometry, 'code'])}")
        frame = frame[~no_geometry]
    if len(frame) == 0:
        raise BadInput(f"{source} has no feature with both a code and a geometry")

    frame, crs_note = _resolve_crs(frame, source)
    frame, repairs, geometry_warnings = _clean_geometries(frame)
    warnings += geometry_warnings
    frame, duplicate_warnings = _dissolve_duplicates(frame)
    warnings += duplicate_warnings
    if len(frame) == 0:
        raise BadInput(f"{source} has no usable polygon")

    frame = _boroughs_and_force(frame, level, layouts)
    warnings += _outside_london(frame)
    gdf = frame[OUTPUT_COLUMNS].reset_index(drop=True)
    return BoundaryLayer(level=level, vintage=vintage, layout=layout["name"], source=source,
                         crs_note=crs_note, gdf=gdf, repairs=repairs, warnings=warnings)
