"""Open the HTML report in a real headless Chromium: it renders, shows its images, logs no
console errors, and needs no network.

Chromium comes from Debian's packages (``apt-get install -y chromium``, as ``.ci/run``
does); the test skips with the reason where no browser is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from test_plots import make_proxy_datatree

from bayesproxy.report import build_report

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Written into the page copy only: the report itself carries no script.
_PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = `images=${imgs.length} loaded=${ok}`;
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    override = os.environ.get("BAYESPROXY_CHROMIUM")
    for name in ((override,) if override else ()) + _CANDIDATES:
        path = shutil.which(name) if name else None
        if path:
            return path
    pytest.skip(
        "no headless Chromium found (install it with `apt-get install -y chromium`, "
        "or point BAYESPROXY_CHROMIUM at a Chrome binary)"
    )


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _console_errors(log: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if "ERROR:CONSOLE" in line or "Uncaught" in line or "net::ERR_" in line
    ]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return build_report(
        make_proxy_datatree(), path=tmp_path_factory.mktemp("browser") / "report.html"
    )


def test_report_renders_in_chromium(report, tmp_path):
    browser = _chromium()
    shot = tmp_path / "report.png"
    result = _run(
        browser,
        tmp_path / "profile",
        "--window-size=1280,3000",
        f"--screenshot={shot}",
        report.as_uri(),
    )
    assert shot.is_file(), f"no screenshot; chromium said:\n{result.stderr[-2000:]}"
    assert not _console_errors(result.stderr), _console_errors(result.stderr)

    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.shape[0] == 3000 and pixels.shape[1] == 1280
    # a rendered page, not a blank one: dark text and gray figure pixels, many shades
    gray = pixels.mean(axis=2)
    assert (gray < 0.3).mean() > 0.005
    assert len(np.unique(np.round(gray, 2))) > 30


def test_report_images_load_in_chromium(report, tmp_path):
    browser = _chromium()
    probe = tmp_path / "probe.html"
    page = report.read_text(encoding="utf-8")
    n_images = len(re.findall(r"<img ", page))
    assert n_images == 6
    probe.write_text(page.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    result = _run(browser, tmp_path / "profile", "--dump-dom", probe.as_uri())
    found = re.search(r"images=(\d+) loaded=(\d+)", result.stdout)
    assert found, f"probe did not run; chromium said:\n{result.stderr[-2000:]}"
    assert int(found.group(1)) == n_images
    assert int(found.group(2)) == n_images, "some embedded images failed to decode"
    assert not _console_errors(result.stderr), _console_errors(result.stderr)
