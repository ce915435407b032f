"""/embed/map.png: the embedded map drawn on the server (matplotlib Agg), on a copy of the real 2018 instance.

Each borough's colour in the picture is read at a point inside it and
compared with the colour of its band, the band worked out here from the
choropleth API's counts and residents by the documented rule
(docs/bands.md). Title, period, data-as-of, legend and attribution are read
from the figure's text artists.
"""

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crimemap import embeds
from crimemap.attribution import ATTRIBUTION
from crimemap.render_png import draw
from crimemap.store import open_store
from crimemap.web import create_app
from crimemap.web.maps import BAND_COLOURS, CITY_FILL, NO_DATA_SWATCH
from tests.conftest import settings_for
from tests.test_embed import copy_instance

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
RULE = [(0.5, "much-lower"), (0.8, "lower"), (1.25, "around"), (2.0, "higher"), (np.inf, "much-higher")]
PERIOD = {"level": "borough", "crime": "all-crime", "from": "2018-03", "to": "2018-05"}
COLOURS = {"bands": BAND_COLOURS, "no_data": NO_DATA_SWATCH, "separate_force": CITY_FILL}


@pytest.fixture(scope="module")
def instance(api_2018, tmp_path_factory):
    return copy_instance(api_2018.instance, tmp_path_factory.mktemp("png") / "instance")


@pytest.fixture(scope="module")
def client(instance):
    return create_app({"INSTANCE": str(instance), "TESTING": True}).test_client()


def _rgb(hex_colour):
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _expected_bands(client):
    """Band per Met borough from the API's counts and residents, by the documented rule."""
    body = client.get("/api/v1/choropleth", query_string={**PERIOD, "geometry": "none"}).get_json()
    met = [f["properties"] for f in body["features"] if f["properties"]["force"] == "metropolitan"]
    london = sum(p["count"] for p in met) / sum(p["population"] for p in met)
    return {p["code"]: next(band for limit, band in RULE if (p["count"] / p["population"]) / london < limit)
            for p in met}


def test_each_area_is_drawn_in_its_bands_colour(client, instance):
    settings = settings_for(instance)
    store = open_store(settings, readonly=True)
    query = embeds.parse_query(PERIOD).pinned(store.data_version())
    figures = embeds.snapshot_figures(embeds.freeze(store, query, settings))
    fig, ax = draw(figures, [], COLOURS, "t", "s", ["a"], size=(1200, 900))
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[:, :, :3]
    height = pixels.shape[0]
    expected = _expected_bands(client)
    assert len(expected) == 32 and len(set(expected.values())) >= 3
    checked = 0
    for code, geom in zip(figures["code"], figures.geometry):
        point = geom.buffer(-0.004).representative_point() if not geom.buffer(-0.004).is_empty else None
        if point is None or code not in expected:
            continue
        x, y = ax.transData.transform((point.x, point.y))
        colour = tuple(int(v) for v in pixels[int(round(height - y)), int(round(x))])
        assert colour == _rgb(BAND_COLOURS[expected[code]]), code
        checked += 1
    assert checked >= 30
    city = figures[figures["code"] == "E09000001"].geometry.iloc[0].representative_point()
    x, y = ax.transData.transform((city.x, city.y))
    assert tuple(int(v) for v in pixels[int(round(height - y)), int(round(x))]) == _rgb(CITY_FILL)


def test_the_png_route_has_title_period_as_of_legend_and_attribution(client, tmp_path):
    response = client.get("/embed/map.png", query_string={**PERIOD, "width": 1000, "height": 750})
    assert response.status_code == 200 and response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    assert image.size == (1000, 750)
    colours = {c for _n, c in image.convert("RGB").getcolors(1 << 20)}
    for band in ("much-lower", "around", "higher"):
        assert _rgb(BAND_COLOURS[band]) in colours
    folder = SCREENSHOTS if os.environ.get("CRIMEMAP_UPDATE_SCREENSHOTS") == "1" else tmp_path
    (folder / "embed-print.png").write_bytes(response.data)


def test_the_drawing_holds_every_text_the_page_has(client, instance):
    from crimemap.web.maps import legend

    settings = settings_for(instance)
    store = open_store(settings, readonly=True)
    query = embeds.parse_query(PERIOD).pinned(store.data_version())
    figures = embeds.snapshot_figures(embeds.freeze(store, query, settings))
    entries = legend(figures)
    fig, _ax = draw(figures, entries, COLOURS, "All crime by borough in London",
                    "2018-03 to 2018-05 · data as of 2018-05", list(ATTRIBUTION), size=(1200, 900))
    texts = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "All crime by borough in London" in texts and "data as of 2018-05" in texts
    for line in ATTRIBUTION:
        assert line in texts
    labels = [t.get_text().replace("\n", " ") for t in fig.legends[0].get_texts()]
    assert [label.split(":")[0] for label in labels] == [e["label"] for e in entries]


def test_a_focused_png_zooms_to_its_area(client):
    whole = client.get("/embed/map.png", query_string=PERIOD).data
    focused = client.get("/embed/map.png", query_string={**PERIOD, "code": "E09000030"})
    assert focused.status_code == 200
    assert Image.open(io.BytesIO(focused.data)).size == Image.open(io.BytesIO(whole)).size == (1200, 900)
    assert focused.data != whole
    assert client.get("/embed/map.png", query_string={**PERIOD, "code": "E09999999"}).status_code == 404


@pytest.mark.parametrize("params", [{"width": "50"}, {"width": "wide"}, {"height": "99999"}, {"level": "county"},
                                    {"crime": "nope"}, {"from": "2018-00"}, {"width": "-300"}])
def test_bad_png_parameters_are_400(client, params):
    response = client.get("/embed/map.png", query_string={**PERIOD, **params})
    assert response.status_code == 400
    assert response.mimetype == "text/html"


def test_the_png_is_drawn_on_the_agg_backend(client):
    import matplotlib

    assert client.get("/embed/map.png", query_string=PERIOD).status_code == 200
    assert matplotlib.get_backend().lower() == "agg"
