"""bench/RESULTS.md: each benchmark owns one "## " section and rewrites only that one."""

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(title, section, results=RESULTS):
    """Replace the section headed ``title`` (e.g. "## Spatial join") with ``section``, or append it."""
    old = results.read_text(encoding="utf-8") if results.exists() else "# Benchmark results\n"
    start = old.find(title)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + section
    else:
        end = old.find("\n## ", start + 1)
        tail = "" if end < 0 else old[end + 1:]
        new = old[:start] + section + ("\n" + tail if tail else "")
    results.write_text(new, encoding="utf-8")
