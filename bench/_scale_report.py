"""The Markdown section of bench_scale.py ("## National scale") from its results dict."""

SECTION = "## National scale"


def _rate(points, seconds):
    if not seconds:
        return "–"
    rate = points / seconds
    return f"{seconds:,.1f} s = " + (f"{rate / 1e6:,.2f} M/s" if rate >= 1e6 else f"{rate / 1e3:,.0f} k/s")


def _mb(value):
    return "–" if value is None else f"{value:,.0f} MB"


def _err(case):
    if case is None:
        return "not run"
    return case.get("error") or case.get("unavailable")


def _ingest_rows(n, row):
    """(case, seconds, points/s text, seconds, memory, note) rows of one size."""
    out = []
    sjoin = row.get("sjoin")
    base_s = (sjoin or {}).get("seconds")

    def add(label, case, seconds=None, memory=None, note=""):
        problem = _err(case)
        if problem:
            out.append(f"| {n:,} | {label} | {problem} | – | – | {note} |")
            return
        seconds = case["seconds"] if seconds is None else seconds
        ratio = f"{base_s / seconds:,.2f}×" if base_s and seconds else "–"
        memory = _mb(case.get("rss_max_mb")) if memory is None else memory
        out.append(f"| {n:,} | {label} | {_rate(n, seconds)} | {ratio} | {memory} | {note} |")

    for key, label in (("sqlite", "crimemap `ingest_crimes` → SQLite store"),
                       ("postgis", "crimemap `ingest_crimes` → PostGIS store")):
        case = row.get(key)
        note = ""
        if case and not _err(case):
            note = (f"read + join + store; {case['joined']:,} joined, {case['outside']:,} outside, "
                    f"{case['rejected']:,} rejected; wards loaded first in {case['boundary_s']:,.1f} s")
            if case.get("store_mb"):
                note += f"; store file {case['store_mb']:,.0f} MB"
            if case.get("rss_by_phase_mb"):
                note += "; peak RSS " + ", ".join(f"{phase} {_mb(mb)}" for phase, mb in case["rss_by_phase_mb"].items())
        if key == "postgis" and case is None:
            continue
        add(label, case, note=note)
    note = ""
    if sjoin and not _err(sjoin):
        parts = ", ".join(f"{k} {v:,.1f} s" for k, v in sjoin["parts"].items())
        note = f"stores nothing; {sjoin['joined']:,} joined; {parts}"
    add("`geopandas.sjoin` (read_csv chunks, to_crs, sjoin)", sjoin, note=note)
    raw = row.get("postgis_raw")
    if raw is not None:
        if _err(raw):
            add("PostGIS itself", raw)
        else:
            memory = f"{_mb(raw.get('rss_max_mb'))} client / {_mb(raw.get('server_hwm_mb'))} backend"
            for name, join in raw["joins"].items():
                if "skipped" in join:
                    out.append(f"| {n:,} | PostGIS: COPY + join of {name} | skipped ({join['skipped']}) | – | – | |")
                    continue
                note = (f"COPY {raw['copy_s']:,.1f} s + join {join['seconds']:,.1f} s; {join['joined']:,} joined; "
                        f"{raw['locations']:,} distinct locations")
                add(f"PostGIS: COPY + GiST join of {name}", raw, raw["copy_s"] + join["seconds"], memory, note)
    duck = row.get("duckdb")
    note = ""
    if duck and not _err(duck):
        note = (f"{duck['note']}; read {duck['parts']['read']:,.1f} s, transform + join {duck['parts']['join']:,.1f} s; "
                f"{duck['joined']:,} joined; spatial join operator {'used' if duck['spatial_join'] else 'NOT used'}; "
                f"{duck['threads']} threads")
    add("DuckDB: read_csv + ST_Transform + ST_Intersects join", duck, note=note)
    return out


def _join_rows(n, row):
    """The join alone, on the distinct locations: crimemap's AreaIndex against PostGIS's in-database joins."""
    ours, raw = row.get("areaindex"), row.get("postgis_raw")
    if _err(ours):
        return [f"| {n:,} | – | AreaIndex: {_err(ours)} | | | |"]
    parts = ours["parts"]
    mine = parts["reproject"] + parts["index build"] + parts["join"]
    cells = [f"{n:,}", f"{ours['locations']:,}",
             f"{mine:,.2f} s (reproject {parts['reproject']:,.2f}, index {parts['index build']:,.2f}, "
             f"assign {parts['join']:,.2f})"]
    if raw is None or _err(raw):
        return ["| " + " | ".join(cells + [_err(raw) or "not run", "–", "–"]) + " |"]
    for name in ("locations (GiST on both), wards outer", "locations, GiST on wards"):
        join = raw["joins"].get(name, {})
        if "seconds" not in join:
            cells.append(join.get("skipped", "–"))
            continue
        cells.append(f"{join['seconds']:,.2f} s (setup {join['setup_s']:,.2f} + query {join['query_s']:,.2f}) = "
                     f"**{join['seconds'] / mine:,.1f}×** AreaIndex's time")
    return ["| " + " | ".join(cells) + " |"]


def _run(results):
    """Length of the run and the load averages, or what is missing from a run that did not finish."""
    start = f"load average {results['load_start'][0]:.1f} at the start"
    if "elapsed" not in results:
        return start + "; the run did not finish: what is missing below is marked not run"
    return (f"whole run {results['elapsed'] / 60:,.0f} min; {start}, {results['load_end'][0]:.1f} at the end")


def _store(name, case):
    """The store's name in a row; † marks a case run apart from the main run (the notes say how)."""
    return name + (" †" if case.get("separate") else "")


def _store_rows(results, kind, columns, cells):
    """One table row per store that ran the ``kind`` case ("api" or "tiles"): its cells, or why it has none."""
    rows = []
    for name in ("sqlite", "postgis"):
        case = results.get(f"{kind}_{name}")
        if case is None:
            continue
        problem = _err(case)
        row = [_store(name, case)] + ([problem] + [""] * (columns - 1) if problem else cells(case))
        rows.append("| " + " | ".join(row) + " |")
    return rows


def _cached(case):
    """The cached column, with how many of its requests the answer cache answered."""
    text = _latency(case, "cached")
    if _err(case) or "cache_hits" not in case:
        return text
    return f"{text} ({case['cache_hits']} of {case['cached']['n']} from the cache)"


def _latency(case, key):
    if _err(case):
        return _err(case)
    p = case[key]
    return f"{p['p50_ms']:,.0f} / {p['p99_ms']:,.0f} ms"


def render(args, results):
    quick = " --quick" if args.quick else ""
    sizes = f" --sizes {' '.join(map(str, args.sizes))}" if args.sizes else ""
    copies = results["copies"]
    lines = [SECTION, "",
             f"Command: `python bench/bench_scale.py{quick}{sizes}` ({results['date']}; {results['machine']}; {_run(results)}). The machine is shared with other engineers' test runs, "
             "so absolute figures move between runs; compare rows of one run. PostgreSQL: "
             f"{results['server']}. Data: `bench/synth_national.py`, {copies} copies of London's 657 wards of 2018 "
             f"({copies * 657:,} wards) laid side by side in British National Grid, points drawn from the real "
             "police.uk points through 750,000 anonymised map points per copy (docs/scale.md). Each case runs in "
             "its own subprocess; memory is its peak RSS (and, for PostGIS itself, the peak RSS of the server "
             "backend that ran the query; parallel workers not included). Points/s are of wall time from files on "
             "disk to counts per ward (loading the wards not included); × sjoin is the plain geopandas pipeline's "
             "time over the case's, in the same run.", ""]
    for n, row in results["sizes"].items():
        gen = row.get("generate")
        if _err(gen):
            lines.append(f"- {int(n):,} points: generation: {_err(gen)}")
            continue
        lines.append(f"- {int(n):,} points: generated in {gen['seconds']:,.0f} s ({int(n) / gen['seconds'] / 1e3:,.0f} "
                     f"k rows/s, peak RSS {_mb(gen['rss_max_mb'])}): {gen['files']} street CSVs (one per copy and "
                     f"month, {gen['months']} month(s)), {gen['bytes'] / 2**20:,.0f} MB, {gen['map_points']:,} map points to draw "
                     f"from, {gen['wards']:,} wards.")
    lines += ["", "### Ingest plus join", "",
              "| points | case | time = points/s | × sjoin | peak RSS | notes |", "|---|---|---|---|---|---|"]
    for n, row in results["sizes"].items():
        lines += _ingest_rows(int(n), row)
    lines += ["", "### The join alone, on the distinct locations", "",
              "What the PostGIS store has to choose between: crimemap's `AreaIndex` in Python (reproject the distinct "
              "map points with pyproj, build the grid index of the wards, assign; the ingest path both stores share) "
              "against the same join in the database. PostGIS *GiST on both*: a table of the distinct locations "
              "(GROUP BY lon, lat; `ST_Transform` to BNG), a GiST index on it, then the wards drive the join "
              "(`ST_Intersects`), so each ward's prepared polygon serves all its points; setup = building that "
              "table and index. *GiST on wards*: each location looked up in the wards' index (the plan PostgreSQL "
              "picks without an index on the points). Reading the CSVs is left out on both sides.", "",
              "| points | distinct locations | crimemap AreaIndex | PostGIS, GiST on both | PostGIS, GiST on wards |",
              "|---|---|---|---|---|"]
    for n, row in results["sizes"].items():
        lines += _join_rows(int(n), row)
    largest = results.get("largest")
    lines += ["", f"### Choropleth and area API on {int(largest or 0):,} points, {copies * 657:,} wards", "",
              "In process (Flask test client), one request at a time. *Computed*: the answer cache off and the "
              "process's figures cache (`crimemap/figures/layer_cache.py`) emptied before each request, as after "
              "a new data version (the simplified ward geometry kept after the first request); *figures kept*: "
              "the answer cache off, the figures cache warm; *cached*: the answer cache on and warm (entries over "
              "64 KiB are kept zlib-compressed). The area API is `/api/v1/areas/ward/<code>` for distinct random "
              "wards: the first after emptying the figures cache, then the others. p50 / p99 (with so few "
              "requests p99 is close to the slowest).", "",
              "| store | `/api/v1/choropleth?level=ward` computed | figures kept | cached | first request | body | "
              "`/api/v1/areas/ward/<code>` first | the others |", "|---|---|---|---|---|---|---|---|"]
    lines += _store_rows(results, "api", 7, lambda case: [
        f"{_latency(case, 'computed')} (n={case['computed']['n']})",
        f"{_latency(case, 'kept')}" if "kept" in case else "–", _cached(case), f"{case['first_s']:,.1f} s",
        f"{case['bytes'] / 2**20:,.1f} MB, {case['features']:,} wards",
        f"{case['area_first_s'] * 1000:,.0f} ms" if "area_first_s" in case else "–",
        f"{_latency(case, 'area')} (n={case['area']['n']})"])
    lines += ["", "### Vector tiles (zoom 12, wards)", "",
              "A sample spread over every zoom-12 tile touching a copy of London, the central London tile first "
              "(it computes the layer's figures and simplified geometry); *cold*: the rest, built and written; "
              "*cached*: those with features read back from `tiles/`.", "",
              "| store | tiles sampled (with features) of national | first tile | cold tiles/s | cached tiles/s | "
              "z12 ward tile, central London | median / largest tile |", "|---|---|---|---|---|---|---|"]
    lines += _store_rows(results, "tiles", 6, lambda case: [
        f"{case['sampled']} ({case['with_features']}) of {case['tiles_national']:,}", f"{case['first_s']:,.1f} s",
        f"{case['cold_tps']:,.1f}", f"{case['cached_tps']:,.0f}",
        "`/tiles/ward/{}/{}/{}.pbf` ".format(*case["central"]) + f"{case['central_bytes'] / 1024:,.1f} KB",
        f"{case['median_bytes'] / 1024:,.1f} / {case['max_bytes'] / 1024:,.1f} KB"])
    lines += ["", results.get("notes", "").strip(), ""]
    return "\n".join(lines).rstrip("\n") + "\n"
