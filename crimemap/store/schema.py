"""The embedded store's tables (SQLite DDL); docs/store.md explains them.

A PostGIS backend keeps the same tables and columns, so the portable SQL of
:mod:`crimemap.store` reads both. ``crimes.id`` is SQLite's rowid under its
own name (same values, same order), so code orders and identifies crimes by
``id`` on both backends. The stop and search and Taser tables (written by
:mod:`crimemap.store.stops`) are created up front with the rest, so their
readers only check :meth:`crimemap.store.Store.has_tables` before any load.
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS layers(
    id INTEGER PRIMARY KEY, level TEXT NOT NULL, vintage TEXT NOT NULL,
    layout TEXT, source TEXT, crs_note TEXT, loaded_at TEXT, n_areas INTEGER,
    repairs TEXT, warnings TEXT, UNIQUE(level, vintage));
CREATE TABLE IF NOT EXISTS areas(
    layer_id INTEGER NOT NULL, code TEXT NOT NULL, name TEXT, borough_code TEXT,
    borough_name TEXT, force TEXT, area_m2 REAL, geom BLOB,
    PRIMARY KEY(layer_id, code)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches(
    id INTEGER PRIMARY KEY, feed TEXT NOT NULL, kind TEXT NOT NULL, format TEXT,
    month TEXT NOT NULL, source TEXT, loaded_at TEXT, rows_read INTEGER,
    no_location INTEGER, rejected INTEGER, coverage TEXT, UNIQUE(feed, month));
CREATE TABLE IF NOT EXISTS locations(
    id INTEGER PRIMARY KEY, lon_e6 INTEGER NOT NULL, lat_e6 INTEGER NOT NULL,
    x REAL, y REAL, UNIQUE(lon_e6, lat_e6));
CREATE TABLE IF NOT EXISTS location_areas(
    layer_id INTEGER NOT NULL, location_id INTEGER NOT NULL, code TEXT,
    on_edge INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(location_id, layer_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS location_areas_layer ON location_areas(layer_id, code);
CREATE TABLE IF NOT EXISTS crimes(
    id INTEGER PRIMARY KEY, batch_id INTEGER NOT NULL, month TEXT NOT NULL, force TEXT, category TEXT,
    crime_id TEXT, api_id INTEGER, location_id INTEGER, street TEXT,
    street_id INTEGER, lsoa_code TEXT, lsoa_name TEXT, outcome TEXT,
    outcome_month TEXT, context TEXT, location_type TEXT, location_subtype TEXT);
CREATE INDEX IF NOT EXISTS crimes_batch ON crimes(batch_id);
CREATE INDEX IF NOT EXISTS crimes_month_location ON crimes(month, location_id);
CREATE INDEX IF NOT EXISTS crimes_location ON crimes(location_id);
CREATE TABLE IF NOT EXISTS point_counts(
    layer_id INTEGER NOT NULL, code TEXT NOT NULL, month TEXT NOT NULL,
    category TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY(layer_id, month, code, category)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS area_counts(
    batch_id INTEGER NOT NULL, level TEXT NOT NULL, code TEXT, name TEXT,
    borough_code TEXT, borough_name TEXT, major TEXT, minor TEXT,
    month TEXT NOT NULL, n INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS area_counts_batch ON area_counts(batch_id);
CREATE INDEX IF NOT EXISTS area_counts_level ON area_counts(level, month);
CREATE TABLE IF NOT EXISTS lsoa_population(
    lsoa_code TEXT NOT NULL, year TEXT NOT NULL, persons INTEGER NOT NULL,
    lad_code TEXT, source TEXT, PRIMARY KEY(lsoa_code, year)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS direct_population(
    code TEXT NOT NULL, year TEXT NOT NULL, persons INTEGER NOT NULL, source TEXT,
    PRIMARY KEY(code, year)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS area_population(
    layer_id INTEGER NOT NULL, code TEXT NOT NULL, year TEXT NOT NULL,
    persons INTEGER NOT NULL, method TEXT,
    PRIMARY KEY(layer_id, code, year)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ingests(
    id INTEGER PRIMARY KEY, at TEXT, kind TEXT, sources TEXT, report TEXT);
CREATE TABLE IF NOT EXISTS stop_batches(
    id INTEGER PRIMARY KEY, feed TEXT NOT NULL, month TEXT NOT NULL, format TEXT,
    source TEXT, loaded_at TEXT, rows_read INTEGER, no_location INTEGER,
    rejected INTEGER, fields TEXT, UNIQUE(feed, month));
CREATE TABLE IF NOT EXISTS stops(
    batch_id INTEGER NOT NULL, month TEXT NOT NULL, datetime TEXT, type TEXT,
    location_id INTEGER, street TEXT, gender TEXT, age_range TEXT,
    self_defined_ethnicity TEXT, officer_defined_ethnicity TEXT, legislation TEXT,
    object_of_search TEXT, outcome TEXT, outcome_linked INTEGER,
    removal_of_clothing INTEGER, operation INTEGER, operation_name TEXT);
CREATE INDEX IF NOT EXISTS stops_batch ON stops(batch_id);
CREATE INDEX IF NOT EXISTS stops_month_location ON stops(month, location_id);
CREATE TABLE IF NOT EXISTS stop_census(
    code TEXT NOT NULL, name TEXT, category TEXT NOT NULL, persons INTEGER NOT NULL,
    source TEXT, PRIMARY KEY(code, category)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS taser_force_year(
    force TEXT NOT NULL, year_end TEXT NOT NULL, measure TEXT NOT NULL, n INTEGER,
    source TEXT, PRIMARY KEY(force, year_end, measure)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS taser_deployments(
    incident TEXT NOT NULL, subject TEXT NOT NULL, officer TEXT NOT NULL,
    date TEXT NOT NULL, quarter TEXT NOT NULL, borough_code TEXT, borough TEXT,
    level TEXT NOT NULL, source TEXT);
CREATE INDEX IF NOT EXISTS taser_deployments_quarter ON taser_deployments(quarter);
"""
