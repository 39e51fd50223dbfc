"""A throwaway JupyterLab driven by Debian's Chromium through Playwright (no browser download).

The browser tests of ``tests/test_lab.py`` use it; a test can also use it on its own::

    root = lab_root(tmp_path / "lab")                 # a copy of notebooks/, data/ linked
    with LabServer(root) as lab, chromium() as browser:
        nb = Notebook.open(browser, lab, "notebooks/explore.ipynb", shots=tmp_path)
        nb.run_all()
        ...

* :class:`LabServer` starts ``jupyter lab`` on a free port with a random token, its own runtime,
  data, settings and workspace folders (nothing of the user's is read or written), waits until
  it answers and stops it, with its kernels, even when the test failed.
* :func:`chromium` launches ``/usr/bin/chromium`` headless; every request that does not go to
  the lab server is refused (the network is cut as for the offline report check), and the
  refused URLs are kept on the browser (``browser.refused``).
* :class:`Notebook` is one notebook open in JupyterLab: run all cells through the Run menu, wait
  until the kernel is idle, find outputs and widgets, change them, time how long the output
  took to follow, take screenshots.

Never run ``playwright install``: the Playwright driver comes with the pip wheel and the browser
is the system Chromium (``.ci/run`` installs Debian's package).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
#: Folder of the screenshots kept for the closing note of issue 14 (item 8).
SHOTS = Path("/tmp/lab-shots")

#: Longest waits, in seconds: the lab to answer, a notebook to run all its cells.
START_TIMEOUT = 90.0
RUN_TIMEOUT = 180.0


def have_browser() -> str:
    """Empty when the lab tests can run; otherwise the reason (what to install)."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/run does)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]' (never 'playwright install')"
    return ""


def lab_root(dest: Path, *, notebooks: Sequence[str] = (), data: Path = ROOT / "data") -> Path:
    """A lab root at ``dest``: copies of the repo's notebooks in ``notebooks/``, ``data`` linked.

    The notebooks' ``data`` parameter is ``../data/sample``, so ``dest/data`` is a symlink to
    the repo's data (read only by the notebooks); the copies keep the repo's notebooks clean.
    ``notebooks`` names the ones to copy (all when empty).
    """
    (dest / "notebooks").mkdir(parents=True, exist_ok=True)
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if not notebooks or nb.name in notebooks:
            shutil.copy2(nb, dest / "notebooks" / nb.name)
    link = dest / "data"
    if not link.exists():
        link.symlink_to(data, target_is_directory=True)
    return dest


def _started(pid: int) -> str | None:
    """Start time of a process (field 22 of /proc/<pid>/stat); None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] == "Z" else fields[19]


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of the child processes of ``pid`` (kernels of a server)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append((int(stat.parent.name), fields[19]))
    return found


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group led by ``pid`` (a process this harness started)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# -- the server ---------------------------------------------------------------------------------


class LabServer:
    """``jupyter lab`` serving ``root`` on 127.0.0.1 with a random token, until :meth:`stop`."""

    def __init__(self, root: Path, *, state: Path | None = None):
        self.root = Path(root)
        self.state = Path(state) if state else self.root.parent / f"{self.root.name}-jupyter"
        self.port = 0  # the system picks a free one; read back from the server's info file
        self.token = secrets.token_hex(16)
        self.url = ""
        self.log = self.state / "lab.log"
        self.proc: subprocess.Popen | None = None
        self.started = 0.0  # seconds the server took to answer
        self.leftover: list[int] = []  # processes of the server still alive after stop()

    def start(self) -> Self:
        for sub in ("runtime", "data", "config", "settings", "workspaces", "ipython"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        env = {**os.environ,
               # the lab's own folders: no user state read or written (trust database included)
               "JUPYTER_RUNTIME_DIR": str(self.state / "runtime"),
               "JUPYTER_DATA_DIR": str(self.state / "data"),
               "JUPYTER_CONFIG_DIR": str(self.state / "config"),
               "JUPYTERLAB_SETTINGS_DIR": str(self.state / "settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(self.state / "workspaces"),
               "IPYTHONDIR": str(self.state / "ipython"),
               "JUPYTER_PLATFORM_DIRS": "1"}
        env.pop("PYTEST_XDIST_WORKER", None)
        settings = {"notebook-extension/tracker": {"windowingMode": "none"},  # every cell in the DOM
                    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}
        for name, values in settings.items():
            path = self.state / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        # the server's settings: no language server, terminals, news or update checks
        (self.state / "config" / "jupyter_server_config.json").write_text(json.dumps({
            "ServerApp": {"jpserver_extensions": {"jupyter_lsp": False}, "terminals_enabled": False},
            "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
        }))
        cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser",
               "--ip=127.0.0.1", "--port=0", "--port-retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               f"--LabServerApp.workspaces_dir={self.state / 'workspaces'}",
               f"--LabServerApp.user_settings_dir={self.state / 'settings'}",
               *(["--allow-root"] if os.geteuid() == 0 else [])]
        t = time.perf_counter()
        with open(self.log, "wb") as log:
            # a session of its own: stop() can end the server and its kernels by process group
            self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode} before answering:\n{self.tail()}")
            try:
                if not self.port:
                    info = next((self.state / "runtime").glob(f"jpserver-{self.proc.pid}.json"), None)
                    self.port = json.loads(info.read_text())["port"] if info else 0
                    self.url = f"http://127.0.0.1:{self.port}" if self.port else ""
                if self.port:
                    self.api("status")
                    break
                raise ConnectionError("no server info file yet")
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError, KeyError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"jupyter lab did not answer in {START_TIMEOUT:.0f} s:\n{self.tail()}") from None
                time.sleep(0.2)
        self.started = time.perf_counter() - t
        return self

    def api(self, path: str, method: str = "GET") -> Any:
        """JSON answer of the server's REST API (``/api/<path>``), with the token."""
        req = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def kernels(self) -> list[dict]:
        return self.api("kernels")

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Shut the server and its kernels down (REST shutdown, then SIGTERM, then SIGKILL).

        Kernels run in sessions of their own: they are found as the server's child processes
        before it stops, and ended by their process group if the shutdown left them running.
        """
        proc, self.proc = self.proc, None
        if proc is None:
            return
        children = _children(proc.pid)
        if proc.poll() is None:
            try:
                self.api("shutdown", method="POST")  # shuts every kernel down, then the server
                proc.wait(timeout=15)
            except (urllib.error.URLError, ConnectionError, TimeoutError, subprocess.TimeoutExpired, OSError):
                pass
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if proc.poll() is not None:
                break
            _signal_group(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass
        for pid, started in children:
            if _started(pid) == started:  # still the process we saw (pids are reused)
                _signal_group(pid, signal.SIGKILL)
        self.leftover = [pid for pid, started in children if _started(pid) == started]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the browser ------------------------------------------------------------------------------


class Chromium:
    """A headless Debian Chromium (Playwright) whose pages reach only the allowed URL prefixes.

    Other requests are refused as if offline and listed in ``refused``.
    """

    def __init__(self, browser: Any, allow: Sequence[str]):
        self.browser = browser
        self.allow = tuple(allow) + ("data:", "blob:", "about:")
        self.refused: list[str] = []

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(self.allow):
            route.continue_()
        else:
            self.refused.append(url)
            route.abort("internetdisconnected")

    def new_page(self, *, width: int = 1400, height: int = 1800) -> Any:
        """A page in a fresh browser context (own cookies and storage)."""
        ctx = self.browser.new_context(viewport={"width": width, "height": height})
        ctx.route("**/*", self._route)
        ctx.set_default_timeout(30_000)
        return ctx.new_page()


@contextmanager
def chromium(*, allow: Sequence[str] = ("http://127.0.0.1:",)) -> Iterator[Chromium]:
    """Debian's Chromium, headless, through Playwright; requests not starting with ``allow`` are refused."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--disable-gpu", "--no-first-run", "--disable-extensions",
                                          "--disable-background-networking", "--disable-component-update",
                                          "--disable-sync", "--disable-default-apps", "--mute-audio"])
        try:
            yield Chromium(browser, allow)
        finally:
            browser.close()


# -- a notebook in JupyterLab -----------------------------------------------------------------

#: State of the open notebook: kernel status and the execution prompts of its code cells.
_STATE_JS = """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return null;
  const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const prompts = Array.from(panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt'))
                      .map(p => p.textContent.trim());
  const kernel = document.querySelector('#jp-main-statusbar span[title^="Change kernel"]');
  return {status: ind ? ind.dataset.status : null, prompts: prompts,
          kernel: kernel ? kernel.textContent.trim() : ''};
}"""

_ERRORS_JS = """() => Array.from(document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
    .map(e => e.innerText).filter(t => /Error|Traceback/.test(t))"""


def count(prompt: str) -> int | None:
    """Execution count of a prompt text like ``[12]:``; None for ``[ ]:`` and ``[*]:``."""
    inner = prompt.strip().removesuffix(":").strip("[] ")
    return int(inner) if inner.isdigit() else None


_pages = itertools.count(1)


class Notebook:
    """One notebook open in JupyterLab (in a page of its own)."""

    def __init__(self, page: Any, lab: LabServer, path: str, shots: Path | None = None):
        self.page = page
        self.lab = lab
        self.path = path
        self.shots = Path(shots) if shots else None
        self.run_seconds: float | None = None

    @classmethod
    def open(cls, browser: Chromium, lab: LabServer, path: str, *, shots: Path | None = None) -> Notebook:
        """Open ``path`` (relative to the lab root) and wait until its kernel is idle."""
        page = browser.new_page()
        nb = cls(page, lab, path, shots)
        # a workspace of its own, reset: no tab of another page comes back, each page runs its notebook
        workspace = f"t{next(_pages)}"
        page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{path}?reset&token={lab.token}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=START_TIMEOUT * 1000)
        nb.wait_idle(START_TIMEOUT)
        return nb

    # state

    def state(self) -> dict:
        return self.page.evaluate(_STATE_JS) or {"status": None, "prompts": [], "kernel": ""}

    def wait_idle(self, timeout: float = RUN_TIMEOUT, *, after: int | None = None) -> dict:
        """Wait until the kernel is idle (and, with ``after``, every code cell ran with a count above it).

        Raises AssertionError naming the failing cell's error when a run stopped at an error.
        """
        deadline = time.monotonic() + timeout
        stable = 0
        while True:
            st = self.state()
            counts = [count(p) for p in st["prompts"]]
            idle = (st["status"] == "idle" and st["kernel"].endswith("| Idle")
                    and "[*]" not in "".join(st["prompts"]))
            done = idle and (after is None or all(c is not None and c > after for c in counts))
            stable = stable + 1 if idle else 0
            if done and stable >= 3:  # idle on three polls in a row (the next request may follow)
                return st
            if stable >= 10 and after is not None:  # idle for a second yet cells did not run
                errors = self.page.evaluate(_ERRORS_JS)
                if errors:
                    raise AssertionError(f"{self.path}: a cell failed: {errors[0][-1500:]}")
                if stable >= 150:
                    raise AssertionError(f"{self.path}: the kernel is idle for 15 s but the cells did not run "
                                         f"(prompts {st['prompts']})")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.path}: kernel not idle after {timeout:.0f} s "
                                     f"(status {st['status']}, prompts {st['prompts']})")
            time.sleep(0.1)

    # commands

    def menu(self, menu: str, command: str) -> None:
        """Click ``menu`` in the menu bar, then the item of ``command`` (a JupyterLab command id)."""
        self.page.locator("#jp-menu-panel .lm-MenuBar-item", has_text=menu).first.click()
        self.page.locator(f'.lm-Menu-item[data-command="{command}"]').first.click()

    def run_all(self, timeout: float = RUN_TIMEOUT) -> float:
        """Run > Run All Cells, then wait until every code cell ran; seconds it took."""
        before = [c for c in (count(p) for p in self.state()["prompts"]) if c is not None]
        t = time.perf_counter()
        self.menu("Run", "runmenu:run-all")
        self.wait_idle(timeout, after=max(before, default=0))
        self.run_seconds = time.perf_counter() - t
        return self.run_seconds

    def restart_and_run_all(self, timeout: float = RUN_TIMEOUT) -> float:
        """Kernel > Restart Kernel and Run All Cells (confirming the dialog)."""
        t = time.perf_counter()
        self.menu("Kernel", "runmenu:restart-and-run-all")
        self.page.locator(".jp-Dialog .jp-mod-accept").click()
        # the counts start again at 1, as an executed notebook's do: first see the cells queued
        deadline = time.monotonic() + START_TIMEOUT
        while "[*]" not in "".join(self.state()["prompts"]):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.path}: Restart Kernel and Run All Cells queued no cell")
            time.sleep(0.05)
        self.wait_idle(timeout, after=0)
        self.run_seconds = time.perf_counter() - t
        return self.run_seconds

    def trusted(self) -> bool:
        """Whether JupyterLab trusts the notebook (its status bar shield)."""
        return self.page.evaluate("""() => {
          const el = document.querySelector('.jp-StatusItem-trust');
          return el ? !/not trusted/i.test(el.getAttribute('title') || el.textContent || '') : null;
        }""")

    # outputs

    @property
    def notebook(self) -> Any:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")

    def outputs(self, cell: int) -> Any:
        """The output area of code cell ``cell`` (0-based among the code cells)."""
        return self.notebook.locator(".jp-CodeCell").nth(cell).locator(".jp-Cell-outputArea")

    def shot(self, name: str, *, keep: bool = False, target: Any = None) -> Path | None:
        """Screenshot the page (or ``target``) to the test's folder, and to :data:`SHOTS` when ``keep``."""
        folders = [f for f in (self.shots, SHOTS if keep else None) if f is not None]
        if not folders:
            return None
        first = None
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{name}.png"
            (target or self.page).screenshot(path=str(path))
            first = first or path
        return first

    def close(self) -> None:
        """Close the page and shut the notebook's kernel down (its session on the server)."""
        self.page.context.close()
        for session in self.lab.api("sessions"):
            if session.get("path") == self.path:
                self.lab.api(f"sessions/{session['id']}", method="DELETE")


# -- widgets ----------------------------------------------------------------------------------


def choose(control: Any, *labels: str) -> None:
    """Pick ``labels`` in an ipywidgets Dropdown / Select / SelectMultiple (its ``<select>``)."""
    select = control.locator("select").first
    select.select_option(label=list(labels) if len(labels) > 1 or select.get_attribute("multiple") is not None
                         else labels[0])


def set_slider(control: Any, value: str) -> None:
    """Type ``value`` into an ipywidgets slider's readout and press Enter (sets the value once)."""
    readout = control.locator(".widget-readout").first
    readout.click()
    readout.press("Control+a")
    readout.type(value)
    readout.press("Enter")


def timed(change: Callable[[], None], done: Callable[[], bool], *, timeout: float = 30.0) -> float:
    """Seconds from ``change()`` until ``done()`` is true (polled every 20 ms)."""
    t = time.perf_counter()
    change()
    deadline = t + timeout
    while not done():
        if time.perf_counter() > deadline:
            raise AssertionError(f"the output did not follow the change in {timeout:.0f} s")
        time.sleep(0.02)
    return time.perf_counter() - t


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """Count, p50, p95 (nearest rank) and max of latencies in seconds."""
    xs = sorted(seconds)
    if not xs:
        return {"n": 0}
    rank = max(0, min(len(xs) - 1, -(-95 * len(xs) // 100) - 1))
    return {"n": len(xs), "p50": statistics.median(xs), "p95": xs[rank], "max": xs[-1]}


class Latencies:
    """Widget latency of one notebook: each change timed until its output shows what is expected.

    ``change(name, action, read, expect)`` runs ``action()``, polls ``read()`` (a snapshot of the
    output) until ``expect(snapshot)`` holds, then waits until the kernel is idle again (timed
    apart) so that the next change starts from a settled widget; it returns the settled snapshot.
    """

    def __init__(self, nb: Notebook, *, timeout: float = 60.0):
        self.nb = nb
        self.timeout = timeout
        self.samples: list[tuple[str, float, float]] = []  # (change, to output, to kernel idle)

    def change(self, name: str, action: Callable[[], None], read: Callable[[], Any],
               expect: Callable[[Any], bool]) -> Any:
        seen: dict[str, Any] = {}

        def done() -> bool:
            seen["state"] = read()
            return bool(expect(seen["state"]))

        try:
            shown = timed(action, done, timeout=self.timeout)
        except AssertionError:
            raise AssertionError(f"{name}: the output did not show what was expected in {self.timeout:.0f} s; "
                                 f"it shows {seen.get('state')}") from None
        t = time.perf_counter()
        self.nb.wait_idle(self.timeout)
        self.samples.append((name, shown, shown + time.perf_counter() - t))
        return read()

    def stats(self) -> dict[str, Any]:
        return {"to_output": percentiles([s for _, s, _ in self.samples]),
                "to_idle": percentiles([i for _, _, i in self.samples]),
                "changes": [{"change": n, "to_output_s": round(s, 3), "to_idle_s": round(i, 3)}
                            for n, s, i in self.samples]}

    def report(self, widget: str) -> dict[str, Any]:
        """Print p50 / p95 and keep them in ``SHOTS/latency.json`` (for the issue's closing note)."""
        stats = self.stats()
        out, idle = stats["to_output"], stats["to_idle"]
        print(f"\n{widget} widget latency over {out['n']} changes: p50 {out['p50']:.3f} s, p95 {out['p95']:.3f} s "
              f"(kernel idle again: p50 {idle['p50']:.3f} s, p95 {idle['p95']:.3f} s)")
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / "latency.json"
        try:
            notes = json.loads(path.read_text())
        except (OSError, ValueError):
            notes = {}
        notes[widget] = stats
        path.write_text(json.dumps(notes, indent=2))
        return stats


# -- charts -----------------------------------------------------------------------------------

#: Every chart an output area shows, as the reader sees it: one entry per chart element (an
#: interactive Vega embed, an image, an inline SVG chart), with its size and whether it is visible.
_CHARTS_JS = """(root) => {
  const found = [];
  const outputs = root.querySelectorAll('.jp-OutputArea-output');
  outputs.forEach((out, i) => {
    const els = out.querySelectorAll('.vega-embed, img, svg');
    els.forEach(el => {
      if (el.tagName.toLowerCase() === 'svg' && el.closest('.vega-embed, button, .jp-OutputPrompt, .jp-Toolbar')) return;
      if (el.tagName.toLowerCase() === 'svg' && el.parentElement && el.parentElement.closest('svg')) return;
      if (el.tagName.toLowerCase() === 'img' && el.closest('.vega-embed')) return;
      const box = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      const kind = el.classList.contains('vega-embed') ? 'vega-embed'
                 : el.tagName.toLowerCase() === 'img' ? 'img:' + (el.src.split(';')[0].split(',')[0].slice(0, 30))
                 : 'svg';
      const canvas = el.querySelector ? el.querySelector('canvas, svg.marks') : null;
      found.push({output: i, kind: kind, width: box.width, height: box.height,
                  loaded: el.tagName.toLowerCase() !== 'img' || (el.complete && el.naturalWidth > 0),
                  visible: style.visibility !== 'hidden' && style.display !== 'none' && box.width > 40 && box.height > 40,
                  drawn: kind !== 'vega-embed' || !!canvas,
                  mime: out.dataset.mimeType || '',
                  title: (el.getAttribute('aria-label') || el.getAttribute('alt') ||
                          ((el.querySelector && el.querySelector('title')) || {}).textContent || '').slice(0, 120)});
    });
  });
  return found;
}"""


def charts_shown(nb: Notebook) -> list[dict]:
    """The charts the open notebook shows in its outputs (see ``_CHARTS_JS``)."""
    return nb.notebook.evaluate(_CHARTS_JS)


#: Mime types that hold a chart in a notebook output.
CHART_MIMES = ("application/vnd.vegalite", "application/vnd.vega.", "image/svg+xml", "image/png")


def charts_in(notebook: dict) -> int:
    """Charts a notebook file holds: outputs with a chart mime type, or inline report SVGs in HTML."""
    n = 0
    for cell in notebook.get("cells", []):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if any(k.startswith(CHART_MIMES) for k in data):
                n += 1
            else:
                html = "".join(data.get("text/html", ""))
                n += len(re.findall(r'<svg\b[^>]*\bclass="[^"]*\bwb-chart\b', html))
    return n
