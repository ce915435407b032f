"""A choropleth as a PNG for print, drawn without a browser (matplotlib's Agg canvas).

The picture carries what the embeddable page carries: the title, the period
and data-as-of line, the legend (the same entries and colours as the HTML
map, passed in by the caller) and the attribution lines. It uses a
:class:`matplotlib.figure.Figure` with its own Agg canvas rather than
``pyplot``, so no global state or GUI backend is involved and server threads
can draw at the same time.

A pure core module: no Flask.
"""

import io
import math
import textwrap

import matplotlib

# A server has no display: pyplot, which geopandas' plotting imports, must never pick a GUI backend.
matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402 - after choosing the backend
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

DPI = 100
# Where the map sits in the figure (fractions of its width and height): the
# title above, the legend to the right, the attribution below.
MAP_BOX = (0.02, 0.20, 0.60, 0.66)
LEGEND_X = 0.64
HATCH = "////"
HATCH_BG = "#efefef"
EDGE = "#4d4d4d"


def area_colours(figures, colours):
    """The fill colour of each area, by the same rule as the HTML map.

    Parameters
    ----------
    figures : pandas.DataFrame
        ``band``, ``no_data`` and ``separate_force`` per area.
    colours : dict
        ``bands`` (band -> colour), ``no_data`` and ``separate_force``.

    Returns
    -------
    list of str
        A colour per row, or None for "no data" (drawn hatched).
    """
    out = []
    for band, no_data, separate in zip(figures["band"], figures["no_data"], figures["separate_force"]):
        if separate:
            out.append(colours["separate_force"])
        elif no_data or band is None:
            out.append(None)
        else:
            out.append(colours["bands"][band])
    return out


def draw(figures, legend, colours, title, subtitle, attribution, highlight=None, size=(1200, 900)):
    """Draw a choropleth on a new matplotlib figure.

    Parameters
    ----------
    figures : geopandas.GeoDataFrame
        Areas in EPSG:4326 with ``code``, ``band``, ``no_data`` and
        ``separate_force``.
    legend : list of dict
        ``key, colour, label, detail`` per entry, as the HTML legend.
    colours : dict
        See :func:`area_colours`.
    title, subtitle : str
    attribution : list of str
        Printed under the map, one line each.
    highlight : str, optional
        The code of an area to outline and zoom to.
    size : (int, int)
        Width and height in pixels.

    Returns
    -------
    (matplotlib.figure.Figure, matplotlib.axes.Axes)
        The figure (on an Agg canvas) and the map's axes.
    """
    width, height = size
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    scale = min(width / 1200, height / 900)
    ax = fig.add_axes(MAP_BOX)
    ax.set_axis_off()
    fills = area_colours(figures, colours)
    filled = [c is not None for c in fills]
    shown = figures[filled]
    if len(shown):
        shown.plot(ax=ax, color=[c for c in fills if c is not None], edgecolor=EDGE, linewidth=0.4 * scale)
    missing = figures[[not f for f in filled]]
    if len(missing):
        missing.plot(ax=ax, facecolor=HATCH_BG, hatch=HATCH, edgecolor="#8c8c8c", linewidth=0.4 * scale)
    separate = figures[figures["separate_force"].to_numpy(dtype=bool)]
    if len(separate):
        separate.plot(ax=ax, facecolor="none", edgecolor="#3f007d", linewidth=1.2 * scale, linestyle="--")
    minx, miny, maxx, maxy = figures.total_bounds
    if highlight is not None:
        target = figures[figures["code"] == highlight]
        target.plot(ax=ax, facecolor="none", edgecolor="#000000", linewidth=2.5 * scale)
        tminx, tminy, tmaxx, tmaxy = target.total_bounds
        pad_x, pad_y = (tmaxx - tminx) * 0.6 + 0.002, (tmaxy - tminy) * 0.6 + 0.002
        minx, miny, maxx, maxy = tminx - pad_x, tminy - pad_y, tmaxx + pad_x, tmaxy + pad_y
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    # Degrees of longitude are shorter than degrees of latitude by cos(latitude).
    ax.set_aspect(1 / math.cos(math.radians((miny + maxy) / 2)), adjustable="box", anchor="C")

    fig.text(0.02, 0.965, title, fontsize=20 * scale, fontweight="bold", va="top")
    fig.text(0.02, 0.915, "\n".join(textwrap.wrap(subtitle, 130)), fontsize=10.5 * scale, va="top",
             color="#333333")
    handles = []
    for entry in legend:
        text = "\n".join(textwrap.wrap(f"{entry['label']}: {entry['detail']}", 40))
        if entry["key"] == "no-data":
            handles.append(Patch(facecolor=HATCH_BG, hatch=HATCH, edgecolor="#8c8c8c", label=text))
        elif entry["key"] == "separate-force":
            handles.append(Patch(facecolor=entry["colour"], edgecolor="#3f007d", linestyle="--", label=text))
        else:
            handles.append(Patch(facecolor=entry["colour"], edgecolor=EDGE, label=text))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(LEGEND_X, MAP_BOX[1] + MAP_BOX[3]),
               frameon=False, fontsize=9.5 * scale, title="Crimes per 1,000 residents\nagainst the London average",
               title_fontsize=10.5 * scale, alignment="left", labelspacing=0.9, handlelength=1.6,
               handleheight=1.4)
    lines = [line for text in attribution for line in textwrap.wrap(text, 170)]
    fig.text(0.02, 0.015, "\n".join(lines), fontsize=7.5 * scale, va="bottom", color="#333333", linespacing=1.3)
    return fig, ax


def render_png(figures, legend, colours, title, subtitle, attribution, highlight=None, size=(1200, 900)):
    """The choropleth of :func:`draw` as PNG bytes.

    Returns
    -------
    bytes
        A PNG of ``size`` pixels.
    """
    fig, _ax = draw(figures, legend, colours, title, subtitle, attribution, highlight=highlight, size=size)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()
