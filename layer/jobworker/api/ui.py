"""The dashboard's static files, served at ``/ui/`` by the API function (and so by ``jobworker
dev``). The page is a client of the public API only; this module just hands out its files.

The files live in ``ui/`` beside this module; ``ui/vendor/`` holds Leaflet, unpacked from the
npm registry by ``make install`` (git-ignored). Without it the page draws its maps in plain SVG.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

UI_DIR = Path(__file__).with_name("ui")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@cache
def files() -> dict[str, Path]:
    """Every servable file by its path under /ui/ (``app.js``, ``vendor/leaflet.js``)."""
    return {
        path.relative_to(UI_DIR).as_posix(): path
        for path in UI_DIR.rglob("*")
        if path.is_file() and path.suffix in CONTENT_TYPES
    }


def static_file(name: str) -> tuple[str, str] | None:
    """(content, content type) of a file of the page, or None for a name that is not one.
    Names come from the directory listing, so nothing outside ``ui/`` can be asked for."""
    path = files().get(name)
    if path is None:
        return None
    text = path.read_text(encoding="utf-8")
    if name == "index.html":
        text = with_leaflet(text, "vendor/leaflet.js" in files())
    return text, CONTENT_TYPES[path.suffix]


def with_leaflet(page: str, present: bool) -> str:
    """Link Leaflet where the package has it; otherwise the page asks for no missing file
    (and map.js draws plain SVG)."""
    css = '<link rel="stylesheet" href="vendor/leaflet.css">' if present else ""
    js = '<script src="vendor/leaflet.js"></script>' if present else ""
    return page.replace("<!-- leaflet:css -->", css).replace("<!-- leaflet:js -->", js)


def page_config(tile_url: str | None) -> str:
    """What the page needs to know of the deployment, as JSON (``/ui/config.json``)."""
    return json.dumps({"tile_url": tile_url or None})
