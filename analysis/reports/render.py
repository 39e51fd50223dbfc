"""Rendering: run a parameterized notebook with papermill, turn it into one offline HTML report.

The pieces, each usable alone:

* :func:`validate_parameters` checks parameter names against the notebook's ``parameters`` cell
  (papermill only warns about unknown ones) and suggests the closest name.
* :func:`execute_notebook` runs a notebook with papermill on the ``python3`` kernel of *this*
  interpreter (:func:`ensure_kernel` installs the kernelspec into ``sys.prefix`` when missing).
* :func:`to_html` exports an executed notebook with the template in ``analysis/templates``:
  code and prompts hidden, a table of contents from the h2/h3 headings, print CSS, and nothing
  loaded from the network (no require.js, MathJax, widget or mermaid scripts from CDNs).
* :func:`render` does all of it for a scheduler: on success it atomically replaces the report
  and writes ``<stem>.ipynb`` (executed notebook) and ``<stem>.json`` (how it was made) beside
  it; on failure it raises :class:`RenderError` with one line, keeps ``<stem>.failed.ipynb``
  and leaves any earlier report untouched.
* :func:`print_pdf` prints a report with headless Chromium; :func:`write_index` lists every
  report under ``reports/<cadence>/<period>/<scope>.html`` in ``reports/index.html``.

>>> from analysis import render, paths
>>> render.render(paths.NOTEBOOKS / "review.ipynb",
...               {"cadence": "quarterly", "period": "2025-Q3"},
...               paths.REPORTS / "quarterly" / "2025-Q3" / "company.html",
...               title="Quarterly review 2025-Q3")                # doctest: +SKIP
>>> render.write_index(paths.REPORTS)                              # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import functools
import html
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import date, datetime, timezone
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _pkg_version
from pathlib import Path
from typing import Any
from urllib.parse import quote

from analysis.errors import WorkbenchError
from analysis.paths import TEMPLATES

__all__ = [
    "CADENCES",
    "CHROMIUM_OFFLINE_FLAGS",
    "KERNEL_NAME",
    "RenderError",
    "ensure_kernel",
    "execute_notebook",
    "find_external_resources",
    "print_pdf",
    "render",
    "to_html",
    "validate_parameters",
    "write_index",
]

#: The Jupyter kernel every report runs on (always this interpreter, see :func:`ensure_kernel`).
KERNEL_NAME = "python3"

#: Review cadences in index order; other folder names are listed after these, alphabetically.
CADENCES: tuple[str, ...] = ("monthly", "quarterly", "semiannual", "annual")

#: The report template (an nbconvert template file extending the "lab" template).
TEMPLATE_FILE = TEMPLATES / "review.html.j2"

#: Chromium switches that keep a headless browser off the network: no background requests,
#: and any request that still happens goes to a proxy that does not exist.
CHROMIUM_OFFLINE_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)


class RenderError(WorkbenchError):
    """A report could not be rendered: bad parameter, failing notebook, missing tool.

    The message is one line. ``executed`` is the kept executed notebook (if any); ``ename`` and
    ``evalue`` are the notebook's exception name and message when the notebook itself failed.
    """

    def __init__(
        self,
        message: str,
        *,
        executed: Path | None = None,
        ename: str | None = None,
        evalue: str | None = None,
    ):
        super().__init__(_one_line(message, limit=1000))
        self.executed = executed
        self.ename = ename
        self.evalue = evalue


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _one_line(text: Any, limit: int = 400) -> str:
    line = " ".join(_ANSI.sub("", str(text)).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# -- kernel -----------------------------------------------------------------------------------


def _kernels_dir() -> Path:
    return Path(sys.prefix) / "share" / "jupyter" / "kernels"


def _spec_runs_this_python(kernel_json: Path) -> bool:
    try:
        argv = json.loads(kernel_json.read_text(encoding="utf-8"))["argv"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not argv:
        return False
    # jupyter_client starts these names with the interpreter that launches the kernel
    generic = {"python", f"python{sys.version_info[0]}", "python%d.%d" % sys.version_info[:2]}
    return argv[0] in generic or os.path.abspath(argv[0]) == os.path.abspath(sys.executable)


def ensure_kernel() -> Path:
    """Make sure ``sys.prefix`` has a ``python3`` kernelspec for this interpreter; return its folder.

    Idempotent: does nothing when ``<sys.prefix>/share/jupyter/kernels/python3/kernel.json``
    already starts this interpreter, otherwise does what
    ``python -m ipykernel install --sys-prefix`` does. Kernels are then looked up in that folder
    only (not in ``~/.local/share/jupyter``), so a user-level ``python3`` kernelspec pointing at
    another Python can never run a report.
    """
    folder = _kernels_dir() / KERNEL_NAME
    if _spec_runs_this_python(folder / "kernel.json"):
        return folder
    try:
        from ipykernel.kernelspec import install
    except ImportError:  # pragma: no cover - ipykernel is a dependency
        raise RenderError(
            "ipykernel is not installed in this environment: pip install ipykernel"
        ) from None
    try:
        install(kernel_name=KERNEL_NAME, prefix=sys.prefix)
    except OSError as error:
        raise RenderError(
            f"cannot install the {KERNEL_NAME} kernelspec into {sys.prefix} ({error.strerror}): "
            "run the workbench from a virtual environment you can write to"
        ) from None
    return folder


@functools.cache
def _kernel_manager_class() -> type:
    """An AsyncKernelManager that finds kernelspecs in ``sys.prefix`` only."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class PrefixKernelSpecManager(KernelSpecManager):
        @default("kernel_dirs")
        def _kernel_dirs_default(self) -> list[str]:
            return [str(_kernels_dir())]

    class PrefixKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self) -> KernelSpecManager:
            return PrefixKernelSpecManager(data_dir=self.data_dir)

        if "transport_encryption" in AsyncKernelManager.class_trait_names():  # jupyter_client >= 8.10

            @default("transport_encryption")
            def _transport_encryption_default(self) -> str:
                # CurveZMQ keys for kernels that declare support (ipykernel 7): without them
                # ipykernel warns on stderr that it "is running over TCP without encryption"
                import zmq

                return "auto" if zmq.has("curve") else "disabled"

    return PrefixKernelManager


# -- parameters and execution -----------------------------------------------------------------


def _plain(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Parameters as papermill/JSON values: paths and dates become strings, tuples lists."""

    def conv(value: Any) -> Any:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, (datetime, date)):
            return value.isoformat()
        if isinstance(value, (tuple, set, frozenset)):
            return [conv(v) for v in value]
        if isinstance(value, list):
            return [conv(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): conv(v) for k, v in value.items()}
        return value

    out = {str(k): conv(v) for k, v in (parameters or {}).items()}
    for name, value in out.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise RenderError(
                f"parameter {name!r} has a {type(value).__name__} value {value!r}: pass a string, "
                "number, bool, None, list or dict (notebook parameters are written as literals)"
            ) from None
    return out


def validate_parameters(notebook_path: str | os.PathLike, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Check parameter names against the notebook's ``parameters`` cell.

    Returns
    -------
    dict
        ``papermill.inspect_notebook``'s description of the declared parameters.

    Raises
    ------
    RenderError
        The notebook is missing, has no ``parameters`` cell, or a name is unknown (with the
        closest declared name as a suggestion). papermill itself only logs a warning.
    """
    import papermill as pm

    path = Path(notebook_path)
    if not path.is_file():
        raise RenderError(f"notebook {path} not found: check the path (review notebooks live in notebooks/)")
    try:
        declared = pm.inspect_notebook(str(path))
    except Exception as error:  # unreadable JSON, not a notebook
        raise RenderError(f"cannot read notebook {path}: {type(error).__name__}: {error}") from None
    unknown = [name for name in parameters if name not in declared]
    if unknown:
        name = unknown[0]
        if not declared:
            raise RenderError(
                f"notebook {path.name} has no cell tagged 'parameters', so it takes no parameter "
                f"{name!r}: tag the cell that sets the defaults 'parameters'"
            )
        hint = difflib.get_close_matches(str(name), list(declared), n=1, cutoff=0.5)
        did = f"did you mean {hint[0]!r}? " if hint else ""
        raise RenderError(
            f"unknown parameter {name!r} for notebook {path.name}: {did}"
            f"its parameters are {', '.join(declared)}"
        )
    return declared


#: seconds one notebook cell may run before the run stops (a review's slowest cell at 5,000 reps
#: takes about a minute)
CELL_TIMEOUT = 900.0


def execute_notebook(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    *,
    cwd: str | os.PathLike | None = None,
    progress: bool = False,
    timeout: float | None = CELL_TIMEOUT,
) -> Path:
    """Run a notebook with papermill on this interpreter's ``python3`` kernel.

    Parameters
    ----------
    input_path, output_path : path
        Notebook to run and where to write the executed copy (written even when a cell fails).
    parameters : dict
        Values for the ``parameters`` cell; names are checked first (:func:`validate_parameters`).
    cwd : path, optional
        Working directory of the kernel (default: the current one, like papermill).
    progress : bool, default False
        Show papermill's progress bar on stderr.
    timeout : float, optional
        Seconds a single cell may run (default :data:`CELL_TIMEOUT`; None: no limit), so that a
        hung cell (or a kernel message lost under load) ends the run with an error instead of
        holding a scheduled review for ever.

    Raises
    ------
    RenderError
        One line: the notebook's exception name and message (``ename``/``evalue``), or why
        the notebook could not run.
    """
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError
    from papermill.exceptions import PapermillExecutionError

    params = _plain(parameters)
    validate_parameters(input_path, params)
    ensure_kernel()
    source = Path(input_path)
    try:
        pm.execute_notebook(
            str(source),
            str(output_path),
            parameters=params,
            kernel_name=KERNEL_NAME,
            progress_bar=progress,
            log_output=False,
            cwd=None if cwd is None else str(cwd),
            execution_timeout=timeout,
            kernel_manager_class=_kernel_manager_class(),
        )
    except PapermillExecutionError as error:
        evalue = _one_line(error.evalue, limit=300)
        raise RenderError(
            f"notebook {source.name} failed in cell [{error.exec_count}]: {error.ename}: {evalue}",
            executed=Path(output_path),
            ename=error.ename,
            evalue=error.evalue,
        ) from error
    except CellTimeoutError as error:
        raise RenderError(
            f"notebook {source.name}: a cell ran longer than {timeout:.0f} s, the cell timeout (raise it with "
            "--cell-timeout if the data is that large)",
            executed=Path(output_path) if Path(output_path).exists() else None,
            ename="CellTimeoutError",
            evalue=str(error),
        ) from error
    except Exception as error:  # kernel died, bad notebook
        raise RenderError(
            f"could not run notebook {source.name}: {type(error).__name__}: {_one_line(error, 300)}",
            executed=Path(output_path) if Path(output_path).exists() else None,
            ename=type(error).__name__,
            evalue=str(error),
        ) from error
    return Path(output_path)


# -- HTML -------------------------------------------------------------------------------------

_HEADING = re.compile(r"<(h[1-3])\b([^>]*)>(.*?)</\1\s*>", re.S | re.I)
_ID = re.compile(r'\bid\s*=\s*"([^"]*)"')
_ANCHOR_LINK = re.compile(r'<a\b[^>]*class="anchor-link"[^>]*>.*?</a>', re.S)
_TAG = re.compile(r"<[^>]+>")
_TOC_MARK = "<!--wb:toc-->"


def _add_toc(page: str, title: str) -> str:
    """Give every h2/h3 a unique id, then put a table of contents (and an h1 if none) at the top."""
    seen: dict[str, int] = {}
    entries: list[tuple[int, str, str]] = []
    has_h1 = False

    def fix(match: re.Match[str]) -> str:
        nonlocal has_h1
        tag, attrs, inner = match.group(1).lower(), match.group(2), match.group(3)
        if tag == "h1":
            has_h1 = True
            return match.group(0)
        text = " ".join(_TAG.sub("", _ANCHOR_LINK.sub("", inner)).split())
        found = _ID.search(attrs)
        old = found.group(1) if found else ""
        base = old or "section"
        n = seen.get(base, 0) + 1
        seen[base] = n
        new = base if (n == 1 and old) else f"{base}-{n}"
        if new != old:
            attrs = _ID.sub(f'id="{new}"', attrs) if found else f'{attrs} id="{new}"'
            inner = inner.replace(f'href="#{old}"', f'href="#{new}"') if old else inner
        if text:
            entries.append((2 if tag == "h2" else 3, new, text))
        return f"<{tag}{attrs}>{inner}</{tag}>"

    page = _HEADING.sub(fix, page)
    items: list[str] = []
    open_sub = False
    for level, anchor, text in entries:  # text and anchor are already HTML (escaped)
        link = f'<a href="#{anchor}">{text}</a>'
        if level == 3 and items:
            if not open_sub:
                items[-1] = items[-1].removesuffix("</li>") + "<ol>"
                open_sub = True
            items.append(f"<li>{link}</li>")
            continue
        if open_sub:
            items.append("</ol></li>")
            open_sub = False
        items.append(f"<li>{link}</li>")
    if open_sub:
        items.append("</ol></li>")
    nav = (
        f'<nav class="wb-toc" aria-label="Contents"><p class="wb-toc-title">Contents</p>'
        f"<ol>{''.join(items)}</ol></nav>"
        if entries
        else ""
    )
    if has_h1:  # the notebook's title first, then the contents
        page = page.replace(_TOC_MARK, "", 1)
        end = re.search(r"</h1\s*>", page, re.I)
        if end is not None:
            return page[: end.end()] + nav + page[end.end():]
    return page.replace(_TOC_MARK, f'<h1 class="wb-title">{html.escape(title)}</h1>\n' + nav, 1)


_RESOURCE_ATTR = re.compile(
    r"<(?!a[\s>])([a-zA-Z][\w:-]*)\b[^>]*?\s(src|href|xlink:href|srcset|poster|data|background)"
    r"""\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]+)""",
    re.I,
)
_CSS_URL = re.compile(r"""(?:@import\s+(?:url\()?|url\()\s*["']?\s*((?:https?:)?//[^"')\s;]+)""", re.I)
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)
_DATA_SCRIPT = re.compile(r"""type\s*=\s*["']?application/(?:vnd\.jupyter[\w.+-]*|json|ld\+json)""", re.I)
_JS_URL = re.compile(r"""["'`]((?:https?:)?//[^"'`\s]+)""")


def find_external_resources(page: str) -> list[str]:
    """URLs that a browser would fetch when opening ``page`` (empty for a self-contained report).

    Looks at ``src``/``href``-like attributes of every element except links (``<a href>`` is
    navigation, not a resource), CSS ``@import`` and ``url()``, and URLs inside executable
    inline scripts (e.g. Altair's default renderer loading Vega from a CDN). XML namespace
    attributes (``xmlns="http://www.w3.org/2000/svg"``) are not fetched and not reported.
    """
    found = [m.group(3) for m in _RESOURCE_ATTR.finditer(page)]
    found += [m.group(1) for m in _CSS_URL.finditer(page)]
    for m in _SCRIPT.finditer(page):
        if not _DATA_SCRIPT.search(m.group(1)):
            found += [u.group(1) for u in _JS_URL.finditer(m.group(2))]
    return list(dict.fromkeys(found))


def _html_exporter() -> Any:
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="lab",
        template_file=str(TEMPLATE_FILE),
        extra_template_basedirs=[],  # default is the cwd: a stray ./lab folder would shadow "lab"
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
        sanitize_html=False,  # outputs come from our own code, which escapes data
    )


def to_html(executed_notebook_path: str | os.PathLike, title: str, *, base_dir: str | os.PathLike | None = None) -> str:
    """The executed notebook as one self-contained HTML page.

    Code and prompts are hidden; a table of contents of the h2/h3 headings opens the page (an
    ``<h1>`` with ``title`` is added when the notebook has none); print CSS starts every h2
    section on a new page and never splits or clips figures and tables; stderr streams
    (warnings, logs) are left out; cells tagged ``remove-cell`` are dropped and the outputs of
    cells tagged ``remove-output`` cleared. Images in markdown are embedded (relative paths from
    ``base_dir``, default the notebook's folder). No script, stylesheet or font is loaded from
    the network.
    """
    import nbformat

    path = Path(executed_notebook_path)
    nb = nbformat.read(str(path), as_version=4)
    nb.metadata["title"] = str(title)
    kept = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & {"remove-cell", "remove_cell"}:
            continue
        if cell.cell_type == "code" and tags & {"remove-output", "remove_output"}:
            cell.outputs = []
        kept.append(cell)
    nb.cells = kept
    resources = {"metadata": {"name": path.stem, "path": str(base_dir or path.parent)}}
    body, _ = _html_exporter().from_notebook_node(nb, resources=resources)
    return _add_toc(body, str(title))


# -- files ------------------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp(folder: Path, stem: str, suffix: str) -> Path:
    """An empty hidden file in ``folder`` with the usual permissions (mkstemp gives 0600)."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=suffix)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())
    return Path(name)


def _write_atomic(target: Path, text: str) -> None:
    tmp = _temp(target.parent, target.stem, target.suffix)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise RenderError(
            "PDF output needs headless Chromium, which is not installed: install Debian's "
            "chromium (apt-get install chromium) or render without pdf"
        )
    return exe


def print_pdf(html_path: str | os.PathLike, pdf_path: str | os.PathLike, *, timeout: float = 180) -> Path:
    """Print an HTML file to PDF with headless Chromium, offline (see CHROMIUM_OFFLINE_FLAGS)."""
    exe = _chromium()
    source, target = Path(html_path).resolve(), Path(pdf_path)
    with tempfile.TemporaryDirectory(prefix="wb-chromium-") as profile:
        cmd = [
            exe,
            *CHROMIUM_OFFLINE_FLAGS,
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={target}",
            source.as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RenderError(f"Chromium did not print {source.name} to PDF within {timeout:.0f} s") from None
    if proc.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RenderError(f"Chromium could not print {source.name} to PDF (exit {proc.returncode}): {last}")
    return target


def _version() -> str:
    try:
        return _pkg_version("sales-workbench")
    except PackageNotFoundError:  # pragma: no cover - source tree without installation
        return "0.0.0+unknown"


def render(
    notebook_path: str | os.PathLike,
    parameters: Mapping[str, Any] | None,
    target_html: str | os.PathLike,
    *,
    title: str,
    progress: bool = False,
    pdf: bool = False,
    meta: Mapping[str, Any] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float | None = CELL_TIMEOUT,
) -> Path:
    """Execute a notebook and publish it as ``target_html``, all or nothing.

    Writes, beside ``target_html`` (``<folder>/<stem>.html``):

    * ``<stem>.ipynb``: the executed notebook;
    * ``<stem>.json``: how the report was made (title, notebook, parameters, start time, run
      time in seconds, package and Python versions, ``meta``);
    * ``<stem>.pdf`` when ``pdf=True`` (headless Chromium).

    Every file is first written to a hidden temporary file in the same folder and then moved
    into place with :func:`os.replace`, the HTML last; a successful run removes a stale
    ``<stem>.failed.ipynb`` (and, without ``pdf``, a ``<stem>.pdf`` of an earlier run).

    Raises
    ------
    RenderError
        One line. Unknown parameters are refused before anything runs. When the notebook fails,
        the executed notebook is kept as ``<stem>.failed.ipynb`` (named in the message) and the
        earlier report, if any, is left as it was.
    """
    source = Path(notebook_path)
    target = Path(target_html)
    if target.suffix.lower() != ".html":
        raise RenderError(f"report target {target} must end in .html (e.g. reports/quarterly/2025-Q3/company.html)")
    params = _plain(parameters)
    validate_parameters(source, params)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    stem = target.stem
    failed = folder / f"{stem}.failed.ipynb"

    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    temps: list[Path] = []
    try:
        executed = _temp(folder, stem, ".ipynb")
        temps.append(executed)
        try:
            execute_notebook(source, executed, params, cwd=cwd, progress=progress, timeout=timeout)
        except RenderError as error:
            kept = None
            if executed.exists() and executed.stat().st_size > 0:
                os.replace(executed, failed)
                kept = failed
            where = f"executed notebook kept at {kept}" if kept else "no executed notebook was written"
            raise RenderError(
                f"{error} ({where}; earlier report {target.name}, if any, left as it was)",
                executed=kept,
                ename=error.ename,
                evalue=error.evalue,
            ) from error.__cause__

        page = to_html(executed, title, base_dir=source.parent)
        external = find_external_resources(page)
        if external:
            os.replace(executed, failed)
            raise RenderError(
                f"report {target.name} would load {external[0]} from the network: display charts "
                f"with analysis.charts.show() and tables with charts.table() (executed notebook kept at {failed})",
                executed=failed,
            )
        page_tmp = _temp(folder, stem, ".html")
        temps.append(page_tmp)
        page_tmp.write_text(page, encoding="utf-8")

        pdf_tmp = None
        if pdf:
            pdf_tmp = _temp(folder, stem, ".pdf")
            temps.append(pdf_tmp)
            print_pdf(page_tmp, pdf_tmp)

        record = {
            "title": str(title),
            "notebook": str(source),
            "parameters": params,
            "rendered_at": started.isoformat(timespec="seconds"),
            "duration_seconds": round(time.perf_counter() - clock, 2),
            "report": target.name,
            "executed_notebook": f"{stem}.ipynb",
            "pdf": f"{stem}.pdf" if pdf else None,
            "package_version": _version(),
            "python": platform.python_version(),
            "meta": dict(meta or {}),
        }
        record_tmp = _temp(folder, stem, ".json")
        temps.append(record_tmp)
        record_tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")

        os.replace(executed, folder / f"{stem}.ipynb")
        if pdf_tmp is not None:
            os.replace(pdf_tmp, folder / f"{stem}.pdf")
        else:  # a PDF of an earlier run would no longer match the report
            (folder / f"{stem}.pdf").unlink(missing_ok=True)
        os.replace(record_tmp, folder / f"{stem}.json")
        os.replace(page_tmp, target)
        failed.unlink(missing_ok=True)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    return target


# -- index ------------------------------------------------------------------------------------

_INDEX_CSS = """
body{margin:0;font-family:'Segoe UI','Helvetica Neue',Helvetica,Arial,'Liberation Sans','DejaVu Sans',sans-serif;color:#1F2933;background:#fff;line-height:1.5}
main{max-width:980px;margin:0 auto;padding:24px 28px 64px}
h1{font-size:1.8em;margin:.3em 0}h2{font-size:1.3em;margin:1.6em 0 .4em;border-top:2px solid #E4E7EB;padding-top:.4em}
p.meta{color:#52606D;margin:0 0 1em}
table{border-collapse:collapse;width:100%;font-size:.95em}
th,td{padding:5px 10px;border-bottom:1px solid #E4E7EB;text-align:left;vertical-align:top}
thead th{border-bottom:2px solid #9AA5B1;color:#52606D;font-weight:600}
td.when{font-variant-numeric:tabular-nums;color:#52606D;white-space:nowrap}
a{color:#0072B2}.failed{color:#B33F00;font-weight:600}
@media print{h2{break-after:avoid}table{break-inside:auto}tr{break-inside:avoid}}
""".strip()


def _period_key(label: str) -> tuple[int, Any, str]:
    try:
        from analysis.data.periods import parse_period

        return (1, parse_period(label).start, label)
    except Exception:  # not a period label: sort by text, after the dated ones
        return (0, date.min, label)


def _when(value: Any) -> str:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M")


def _read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def write_index(reports_dir: str | os.PathLike) -> Path:
    """(Re)write ``reports_dir/index.html``: every ``<cadence>/<period>/<scope>.html`` report.

    Reports are grouped by cadence (monthly, quarterly, semiannual, annual, then any other
    folder), newest period first; within a period the company report comes first, then the
    other scopes alphabetically. Each row links (relatively) to the report and its PDF, and
    shows the render time from the ``<scope>.json`` record (the file time when missing). A
    ``<scope>.failed.ipynb`` newer than the report (or without any report) is flagged as a
    failed last run. The page is self-contained and every name is HTML-escaped.
    """
    root = Path(reports_dir)
    root.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, str, str]] = set()
    candidates = sorted(root.glob("*/*/*.html")) + sorted(root.glob("*/*/*.failed.ipynb"))
    for path in candidates:
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue  # temporary files of a render in progress
        cadence, period = rel.parts[0], rel.parts[1]
        scope = path.name.removesuffix(".failed.ipynb") if path.name.endswith(".failed.ipynb") else path.stem
        key = (cadence, period, scope)
        if key in seen:
            continue
        seen.add(key)
        report = path.with_name(f"{scope}.html")
        failed = path.with_name(f"{scope}.failed.ipynb")
        record = _read_record(path.with_name(f"{scope}.json")) if report.exists() else {}
        if report.exists():
            when = record.get("rendered_at") or datetime.fromtimestamp(
                report.stat().st_mtime, timezone.utc
            ).isoformat(timespec="seconds")
        else:
            when = datetime.fromtimestamp(failed.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
        last_failed = failed.exists() and (
            not report.exists() or failed.stat().st_mtime >= report.stat().st_mtime
        )
        rows.setdefault(cadence, []).append(
            {
                "period": period,
                "scope": scope,
                "title": str(record.get("title") or f"{cadence} review {period}, {scope}"),
                "report": rel.with_name(report.name).as_posix() if report.exists() else None,
                "pdf": rel.with_name(f"{scope}.pdf").as_posix() if path.with_name(f"{scope}.pdf").exists() else None,
                "failed": rel.with_name(failed.name).as_posix() if last_failed else None,
                "when": when,
            }
        )

    order = [c for c in CADENCES if c in rows] + sorted(c for c in rows if c not in CADENCES)
    sections = []
    for cadence in order:
        entries = sorted(rows[cadence], key=lambda r: (r["scope"] != "company", r["scope"]))
        entries.sort(key=lambda r: _period_key(r["period"]), reverse=True)  # stable: scopes keep order
        body = []
        for r in entries:
            links = []
            if r["report"]:
                links.append(f'<a href="{html.escape(quote(r["report"]))}">{html.escape(r["title"])}</a>')
            if r["pdf"]:
                links.append(f'<a href="{html.escape(quote(r["pdf"]))}">PDF</a>')
            if r["failed"]:
                links.append(
                    f'<span class="failed">last run failed</span> '
                    f'(<a href="{html.escape(quote(r["failed"]))}">executed notebook</a>)'
                )
            body.append(
                f"<tr><td>{html.escape(r['period'])}</td><td>{html.escape(r['scope'])}</td>"
                f"<td>{' · '.join(links)}</td><td class=\"when\">{html.escape(_when(r['when']))}</td></tr>"
            )
        sections.append(
            f'<section id="{html.escape(cadence)}"><h2>{html.escape(cadence.capitalize())}</h2>'
            "<table><thead><tr><th>Period</th><th>Scope</th><th>Report</th><th>Rendered</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></section>"
        )
    count = sum(len(v) for v in rows.values())
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    content = "".join(sections) or "<p>No reports rendered yet: run <code>python -m analysis review</code>.</p>"
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
        f"<title>Sales reviews</title>\n<style>{_INDEX_CSS}</style>\n</head>\n<body>\n<main>\n"
        f'<h1>Sales reviews</h1>\n<p class="meta">{count} report{"s" if count != 1 else ""}; '
        f"index updated {now}.</p>\n{content}\n</main>\n</body>\n</html>\n"
    )
    index = root / "index.html"
    _write_atomic(index, page)
    return index
