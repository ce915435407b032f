"""A synthetic demo instance, "Demo London", built offline from code alone.

``crimemap serve --demo`` must work on a fresh machine with no data. This
module invents a plausible city and writes it as the files real users load:
ONS-style boundary files (boroughs, wards, LSOAs), an ONS-style LSOA
population table and police.uk street-crime CSVs. It then loads them through
the real loaders (:func:`crimemap.ingest.load_boundaries`,
:func:`crimemap.population.load_population`,
:func:`crimemap.ingest.ingest_crimes`), so the demo exercises the same
pipeline as real data. See ``docs/demo.md``.

Everything is seeded and deterministic except the months, which end at the
calendar month before the build so the demo always looks current.

Nothing here is real: names say "Demo", codes come from the unused GSS range
``E09900…``/``E05900…``/``E01900…``. The one exception is the borough playing
the City of London: it carries the City's real code ``E09000001`` because
that is how crimemap recognises the separate City of London Police force.
"""

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

# Bump when the generated data or its layout changes: instances built by an
# older version are rebuilt, newer code never serves stale demo data.
DEMO_VERSION = 2  # 2: rebuilt for store schema 2 (crimes.id)
SEED = 20240501
MONTHS = 24
MARKER = "demo.json"
FOLDER = "demo"

# Where Demo London sits on the British National Grid: over the real London
# (x 503-562 km, y 156-201 km), so a real base map lines up with it.
CENTRE = (532_500.0, 178_500.0)
SEMI_AXES = (26_500.0, 20_000.0)
CITY_CENTRE = (532_300.0, 181_300.0)
CITY_RADIUS = 1_000.0
CITY_CODE = "E09000001"
N_WARDS = 440
N_BOROUGHS = 32  # plus the City
N_MAP_POINTS = 9_000
CRIMES_PER_MONTH = 2_600

# police.uk crime types (as the CSVs label them) with a London-like share of
# crimes, the yearly trend that makes year-on-year comparisons move, and where
# they happen: a mix of residential (res), central (cen) and town centre (town)
# weights per map point.
CRIME_TYPES = [
    # label, share, yearly factor, res, cen, town
    ("Violence and sexual offences", 0.27, 1.02, 0.6, 0.2, 0.2),
    ("Anti-social behaviour", 0.15, 0.93, 0.5, 0.2, 0.3),
    ("Other theft", 0.10, 1.00, 0.2, 0.5, 0.3),
    ("Vehicle crime", 0.09, 0.96, 0.8, 0.05, 0.15),
    ("Burglary", 0.06, 0.90, 0.85, 0.05, 0.10),
    ("Public order", 0.06, 1.01, 0.4, 0.3, 0.3),
    ("Theft from the person", 0.05, 1.12, 0.05, 0.75, 0.2),
    ("Shoplifting", 0.05, 1.15, 0.05, 0.35, 0.6),
    ("Criminal damage and arson", 0.05, 0.97, 0.7, 0.1, 0.2),
    ("Drugs", 0.04, 0.95, 0.4, 0.3, 0.3),
    ("Robbery", 0.03, 1.05, 0.3, 0.4, 0.3),
    ("Bicycle theft", 0.02, 0.92, 0.3, 0.5, 0.2),
    ("Other crime", 0.015, 1.00, 0.6, 0.2, 0.2),
    ("Possession of weapons", 0.01, 1.03, 0.5, 0.2, 0.3),
]
OUTCOMES = [
    "Investigation complete; no suspect identified", "Unable to prosecute suspect", "Under investigation",
    "Status update unavailable", "Further action is not in the public interest", "Suspect charged",
    "Local resolution", "Offender given a caution",
]
CSV_COLUMNS = ["Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location",
               "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context"]
FORCES = {"metropolitan": "Metropolitan Police Service", "city-of-london": "City of London Police"}

_PREFIXES = ["North", "South", "East", "West", "Upper", "Lower", "Old", "New", "Great", "Little", "High", "Long",
             "Kings", "Queens", "Mill", "Church", "Park", "Green", "Brook", "Ash", "Oak", "Elm", "Stone", "Bridge",
             "Marsh", "Hill", "Wood", "Lea", "Fox", "Crow", "Bell", "Cherry"]
_ROOTS = ["wick", "ham", "ford", "ton", "bury", "field", "gate", "well", "hurst", "stead", "worth", "ley",
          "combe", "mere", "dale", "cross"]
_STREETS = ["Road", "Street", "Lane", "Avenue", "Close", "Grove", "Way", "Gardens", "Place", "Terrace"]


# --- the instance -------------------------------------------------------------


def ensure_demo_instance(settings, echo=None):
    """Build the demo instance if needed and return the settings that serve it.

    The demo lives in its own folder, ``<INSTANCE>/demo``; real data in
    ``INSTANCE`` is never read or written. An existing demo is reused when its
    marker says it was built by this :data:`DEMO_VERSION`; otherwise it is
    rebuilt next to the old one and swapped in, so a failed build leaves the
    previous demo in place.

    Parameters
    ----------
    settings : dict
        From :func:`crimemap.config.load_settings`.
    echo : callable, optional
        Called with one line of progress text at a time.

    Returns
    -------
    dict
        A copy of ``settings`` with ``INSTANCE`` set to the demo folder,
        ``DEMO`` set to True and the embedded store (``DATABASE_URL`` and
        ``DATABASE_READ_URL`` empty): the demo is always an embedded store in
        its own folder, so it works with no database and never touches the
        real data of a configured PostGIS database.
    """
    say = echo or (lambda line: None)
    folder = Path(settings["INSTANCE"]) / FOLDER
    if _current(folder):
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        say(f"Using the demo instance in {folder} (built {marker['built_at']}, "
            f"months {marker['months'][0]} to {marker['months'][-1]}).")
    else:
        build_demo_instance(folder, echo=say, environ={})  # always the embedded store
    return dict(settings, INSTANCE=str(folder), DEMO=True, DATABASE_URL="", DATABASE_READ_URL="")


def _current(folder):
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    from crimemap.store import STORE_FILE

    return marker.get("demo_version") == DEMO_VERSION and (folder / STORE_FILE).is_file()


def _database_environ():
    """The environment's ``CRIMEMAP_DATABASE_*`` variables: where every crimemap command keeps its data."""
    return {key: value for key, value in os.environ.items() if key.startswith("CRIMEMAP_DATABASE_")}


def build_demo_instance(folder, end_month=None, seed=SEED, echo=None, environ=None):
    """Generate Demo London and load it into a new instance at ``folder``.

    In the embedded store, the instance is built in a sibling folder and
    moved into place at the end; an instance already at ``folder`` is
    replaced only then. In a PostGIS database (``DATABASE_URL``), it is loaded
    into the schema of ``folder`` itself, which must then be its own
    (``DATABASE_SCHEMA=instance``): give a new folder.

    Parameters
    ----------
    folder : str or Path
        Where the demo instance goes.
    end_month : str, optional
        Last month of crimes, ``YYYY-MM``; defaults to the previous calendar
        month.
    seed : int
        Seed of every random choice.
    echo : callable, optional
        Called with one line of progress text at a time.
    environ : mapping, optional
        ``CRIMEMAP_DATABASE_*`` variables naming the store to build in; by
        default the process environment's, as for any crimemap command.
        ``{}``: the embedded store (what ``serve --demo`` uses).

    Returns
    -------
    dict
        The marker written into the instance: version, months, counts.

    Raises
    ------
    StoreError
        For a PostGIS database with a ``DATABASE_SCHEMA`` other than
        ``instance``: the demo never writes into a shared schema.
    """
    from crimemap.config import load_settings
    from crimemap.errors import StoreError
    from crimemap.ingest import ingest_crimes, load_boundaries
    from crimemap.population import load_population
    from crimemap.store import open_store

    say = echo or (lambda line: None)
    started = time.perf_counter()
    folder = Path(folder).resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    environ = _database_environ() if environ is None else dict(environ)
    target = load_settings(instance=folder, overrides={"DEMO": True}, environ=environ)
    if target["DATABASE_URL"]:
        if target["DATABASE_SCHEMA"] != "instance":
            raise StoreError("the demo is built into a PostGIS database only in its own schema "
                             "(DATABASE_SCHEMA=instance), never into a shared one")
        folder.mkdir(exist_ok=True)
        build = folder  # the schema is named after the folder: build in place
    else:
        build = Path(tempfile.mkdtemp(prefix=f".{folder.name}-build-", dir=folder.parent))
        build.chmod(0o755)  # mkdtemp makes it private; an instance folder is not
    try:
        say(f"Building the synthetic demo instance in {folder} ...")
        with tempfile.TemporaryDirectory(prefix="crimemap-demo-") as scratch:
            files = generate_demo_files(scratch, end_month=end_month, seed=seed)
            settings = load_settings(instance=build, overrides={"DEMO": True}, environ=environ)
            store = open_store(settings)
            for level in ("borough", "ward", "lsoa"):
                load_boundaries(store, files[level], level, settings=settings)
            load_population(store, files["population"], settings=settings)
            report = ingest_crimes(store, files["crimes"], settings=settings)
            with store.writer() as writer:
                writer.execute("INSERT INTO meta(key, value) VALUES ('demo', '1') "
                               "ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                writer.changed = True
        summary = report.summary()
        marker = {
            "demo_version": DEMO_VERSION,
            "seed": seed,
            "built_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "months": files["months"],
            "areas": files["areas"],
            "crimes": {k: summary[k] for k in ("rows_read", "joined", "no_location", "outside", "rejected")},
        }
        (build / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        if build != folder:
            _swap_in(build, folder)
    except BaseException:
        if build != folder:
            shutil.rmtree(build, ignore_errors=True)
        raise
    say(f"Demo London ready: {files['areas']['borough']} boroughs, {files['areas']['ward']} wards, "
        f"{summary['rows_read']:,} crimes from {files['months'][0]} to {files['months'][-1]} "
        f"({time.perf_counter() - started:.1f} s).")
    return marker


def _swap_in(build, folder):
    """Move a finished build to ``folder``, keeping the old one until the move is done."""
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}-old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(folder, old)
    try:
        os.replace(build, folder)
    except OSError:
        if old is not None:
            os.replace(old, folder)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- the files ------------------------------------------------------------------


def demo_months(end_month=None, n=MONTHS):
    """The ``n`` months ending at ``end_month`` (default: last calendar month).

    Parameters
    ----------
    end_month : str, optional
        ``YYYY-MM``.
    n : int
        Number of months.

    Returns
    -------
    list of str
        Oldest first.
    """
    if end_month is None:
        first_of_month = dt.date.today().replace(day=1)
        end_month = (first_of_month - dt.timedelta(days=1)).strftime("%Y-%m")
    year, month = (int(part) for part in end_month.split("-"))
    index = year * 12 + month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - n + 1, index + 1)]


def generate_demo_files(folder, end_month=None, seed=SEED):
    """Write Demo London as the files crimemap loads.

    Parameters
    ----------
    folder : str or Path
        An existing folder; files are written into it.
    end_month : str, optional
        Last month of crimes (``YYYY-MM``); defaults to last calendar month.
    seed : int
        Seed of every random choice.

    Returns
    -------
    dict
        Paths ``borough``, ``ward``, ``lsoa`` (GeoPackages), ``population``
        (CSV), ``crimes`` (list of police.uk street CSVs), plus ``months`` and
        ``areas`` (number of areas per level).
    """
    import geopandas as gpd

    folder = Path(folder)
    rng = np.random.default_rng(seed)
    city = shapely.Point(CITY_CENTRE).buffer(CITY_RADIUS, quad_segs=16)
    outline = _outline(rng)
    wards = _wards(rng, outline, city)
    lsoas = _lsoas(rng, wards)

    crs = "EPSG:27700"
    boroughs = wards.dissolve(by=["LAD22CD", "LAD22NM"], as_index=False)[["LAD22CD", "LAD22NM", "geometry"]]
    paths = {"borough": folder / "demo-boroughs-LAD22.gpkg", "ward": folder / "demo-wards-WD22.gpkg",
             "lsoa": folder / "demo-lsoa-LSOA21.gpkg"}
    gpd.GeoDataFrame(boroughs, crs=crs).to_file(paths["borough"], driver="GPKG")
    gpd.GeoDataFrame(wards, crs=crs).to_file(paths["ward"], driver="GPKG")
    gpd.GeoDataFrame(lsoas.drop(columns=["persons"]), crs=crs).to_file(paths["lsoa"], driver="GPKG")
    # The year in the name is how the ONS layout says which year the estimates are for.
    paths["population"] = folder / "demo-lsoa-population-mid-2022.csv"
    lsoas[["LSOA21CD", "LSOA21NM", "LAD22CD", "persons"]].rename(columns={"persons": "Total"}).to_csv(
        paths["population"], index=False)

    months = demo_months(end_month)
    paths["crimes"] = _crimes(rng, folder, months, outline, city, lsoas)
    paths["months"] = months
    paths["areas"] = {"borough": len(boroughs), "ward": len(wards), "lsoa": len(lsoas)}
    return paths


def _outline(rng):
    """An ellipse with a wobbly edge, so Demo London does not look like a lens."""
    theta = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    phase = rng.uniform(0, 2 * np.pi, 3)
    radius = 1 + 0.05 * np.sin(3 * theta + phase[0]) + 0.03 * np.sin(5 * theta + phase[1]) \
        + 0.02 * np.sin(8 * theta + phase[2])
    x = CENTRE[0] + SEMI_AXES[0] * radius * np.cos(theta)
    y = CENTRE[1] + SEMI_AXES[1] * radius * np.sin(theta)
    return shapely.Polygon(np.column_stack([x, y]))


def _random_points(rng, region, n, density=None):
    """``n`` points in ``region``; ``density(x, y)`` in [0, 1] thins them by rejection."""
    minx, miny, maxx, maxy = region.bounds
    shapely.prepare(region)
    found = []
    total = 0
    while total < n:
        x = rng.uniform(minx, maxx, 4 * n)
        y = rng.uniform(miny, maxy, 4 * n)
        keep = shapely.contains_xy(region, x, y)
        if density is not None:
            keep &= rng.uniform(0, 1, len(x)) < density(x, y)
        found.append(np.column_stack([x[keep], y[keep]]))
        total += int(keep.sum())
    return np.concatenate(found)[:n]


def _centrality(x, y):
    """1 at the centre of Demo London, falling towards the edge."""
    dx = (x - CITY_CENTRE[0]) / SEMI_AXES[0]
    dy = (y - CITY_CENTRE[1]) / SEMI_AXES[1]
    return np.exp(-(dx * dx + dy * dy) / 0.35)


def _voronoi(points, region, relax=2):
    """Voronoi cells of ``points`` clipped to ``region``, after Lloyd relaxation.

    Relaxing moves each seed to its cell's centroid, which gives the rounder,
    more even cells of real administrative areas.
    """
    cells = None
    for step in range(relax + 1):
        diagram = shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=region.envelope.buffer(1000),
                                           ordered=True)
        cells = np.array([_polygonal(c) for c in shapely.intersection(shapely.get_parts(diagram), region)])
        if step < relax:
            centroids = shapely.centroid(cells)
            points = np.column_stack([shapely.get_x(centroids), shapely.get_y(centroids)])
    return cells


def _polygonal(geom):
    """Only the polygons of a clipped cell (a clip can leave slivers of lines or points)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
    return shapely.multipolygons(parts) if parts else shapely.Polygon()


def _names(rng, n, suffix):
    combos = [p + r for p in _PREFIXES for r in _ROOTS]
    rng.shuffle(combos)
    return [f"{name} {suffix}" for name in combos[:n]]


def _wards(rng, outline, city):
    """Wards as a Voronoi tessellation, grouped into boroughs by k-means."""
    import geopandas as gpd

    outer = outline.difference(city)
    # Inner London wards are smaller (wards hold similar numbers of people).
    seeds = _random_points(rng, outer, N_WARDS, density=lambda x, y: 0.25 + 0.75 * _centrality(x, y))
    cells = _voronoi(seeds, outer)
    city_cells = _voronoi(_random_points(rng, city, 5), city, relax=3)

    centroids = shapely.centroid(cells)
    xy = np.column_stack([shapely.get_x(centroids), shapely.get_y(centroids)])
    centres = xy[rng.choice(len(xy), N_BOROUGHS, replace=False)]
    for _ in range(25):
        nearest = np.argmin(((xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2), axis=1)
        centres = np.array([xy[nearest == k].mean(axis=0) if (nearest == k).any() else centres[k]
                            for k in range(N_BOROUGHS)])
    # Number boroughs from the north-west, as a reader scans a map.
    order = np.lexsort((centres[:, 0], -np.round(centres[:, 1], -4)))
    rank = np.empty(N_BOROUGHS, dtype=int)
    rank[order] = np.arange(N_BOROUGHS)
    borough = rank[nearest]

    names = _names(rng, len(cells) + len(city_cells), "Demo Ward")
    ward_order = np.lexsort((xy[:, 0], borough))
    rows = []
    for i, w in enumerate(ward_order):
        b = borough[w]
        rows.append({"WD22CD": f"E0590{i + 1:04d}", "WD22NM": names[i], "LAD22CD": f"E0990{b + 1:04d}",
                     "LAD22NM": f"Demo Borough {b + 1:02d}", "geometry": cells[w]})
    for j, cell in enumerate(city_cells):
        i = len(cells) + j
        rows.append({"WD22CD": f"E0590{i + 1:04d}", "WD22NM": names[i], "LAD22CD": CITY_CODE,
                     "LAD22NM": "Demo City", "geometry": cell})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:27700")


def _lsoas(rng, wards):
    """Two to four LSOA-like areas per ward, each with about 1,500 residents."""
    import geopandas as gpd

    rows = []
    for ward in wards.itertuples(index=False):
        k = int(rng.integers(2, 5))
        cells = _voronoi(_random_points(rng, ward.geometry, k), ward.geometry, relax=1)
        in_city = ward.LAD22CD == CITY_CODE
        for cell in cells:
            if cell.is_empty:
                continue
            # The City has few residents and many visitors: its rate per
            # resident is high, as the real City's is.
            persons = int(rng.normal(350, 60) if in_city else rng.normal(1_550, 250))
            n = len(rows) + 1
            rows.append({"LSOA21CD": f"E0190{n:04d}", "LSOA21NM": f"{ward.WD22NM[:-10]} {n:04d}",
                         "LAD22CD": ward.LAD22CD, "persons": max(persons, 100), "geometry": cell})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:27700")


def _crimes(rng, folder, months, outline, city, lsoas):
    """police.uk street CSVs, one per force and month, as police.uk publishes them."""
    from crimemap.crs import bng_to_lonlat

    # Anonymised map points: police.uk snaps every crime to one of a fixed set
    # of points, so many crimes share a location.
    pts = _random_points(rng, outline, N_MAP_POINTS, density=lambda x, y: 0.3 + 0.7 * _centrality(x, y))
    x, y = pts[:, 0], pts[:, 1]
    towns = _random_points(rng, outline.buffer(-2000), 18)
    town = np.zeros(len(x))
    for tx, ty in towns:
        town += np.exp(-((x - tx) ** 2 + (y - ty) ** 2) / (2 * 700.0 ** 2))
    weights = {"res": 0.2 + 0.8 * rng.gamma(2.0, 0.5, len(x)), "cen": _centrality(x, y) ** 3 + 0.02,
               "town": town + 0.02}
    weights = {k: w / w.sum() for k, w in weights.items()}

    lon, lat = bng_to_lonlat(x, y)
    lon, lat = np.round(lon, 6), np.round(lat, 6)
    tree = shapely.STRtree(lsoas.geometry.values)
    point_idx, lsoa_idx = tree.query(shapely.points(x, y), predicate="within")
    lsoa_of = np.full(len(x), -1)
    lsoa_of[point_idx] = lsoa_idx
    in_city = shapely.contains_xy(city, x, y)
    streets = np.array([f"On or near {name.split()[0]} {rng.choice(_STREETS)}"
                        for name in _names(rng, len(_PREFIXES) * len(_ROOTS), "x")])
    street_of = rng.integers(0, len(streets), len(x))

    labels = np.array([c[0] for c in CRIME_TYPES])
    share = np.array([c[1] for c in CRIME_TYPES])
    share = share / share.sum()
    trend = np.array([c[2] for c in CRIME_TYPES])
    mix = np.array([c[3:] for c in CRIME_TYPES])
    point_p = mix @ np.vstack([weights["res"], weights["cen"], weights["town"]])  # type x point

    # A handful of crimes just beyond the edge, as real force files carry a few.
    beyond = _random_points(rng, outline.buffer(3000).difference(outline.buffer(300)), 60)
    beyond_lon, beyond_lat = bng_to_lonlat(beyond[:, 0], beyond[:, 1])

    files = []
    for m, month in enumerate(months):
        season = 1 + 0.08 * np.sin(2 * np.pi * (int(month[5:]) - 4) / 12)
        years_from_end = (len(months) - 1 - m) / 12
        expected = CRIMES_PER_MONTH * season * share * trend ** (-years_from_end)
        counts = rng.poisson(expected)
        frames = []
        for t, n in enumerate(counts):
            where = rng.choice(len(x), n, p=point_p[t])
            frames.append(pd.DataFrame({"type": t, "point": where}))
        month_rows = pd.concat(frames, ignore_index=True)
        month_rows = month_rows.sample(frac=1, random_state=int(rng.integers(1 << 31)), ignore_index=True)
        n = len(month_rows)
        point = month_rows["point"].to_numpy()
        types = labels[month_rows["type"].to_numpy()]
        lsoa_i = lsoa_of[point]
        frame = pd.DataFrame({
            "Crime ID": _crime_ids(month, n),
            "Month": month,
            "Longitude": lon[point].astype(object),
            "Latitude": lat[point].astype(object),
            "Location": streets[street_of[point]],
            "LSOA code": np.where(lsoa_i >= 0, lsoas["LSOA21CD"].to_numpy()[lsoa_i], ""),
            "LSOA name": np.where(lsoa_i >= 0, lsoas["LSOA21NM"].to_numpy()[lsoa_i], ""),
            "Crime type": types,
            "Last outcome category": rng.choice(OUTCOMES, n),
            "Context": "",
        })
        asb = types == "Anti-social behaviour"
        # police.uk gives anti-social behaviour neither an id nor an outcome.
        frame.loc[asb, ["Crime ID", "Last outcome category"]] = ""
        # About 1 % of crimes have no location (police.uk: "No Location").
        lost = rng.uniform(0, 1, n) < 0.01
        frame.loc[lost, ["Longitude", "Latitude", "LSOA code", "LSOA name"]] = ""
        frame.loc[lost, "Location"] = "No Location"
        force = np.where(in_city[point], "city-of-london", "metropolitan")
        extra = rng.choice(len(beyond), 3, replace=False)
        outside = frame.iloc[:3].copy()
        outside[["Longitude", "Latitude"]] = np.column_stack(
            [np.round(beyond_lon[extra], 6), np.round(beyond_lat[extra], 6)]).astype(object)
        outside[["LSOA code", "LSOA name"]] = ""
        frame = pd.concat([frame, outside], ignore_index=True)
        force = np.concatenate([force, ["metropolitan"] * len(outside)])
        for slug, label in FORCES.items():
            part = frame[force == slug].assign(**{"Reported by": label, "Falls within": label})
            path = folder / month / f"{month}-{slug}-street.csv"
            path.parent.mkdir(exist_ok=True)
            part[CSV_COLUMNS].to_csv(path, index=False)
            files.append(path)
    return files


def _crime_ids(month, n):
    """64-hex ids like police.uk's, stable for a month and row number."""
    return [hashlib.sha256(f"demo {month} {i}".encode()).hexdigest() for i in range(n)]
