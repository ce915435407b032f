"""``crimemap tiles ...``: pre-build the vector tile cache (docs/tiles.md)."""

import json
import time

import click

from crimemap.cli import command_errors

LAYER_CHOICES = ("borough", "ward", "snt", "lsoa")


@click.group("tiles")
def tiles_group():
    """Vector tiles of the boundary layers, cached under TILES_DIR (default: tiles/)."""


@tiles_group.command("build")
@click.option("--layer", "layers", multiple=True, type=click.Choice(LAYER_CHOICES),
              help="A layer to build (repeat for several); default: every loaded layer.")
@click.option("--minzoom", type=click.IntRange(0, 30), default=8, show_default=True, help="First zoom built.")
@click.option("--maxzoom", type=click.IntRange(0, 30), default=13, show_default=True,
              help="Last zoom built (at most TILES_MAX_ZOOM).")
@click.option("--crime", default="all-crime", show_default=True, help="Crime type id of the figures.")
@click.option("--from", "from_", metavar="YYYY-MM", help="First month (default: as the choropleth API).")
@click.option("--to", metavar="YYYY-MM", help="Last month (default: the latest loaded).")
@click.option("--keep-old", is_flag=True, help="Keep the tiles of older data versions (removed by default).")
@click.option("--json", "as_json", is_flag=True, help="Print the totals as JSON.")
@click.pass_obj
@command_errors
def tiles_build(settings, layers, minzoom, maxzoom, crime, from_, to, keep_old, as_json):
    """Build and cache every tile of the layers' extent for a range of zooms."""
    from crimemap import figures as fig
    from crimemap.tiles import TileCache, TileOptions, prebuild
    from crimemap.tiles.cache import root_from_config

    options = TileOptions.from_config(settings)
    if minzoom > maxzoom:
        raise click.ClickException(f"--minzoom {minzoom} is past --maxzoom {maxzoom}")
    if maxzoom > options.max_zoom:
        raise click.ClickException(f"--maxzoom {maxzoom} is past TILES_MAX_ZOOM ({options.max_zoom}); "
                                   "the server would never ask for those tiles")
    from crimemap.store import open_store

    store = open_store(settings, readonly=True)  # tiles are read from the store, never written to it
    cat = fig.catalog(store)
    cat.registry().get(crime)
    months = fig.resolve_period(from_, to, cat.latest, settings["QUERY_MONTHS_DEFAULT"],
                                settings["QUERY_MONTHS_MAX"])
    loaded = {layer["level"] for layer in store.layers()}
    chosen = list(layers) or [lv for lv in LAYER_CHOICES if lv in loaded or (lv == "snt" and "ward" in loaded)]
    if not chosen:
        raise click.ClickException("no boundary layers are loaded; load one with `crimemap boundaries load`")
    cache = TileCache(root_from_config(settings), settings["TILES_CACHE_QUERIES_MAX"])
    removed = 0 if keep_old else cache.prune(store.data_version())
    started = time.perf_counter()
    totals = prebuild(store, cache, chosen, minzoom, maxzoom, months, crime, options)
    totals.update(seconds=round(time.perf_counter() - started, 2), folder=str(cache.root), layers=chosen,
                  months=[months[0], months[-1]] if months else [], old_versions_removed=removed,
                  data_version=str(store.data_version()))
    if as_json:
        click.echo(json.dumps(totals, indent=2))
        return
    click.echo(f"Tiles of {', '.join(chosen)}, zooms {minzoom}-{maxzoom}, {crime}, "
               f"{totals['months'][0] if months else 'no period'} to {totals['months'][-1] if months else ''}: "
               f"{totals['tiles']:,} visited, {totals['built']:,} built, {totals['cached']:,} already cached, "
               f"{totals['empty']:,} empty, {totals['bytes'] / 1e6:,.1f} MB in {totals['seconds']:.1f} s "
               f"under {totals['folder']} (data version {totals['data_version']}; "
               f"{removed} older version folder{'s' if removed != 1 else ''} removed).")
