"""Stop and search, and Taser use: readers, groupings and figures.

A pure core package (no Flask):

- :mod:`crimemap.stops.io`: police.uk stop and search CSVs (all 15 columns or
  the reduced ones) and ``stops-street`` / ``stops-force`` JSON;
- :mod:`crimemap.stops.groups`: types, objects of search and outcomes grouped
  as Safer Neighbourhood Board packs group them;
- :mod:`crimemap.stops.ethnicity`: the Census 2011 (18+1) to stop and search
  (4+1) mapping and the Census reader;
- :mod:`crimemap.stops.ingest`: loading into the store, one transaction each;
- :mod:`crimemap.stops.figures`: the borough map and a borough's summary,
  with disproportionality ratios;
- :mod:`crimemap.stops.taser`: Taser use, deployments against subjects.

docs/stops.md and docs/taser.md say why things are done the way they are.
"""
