"""Configuration layering: defaults < instance crimemap.cfg < CRIMEMAP_* env < explicit overrides."""

import pytest

from crimemap.config import DEFAULTS, load_settings


def test_defaults_apply(instance):
    settings = load_settings(instance=instance, environ={})
    assert settings["JOIN_GRID_CELL_M"] == DEFAULTS["JOIN_GRID_CELL_M"]
    assert settings["INSTANCE"] == str(instance.resolve())


def test_layers_in_order(instance):
    (instance / "crimemap.cfg").write_text("PORT = 9000\nWORKERS = 3\nTHREADS = 7\n", encoding="utf-8")
    settings = load_settings(instance=instance, overrides={"THREADS": 9},
                             environ={"CRIMEMAP_WORKERS": "5", "CRIMEMAP_DEMO": "true"})
    assert settings["PORT"] == 9000        # instance file
    assert settings["WORKERS"] == 5        # environment beats the file
    assert settings["THREADS"] == 9        # overrides beat everything
    assert settings["DEMO"] is True


def test_instance_from_environment(tmp_path):
    settings = load_settings(environ={"CRIMEMAP_INSTANCE": str(tmp_path)})
    assert settings["INSTANCE"] == str(tmp_path.resolve())


def test_bad_environment_value_names_the_variable(instance):
    with pytest.raises(ValueError, match="CRIMEMAP_PORT"):
        load_settings(instance=instance, environ={"CRIMEMAP_PORT": "eighty"})


def test_cli_reports_bad_configuration(runner, monkeypatch):
    monkeypatch.setenv("CRIMEMAP_WORKERS", "many")
    result = runner("status")
    assert result.exit_code != 0
    assert "bad configuration" in result.output and "CRIMEMAP_WORKERS" in result.output
