"""Locust scenario for crimemap: real user journeys against a running server (see bench/bench_load.py).

Each simulated user picks one journey at a time, weighted like a day's traffic:

- **search** (weight 4): ``/search?q=<postcode>`` (a random real postcode, in
  any spelling), which redirects to the ward's area page; then that page.
- **map** (weight 3): the London map ``/`` and ``/api/v1/choropleth``,
  switching between borough and ward and between crime types.
- **embed** (weight 2): ``/embed/map`` of a borough or ward map.
- **api** (weight 3): ``/api/v1/areas/<level>/<code>`` and police.uk's
  ``/api/crimes-street/all-crime?lat=&lng=`` (one mile around a point).

The journeys' inputs (postcodes, area codes, crime types, points) come from a
JSON file named by ``CRIMEMAP_LOAD_INPUTS`` (bench_load.py writes it from the
instance). ``CRIMEMAP_LOAD_THINK=0`` drops the pause between journeys.
``--max-requests N`` stops the run after N requests, besides
locust's ``--run-time``; any answer other than the expected status is a
failure.
"""

import json
import os
import random

from locust import HttpUser, between, constant, events, task

with open(os.environ["CRIMEMAP_LOAD_INPUTS"], encoding="utf-8") as _fh:
    INPUTS = json.load(_fh)


@events.init_command_line_parser.add_listener
def _options(parser):
    parser.add_argument("--max-requests", type=int, default=0, help="Stop after this many requests (0: no cap).")


_count = {"n": 0}


@events.request.add_listener
def _cap(**kwargs):
    _count["n"] += 1
    env = _Env.environment
    cap = env.parsed_options.max_requests if env and env.parsed_options else 0
    if cap and _count["n"] == cap and env.runner:
        env.runner.quit()


class _Env:
    environment = None


@events.init.add_listener
def _remember(environment, **kwargs):
    _Env.environment = environment


def _spell(postcode):
    """As people type it: canonical, lower case without the space, or upper case without the space."""
    return random.choice([postcode, postcode.lower().replace(" ", ""), postcode.replace(" ", "")])


class Resident(HttpUser):
    """One person using the site: a second or two between clicks."""

    # CRIMEMAP_LOAD_THINK=0 (bench_load.py --sweep): no pause, to find what the server can do.
    wait_time = between(0.5, 2.0) if os.environ.get("CRIMEMAP_LOAD_THINK", "1") != "0" else constant(0)

    def _get(self, path, name, status=200, **kwargs):
        with self.client.get(path, name=name, catch_response=True, **kwargs) as response:
            if response.status_code != status:
                response.failure(f"{response.status_code} for {path}")
            return response

    @task(4)
    def search_then_area(self):
        postcode = random.choice(INPUTS["postcodes"])
        response = self._get(f"/search?q={_spell(postcode)}", "/search?q=[postcode]", status=302,
                             allow_redirects=False)
        location = response.headers.get("Location", "")
        if "/area/ward/" in location:
            path = location[location.index("/area/ward/"):]
            self._get(path, "/area/ward/[code]")

    @task(3)
    def map_changes(self):
        crimes = random.sample(INPUTS["crime_types"], 2)
        for level, crime in (("borough", crimes[0]), ("ward", crimes[0]), ("ward", crimes[1]),
                             ("borough", crimes[1])):
            self._get(f"/?level={level}&crime={crime}", f"/?level={level}&crime=[type]")
            self._get(f"/api/v1/choropleth?level={level}&crime={crime}",
                      f"/api/v1/choropleth?level={level}&crime=[type]")

    @task(2)
    def embed(self):
        level = random.choice(["borough", "ward"])
        crime = random.choice(INPUTS["crime_types"])
        self._get(f"/embed/map?level={level}&crime={crime}", f"/embed/map?level={level}")

    @task(3)
    def api_calls(self):
        level = random.choice(["borough", "ward"])
        code = random.choice(INPUTS["areas"][level])
        self._get(f"/api/v1/areas/{level}/{code}", f"/api/v1/areas/{level}/[code]")
        lat, lng = random.choice(INPUTS["points"])
        self._get(f"/api/crimes-street/all-crime?lat={lat}&lng={lng}", "/api/crimes-street/all-crime?lat=&lng=")
