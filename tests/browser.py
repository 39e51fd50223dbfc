"""Headless Chromium with the network cut: does a rendered report draw its charts?"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from analysis.reports import render

CHROMIUM = shutil.which("chromium")


def _chromium(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    cmd = [CHROMIUM, *render.CHROMIUM_OFFLINE_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


_MEASURE = """<script>
(function () {
  var out = Array.prototype.map.call(document.querySelectorAll("svg.wb-chart"), function (svg) {
    var box = svg.getBoundingClientRect();
    return {width: box.width, height: box.height,
            marks: svg.querySelectorAll(".role-mark path, .role-mark line, .role-mark rect").length,
            title: (svg.querySelector("title") || {}).textContent || ""};
  });
  var pre = document.createElement("pre");
  pre.id = "wb-measure";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def charts_drawn(page: str, tmp_path: Path) -> list[dict]:
    """Open a copy of ``page`` plus a measuring script offline; one dict per chart SVG drawn."""
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    proc = _chromium("--window-size=1200,2000", "--dump-dom", probe.as_uri(), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'<pre id="wb-measure">(.*?)</pre>', proc.stdout, re.S)
    assert found, proc.stdout[-2000:]
    text = found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return json.loads(text)
