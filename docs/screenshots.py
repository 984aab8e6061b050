"""Build the docs and screenshot the front page and the API page with headless Chromium.

Run: ``python docs/screenshots.py [CHROMIUM]`` (default ``chromium``: Debian's package). The
pictures land in ``docs/_static/screenshots/``, where a reviewer (or you) can look at them.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
PAGES = {"front.png": "index.html", "api.png": "reference/api.html"}


def main(chromium: str = "chromium") -> None:
    out = DOCS / "_static" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as build, tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(DOCS), build],
            check=True,
        )
        for picture, page in PAGES.items():
            subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    f"--user-data-dir={profile}",
                    "--hide-scrollbars",
                    "--window-size=1280,1000",
                    f"--screenshot={out / picture}",
                    (Path(build) / page).as_uri(),
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
            print(out / picture)


if __name__ == "__main__":
    main(*sys.argv[1:])
