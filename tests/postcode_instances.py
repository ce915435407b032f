"""Instances with the real postcode lookup, for the postcode web tests.

Loading takes seconds, so each test module builds one instance (module-scoped
fixture) with :func:`build`, through the real CLI. The files are read from
../shared/data in place, never copied.
"""

from tests.live_server import free_port, live_server  # noqa: F401 - the postcode tests import them from here

WARDS_2022 = "boundaries/london-wards-2022-approx.gpkg"
BOROUGHS_2022 = "boundaries/london-2021-lad22-gen20.shp"
LSOA_2011 = "boundaries/london-2011-lsoa-gen20.shp"
POPULATION = "population/london-mid2020-lsoa11-pop.csv"
CODEPOINT = "postcodes/codepoint_open_2025-10_london.csv.gz"
POLICE_UK_API = "crime/police_uk_api_partial"


def cli(instance, *args):
    """Run ``crimemap --instance INSTANCE args...`` in process; fail the test on a non-zero exit."""
    from click.testing import CliRunner

    from crimemap.cli import main

    result = CliRunner().invoke(main, ["--instance", str(instance), *map(str, args)], catch_exceptions=False)
    if result.exit_code != 0:
        raise AssertionError(f"crimemap {' '.join(map(str, args))} failed:\n{result.output}")
    return result.output


def build(instance, need_shared, crimes=False):
    """Load wards (2022), boroughs and the Code-Point Open lookup; with ``crimes``, also police.uk
    API points (2018-03..05, 25 boroughs) and LSOA population, so rates and the London average exist."""
    instance.mkdir(parents=True, exist_ok=True)
    cli(instance, "boundaries", "load", "ward", need_shared(WARDS_2022))
    cli(instance, "boundaries", "load", "borough", need_shared(BOROUGHS_2022))
    if crimes:
        cli(instance, "boundaries", "load", "lsoa", need_shared(LSOA_2011))
        cli(instance, "population", "load", need_shared(POPULATION))
        cli(instance, "crimes", "ingest", *sorted(need_shared(POLICE_UK_API).glob("*.jsonl.gz")))
    cli(instance, "postcodes", "refresh", need_shared(CODEPOINT))
    return instance
