"""Installing test tools from Debian's packages, and the system's headless Chromium through
Playwright.

``python tests/browser_setup.py`` installs every missing tool at once (Chromium, pdflatex,
xelatex with ctex); ``make test`` runs it beside the type check, so that the suite does not
spend its workers' time on apt-get. The fixtures call the same functions, so a bare
``pytest`` still installs what it needs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def apt_install(packages: list[str]) -> None:
    """``apt-get update`` then ``apt-get install -y`` (as root; a clear error otherwise)."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError(f"cannot install {packages}: needs root and apt-get (Debian)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        check=True,
        env=env,
        capture_output=True,
    )


def ensure_chromium() -> Path:
    """The system's ``chromium`` (Debian's package, installed if missing)."""
    found = shutil.which("chromium")
    if found is None and not CHROMIUM.exists():
        apt_install(["chromium"])
    return Path(found) if found else CHROMIUM


def ensure_pdflatex() -> str:
    """``pdflatex`` (texlive-latex-base and -recommended, installed if missing)."""
    if shutil.which("pdflatex") is None:
        apt_install(["texlive-latex-base", "texlive-latex-recommended"])
    return _found("pdflatex", "apt-get install texlive-latex-base")


def ensure_xelatex() -> str:
    """``xelatex`` with ctex (texlive-xetex and texlive-lang-chinese, 121 MB to fetch,
    installed if missing)."""
    kpsewhich = shutil.which("kpsewhich")
    ctex = kpsewhich and subprocess.run([kpsewhich, "ctexart.cls"], capture_output=True, text=True)
    if shutil.which("xelatex") is None or not ctex or not ctex.stdout.strip():
        apt_install(["texlive-xetex", "texlive-lang-chinese"])
    return _found("xelatex", "apt-get install texlive-xetex texlive-lang-chinese")


def _found(program: str, remedy: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise RuntimeError(f"{program} could not be installed ({remedy})")
    return found


@contextmanager
def chromium_page(*, offline: bool = True) -> Iterator[Page]:
    """A page of the system's headless Chromium driven by Playwright (no bundled browser).

    Parameters
    ----------
    offline : bool
        Block every host name lookup (a page opened from disk must not need the network).
    """
    from playwright.sync_api import sync_playwright

    flags = (
        [*CHROMIUM_FLAGS, "--host-resolver-rules=MAP * ~NOTFOUND"] if offline else CHROMIUM_FLAGS
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(ensure_chromium()), args=flags)
        try:
            yield browser.new_page()
        finally:
            browser.close()


if __name__ == "__main__":
    import sys

    for ensure in (ensure_chromium, ensure_pdflatex, ensure_xelatex):
        try:
            print(f"{ensure.__name__.removeprefix('ensure_')}: {ensure()}")
        except (RuntimeError, subprocess.CalledProcessError) as error:  # the tests will say so
            print(
                f"{ensure.__name__.removeprefix('ensure_')}: not installed ({error})",
                file=sys.stderr,
            )
