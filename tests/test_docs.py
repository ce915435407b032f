"""The docs are tested: every config key, CLI command and /api route is documented in the README."""

import re

from crimemap.config import DEFAULTS
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_config_key_is_in_the_readme():
    missing = [key for key in DEFAULTS if f"`{key}`" not in README and not re.search(rf"`{key}`,|, `{key}`", README)]
    assert missing == []


def test_every_cli_command_is_in_the_readme():
    from crimemap.cli import main

    def walk(group, prefix):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from walk(command, prefix + [name])
            else:
                yield " ".join(prefix + [name])

    missing = [cmd for cmd in walk(main, ["crimemap"]) if f"`{cmd}" not in README]
    assert missing == []


def test_every_api_route_is_in_the_readme(tmp_path):
    from crimemap.web import create_app

    app = create_app({"INSTANCE": str(tmp_path), "TESTING": True})
    routes = {re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule) for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api")}
    assert routes, "no API routes registered"
    missing = [route for route in sorted(routes) if f"`GET {route}" not in README]
    assert missing == []


def test_readme_first_screen_has_the_two_commands_and_a_screenshot():
    first_screen = "\n".join(README.splitlines()[:20])
    assert "crimemap serve --demo" in first_screen
    assert "python tests/run_suites.py" in first_screen
    image = re.search(r"!\[[^\]]+\]\(([^)]+)\)", first_screen)
    assert image and (REPO / image.group(1)).is_file()


def test_ci_runs_exactly_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    command = re.search(r"^(pip install .+python tests/run_suites\.py)\s", README, re.M).group(1).strip()
    assert command in ci.splitlines()
    assert "CI=true" in ci
