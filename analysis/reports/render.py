"""Rendering: run a parameterized notebook with papermill, turn it into one offline HTML report.

The pieces, each usable alone:

* :func:`validate_parameters` checks parameter names against the notebook's ``parameters`` cell
  (papermill only warns about unknown ones) and suggests the closest name.
* :func:`execute_notebook` runs a notebook with papermill on the ``python3`` kernel of *this*
  interpreter (:func:`ensure_kernel` installs the kernelspec into ``sys.prefix`` when missing).
* :func:`to_html` exports an executed notebook with the template in ``analysis/templates``:
  code and prompts hidden, a table of contents from the h2/h3 headings, print CSS, and nothing
  loaded from the network (no require.js, MathJax, widget or mermaid scripts from CDNs).
* :func:`find_external_resources` (and :func:`external_resources`, with where each one is)
  lists what a page would load from the network: only real loading places count (``src``,
  ``<link href>``, CSS ``url()`` in ``<style>`` and ``style=""``...), never text or labels.
* :func:`render` does all of it for a scheduler: on success it publishes the report with
  ``<stem>.ipynb`` (executed notebook) and ``<stem>.json`` (how it was made) beside it as one
  set (staged in a hidden folder, switched into place HTML last, one render of a report at a
  time); on failure it raises :class:`RenderError` with one line, keeps ``<stem>.failed.ipynb``
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

import contextlib
import difflib
import functools
import html
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from html.parser import HTMLParser
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _pkg_version
from pathlib import Path
from typing import Any
from urllib.parse import quote

try:  # POSIX; elsewhere renders of one report are not serialized
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from analysis.errors import WorkbenchError
from analysis.paths import TEMPLATES

__all__ = [
    "ATTACH_DIR_ENV",
    "ATTACH_STEM_ENV",
    "CADENCES",
    "CHROMIUM_OFFLINE_FLAGS",
    "ExternalResource",
    "KERNEL_NAME",
    "LOCK_TIMEOUT",
    "RenderError",
    "STALE_AFTER",
    "attachments_of",
    "ensure_kernel",
    "execute_notebook",
    "external_resources",
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
        ) from error  # the cause makes it an environment problem (exit 4)
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
        #: variables added to the kernel's environment (see :func:`_kernel_manager_with`)
        extra_env: dict[str, str] = {}

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            if self.extra_env:
                kw["env"] = {**(kw.get("env") or os.environ), **self.extra_env}
            await super()._async_launch_kernel(kernel_cmd, **kw)

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


def _kernel_manager_with(env: Mapping[str, str] | None) -> type:
    """The kernel manager class, launching kernels with ``env`` added to their environment
    (per run, so concurrent renders in one process never see each other's variables)."""
    base = _kernel_manager_class()
    if not env:
        return base
    return type("EnvKernelManager", (base,), {"extra_env": {str(k): str(v) for k, v in env.items()}})


@functools.cache
def _engine_name() -> str:
    """A papermill engine that writes the executed notebook at most every few seconds while it
    runs, and always at the end (papermill's own writes it twice per cell: a review's 56 writes of
    a notebook growing to 0.5 MB cost about 0.9 s), registered once under ``workbench``."""
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    class ThrottledManager(NotebookExecutionManager):
        every = 5.0  # seconds between writes while cells run
        _throttled = False
        _saved = 0.0

        def save(self, **kwargs: Any) -> None:
            if self._throttled and time.monotonic() - self._saved < self.every:
                return
            super().save(**kwargs)
            self._saved = time.monotonic()

        @contextlib.contextmanager
        def _throttling(self) -> Iterator[None]:
            self._throttled = True
            try:
                yield
            finally:
                self._throttled = False

        def cell_start(self, cell: Any, cell_index: Any = None, **kwargs: Any) -> Any:
            with self._throttling():
                return super().cell_start(cell, cell_index, **kwargs)

        def cell_complete(self, cell: Any, cell_index: Any = None, **kwargs: Any) -> Any:
            with self._throttling():
                return super().cell_complete(cell, cell_index, **kwargs)

    class WorkbenchEngine(NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb: Any, kernel_name: str, output_path: Any = None, progress_bar: bool = True,
                             log_output: bool = False, autosave_cell_every: int = 30, **kwargs: Any) -> Any:
            # papermill's Engine.execute_notebook with the throttled manager; notebook_complete
            # (in the finally, whatever happened) writes the final notebook
            nb_man = ThrottledManager(nb, output_path=output_path, progress_bar=progress_bar, log_output=log_output,
                                      autosave_cell_every=autosave_cell_every)
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

    papermill_engines.register("workbench", WorkbenchEngine)
    return "workbench"


#: A notebook run by :func:`render` may write files to attach beside its report: into the folder
#: named by this environment variable, each named ``<stem>.<name>.csv`` where ``<stem>`` is the
#: value of :data:`ATTACH_STEM_ENV`. They are published with the report, as one set.
ATTACH_DIR_ENV = "WORKBENCH_ATTACHMENTS"
ATTACH_STEM_ENV = "WORKBENCH_ATTACHMENT_STEM"
_ATTACHMENT = re.compile(r"[a-z0-9][a-z0-9-]{0,60}")


def attachments_of(folder: Path, stem: str) -> list[str]:
    """Names of the attachment files of report ``stem`` in ``folder`` (``<stem>.<name>.csv``)."""
    names = []
    for path in folder.glob(f"{glob_escape(stem)}.*.csv"):
        middle = path.name[len(stem) + 1:-len(".csv")]
        if _ATTACHMENT.fullmatch(middle) and path.is_file():
            names.append(path.name)
    return sorted(names)


def glob_escape(text: str) -> str:
    """``text`` with glob wildcards escaped (report stems come from team names)."""
    import glob

    return glob.escape(text)


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
    env: Mapping[str, str] | None = None,
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
    env : dict, optional
        Variables added to the kernel's environment.

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
            kernel_manager_class=_kernel_manager_with(env),
            engine_name=_engine_name(),
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
            attrs = _ID.sub(lambda _: f'id="{new}"', attrs) if found else f'{attrs} id="{new}"'
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


# -- the offline guard ------------------------------------------------------------------------

#: Attributes that make a browser fetch their URL on whatever element carries them.
_FETCH_ATTRS = frozenset({"src", "srcset", "imagesrcset", "poster", "background"})
#: Elements whose ``href`` (``xlink:href`` in SVG) is fetched when the page opens; ``<a>`` and
#: ``<area>`` are navigation, not resources. ``<base>`` turns every relative URL into a remote one.
_HREF_FETCHERS = frozenset({"link", "script", "image", "use", "feimage", "base"})
#: SVG presentation attributes whose ``url()`` may point at another document.
_SVG_URL_ATTRS = frozenset(
    {"fill", "stroke", "filter", "clip-path", "mask", "marker-start", "marker-mid", "marker-end", "cursor"}
)
#: Attributes that hold text for people (labels of charts, tooltips, alternative text).
_LABEL_ATTRS = frozenset(
    {"aria-label", "aria-description", "aria-valuetext", "aria-roledescription", "title", "alt", "label",
     "placeholder", "value"}
)
_NETWORK_URL = re.compile(r"^(?:(?:https?|ftp|wss?):|[\\/]{2})", re.I)
_URL_NOISE = re.compile(r"[\t\n\r]")  # browsers drop these anywhere in a URL
_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.S)
_CSS_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\n\r\f]?|(.))", re.S)
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)\s]*))""", re.I)
_CSS_IMPORT = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.I)
_CSS_IMAGE_SET = re.compile(r"image-set\(([^)]*)\)", re.I)
_CSS_STRING = re.compile(r""""([^"]*)"|'([^']*)'""")
_JS_URL = re.compile(r"""["'`]((?:https?:)?//[^"'`\s]+)""")
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\";]+)", re.I)


def _network(url: str) -> str | None:
    """``url`` (trimmed) when a browser would fetch it from the network, else None."""
    url = _URL_NOISE.sub("", url).strip("".join(map(chr, range(0x21))))
    return url if _NETWORK_URL.match(url) else None


def _css_unescape(css: str) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1):
            code = int(match.group(1), 16)
            return chr(code) if 0 < code <= 0x10FFFF else "\ufffd"
        return match.group(2)

    return _CSS_ESCAPE.sub(one, _CSS_COMMENT.sub("", css))


def _css_urls(css: str, *, imports: bool = True) -> list[str]:
    """Network URLs that CSS text loads: ``url()``, ``@import "..."`` and ``image-set("...")``."""
    css = _css_unescape(css)
    found = [next(g for g in m.groups() if g is not None) for m in _CSS_URL.finditer(css)]
    if imports:
        found += [m.group(1) if m.group(1) is not None else m.group(2) for m in _CSS_IMPORT.finditer(css)]
        for m in _CSS_IMAGE_SET.finditer(css):
            found += [s.group(1) if s.group(1) is not None else s.group(2) for s in _CSS_STRING.finditer(m.group(1))]
    return [u for u in map(_network, found) if u]


def _srcset_urls(value: str) -> list[str]:
    """The URLs of a ``srcset``: each candidate is a URL (no spaces; a data: URL may hold commas)
    followed by optional descriptors up to the next comma."""
    urls, pos, end = [], 0, len(value)
    while pos < end:
        while pos < end and (value[pos].isspace() or value[pos] == ","):
            pos += 1
        start = pos
        while pos < end and not value[pos].isspace():
            pos += 1
        url = value[start:pos]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            depth = 0
            while pos < end and (value[pos] != "," or depth):
                depth += {"(": 1, ")": -1}.get(value[pos], 0)
                pos += 1
        if url:
            urls.append(url)
    return urls


def _executable_script(attrs: Mapping[str, str]) -> bool:
    kind = attrs.get("type", "").strip().lower()
    return kind in ("", "module") or "javascript" in kind or "ecmascript" in kind


@dataclass(frozen=True)
class ExternalResource:
    """One place in a page that makes a browser fetch something from the network.

    ``url`` as written; ``where`` the loading place (``<img src>``, ``<style> url()``,
    ``style="" url()`` on an element, ``<script> code``...); ``section`` the h1-h3 heading above it;
    ``context`` the page text around it; ``value`` the text (a table cell, a chart label, a
    paragraph...) that also contains the URL, when there is one, and ``value_place`` what that
    text is. A URL that also shows up as text usually comes from a value in the data.
    """

    url: str
    where: str
    section: str = ""
    context: str = ""
    value: str = ""
    value_place: str = ""


class _ResourceScanner(HTMLParser):
    """Tokenizes a page the way a browser reads it: tags and attributes, raw ``<script>`` and
    ``<style>`` text, everything else text. Only the loading places are searched for URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str, str, int]] = []  # url, where, section, index into texts
        self.texts: list[tuple[str, str, str]] = []  # text, what it is, section
        self.section = ""
        self._heading: list[str] | None = None
        self._raw: tuple[str, dict[str, str]] | None = None  # open <script>/<style> and its attributes
        self._svg = 0
        self._cell = 0
        self._caption = 0

    # places that hold text for people -------------------------------------------------------

    def _place(self) -> str:
        if self._svg:
            return "a chart label"
        if self._cell:
            return "a table cell"
        if self._heading is not None:
            return "a heading"
        if self._caption:
            return "a caption"
        return "the text"

    def handle_data(self, data: str) -> None:
        if self._raw is not None:
            tag, attrs = self._raw
            if tag == "style":
                # inside <svg> a <style> is an ordinary element: character references are decoded
                css = html.unescape(data) if self._svg else data
                self._add(_css_urls(css), "<style> url()")
            elif _executable_script(attrs):
                self._add([u for u in map(_network, (m.group(1) for m in _JS_URL.finditer(data))) if u],
                          "<script> code")
            return
        if self._heading is not None:
            self._heading.append(data)
        text = " ".join(data.split())
        if text:
            self.texts.append((text, self._place(), self.section))

    # loading places -------------------------------------------------------------------------

    def _add(self, urls: list[str], where: str) -> None:
        for url in urls:
            self.found.append((url, where, self.section, len(self.texts)))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            urls: list[str] = []
            if name in _FETCH_ATTRS:
                candidates = _srcset_urls(value) if name.endswith("srcset") else [value]
                urls = [u for u in map(_network, candidates) if u]
            elif name == "data" and tag == "object":
                urls = [u for u in [_network(value)] if u]
            elif name in ("href", "xlink:href") and tag in _HREF_FETCHERS:
                urls = [u for u in [_network(value)] if u]
            elif name == "style":
                urls = _css_urls(value)
            elif name in _SVG_URL_ATTRS:
                urls = _css_urls(value, imports=False)
            elif name == "content" and tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
                match = _REFRESH_URL.search(value)
                urls = [u for u in [_network(match.group(1))] if u] if match else []
            elif name == "srcdoc":  # a page inside the page
                for inner in external_resources(value):
                    self.found.append((inner.url, f"<{tag} srcdoc> {inner.where}", self.section, len(self.texts)))
            if urls:
                self._add(urls, f'style="" url() on <{tag}>' if name == "style" else
                          f"<{tag} {name}> url()" if name in _SVG_URL_ATTRS else f"<{tag} {name}>")
            if name in _LABEL_ATTRS and value.strip():
                place = "a chart label" if self._svg else f"the {name} of a <{tag}>"
                self.texts.append((" ".join(value.split()), place, self.section))
        if tag in ("script", "style"):
            self._raw = (tag, values)
        elif tag == "svg":
            self._svg += 1
        elif tag in ("td", "th"):
            self._cell += 1
        elif tag in ("caption", "figcaption"):
            self._caption += 1
        elif tag in ("h1", "h2", "h3"):
            self._heading = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._raw = None
        elif tag == "svg":
            self._svg = max(0, self._svg - 1)
        elif tag in ("td", "th"):
            self._cell = max(0, self._cell - 1)
        elif tag in ("caption", "figcaption"):
            self._caption = max(0, self._caption - 1)
        elif tag in ("h1", "h2", "h3") and self._heading is not None:
            heading = " ".join("".join(self._heading).split())
            self._heading = None
            if heading:
                self.section = heading.removesuffix("¶").strip()

    def context(self, index: int, width: int = 60) -> str:
        before: list[str] = []
        size = 0
        for text, _, _ in reversed(self.texts[:index]):
            before.insert(0, text)
            size += len(text) + 1
            if size >= width:
                break
        after: list[str] = []
        size = 0
        for text, _, _ in self.texts[index:]:
            after.append(text)
            size += len(text) + 1
            if size >= width:
                break
        left, right = " ".join(before), " ".join(after)
        if not (left or right):
            return ""
        left = left if len(left) <= width else "..." + left[-width:]
        right = right if len(right) <= width else right[:width] + "..."
        return f"{left} [here] {right}".strip()


def external_resources(page: str) -> list[ExternalResource]:
    """Every place in ``page`` that loads something from the network, in page order.

    The loading places: ``src``, ``srcset``, ``poster`` and ``background`` attributes of any
    element, ``data`` of ``<object>``, ``href`` (``xlink:href``) of ``<link>``, ``<script>``,
    ``<image>``, ``<use>``, ``<feImage>`` and ``<base>``, a ``<meta http-equiv="refresh">``,
    CSS ``url()``, ``@import`` and ``image-set()`` inside ``<style>`` elements and ``style=""``
    attributes (``url()`` in SVG paint attributes such as ``fill``), ``srcdoc`` pages, and URL
    literals inside executable ``<script>`` elements. Text (table cells, chart labels,
    paragraphs) and the values of ``aria-label``, ``title`` or ``alt`` are never fetched, so a
    URL written there is not a finding. Network means ``http``, ``https``, ``ftp``, ``ws(s)``
    or protocol-relative (``//host``); ``data:`` and relative URLs are not.
    """
    scanner = _ResourceScanner()
    scanner.feed(page)
    scanner.close()
    out = []
    for url, where, section, index in scanner.found:
        value, place = next(((text, what) for text, what, _ in scanner.texts if url in text), ("", ""))
        out.append(ExternalResource(url, where, section, scanner.context(index), _one_line(value, 200), place))
    return out


def find_external_resources(page: str) -> list[str]:
    """URLs that a browser would fetch when opening ``page`` (empty for a self-contained report).

    The URLs of :func:`external_resources`, each once, in page order. Only real loading places
    count: a URL in text, in a chart label or in an ``aria-label`` is inert and not reported, and
    neither are XML namespace declarations (``xmlns="http://www.w3.org/2000/svg"``).
    """
    return list(dict.fromkeys(r.url for r in external_resources(page)))


def _external_message(report: str, found: list[ExternalResource], kept: Path) -> str:
    """The one-line refusal: which URL, where, and whether a data value or the code put it there."""
    first = found[0]
    more = len({r.url for r in found}) - 1
    others = f" (and {more} more URL{'s' if more > 1 else ''})" if more > 0 else ""
    section = f" in section {first.section!r}" if first.section else ""
    if first.value:
        return (
            f"report {report} would load {first.url} from the network{others}: it is part of the text "
            f"{first.value!r} ({first.value_place}{section}), most likely a value in the data that reached the "
            f"page as markup ({first.where}) instead of as text; change that value in the data, and report the "
            f"output that did not escape it (executed notebook kept at {kept})"
        )
    near = f", near the text {first.context!r}" if first.context else ""
    return (
        f"report {report} would load {first.url} from the network{others} ({first.where}{section}{near}): "
        f"display charts with analysis.charts.show() and tables with charts.table() "
        f"(executed notebook kept at {kept})"
    )


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
        if cell.cell_type == "code":  # stderr (warnings, logs, a JVM's start-up lines) is not the report
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
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
    """An empty hidden file ``.<stem>.<pid>-<random><suffix>`` in ``folder`` with the usual
    permissions (mkstemp gives 0600); the pid tells a later run whether its owner is gone."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{stem}.{os.getpid()}-", suffix=suffix)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())
    return Path(name)


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk; a no-op where the system does not allow it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(target: Path, text: str) -> None:
    tmp = _temp(target.parent, target.stem, target.suffix)
    try:
        tmp.write_text(text, encoding="utf-8")
        _fsync(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# -- locks ------------------------------------------------------------------------------------

#: Seconds a render waits for another render of the same report (or index) to finish.
LOCK_TIMEOUT = 1800.0
#: A temporary file or folder whose owning process still runs is removed after this many seconds
#: (the pid may belong to another process by then); one whose process is gone, at once.
STALE_AFTER = 600.0


@dataclass
class _Lock:
    path: Path
    fd: int | None  # None: no locking on this system or file system

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # still held here: a waiter that locked this file notices and retries
        os.close(self.fd)
        self.fd = None


def _lock_path(folder: Path, stem: str) -> Path:
    return folder / f".{stem}.lock"


def _try_lock(path: Path) -> _Lock | None:
    """Hold ``path`` (an flock, with our pid written in it), or None when another run holds it."""
    if fcntl is None:  # pragma: no cover - Windows
        return _Lock(path, None)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # another user's lock file: an flock needs no write access
        fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:  # pragma: no cover - a file system without locks (some network mounts)
        os.close(fd)
        return _Lock(path, None)
    try:
        mine, there = os.fstat(fd), os.stat(path)
        same = (mine.st_ino, mine.st_dev) == (there.st_ino, there.st_dev)
    except FileNotFoundError:
        same = False
    if not same:  # the holder removed it as we opened it: try again with the new file
        os.close(fd)
        return None
    with contextlib.suppress(OSError):  # the pid is for messages only
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    return _Lock(path, fd)


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


@contextlib.contextmanager
def _locked(path: Path, *, timeout: float | None, what: str) -> Iterator[None]:
    """Run the block while holding ``path``, waiting up to ``timeout`` seconds (None: for ever)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.02
    while True:
        lock = _try_lock(path)
        if lock is not None:
            break
        if deadline is not None and time.monotonic() >= deadline:
            raise RenderError(
                f"{what} is being written by another run{_holder(path)} that has not finished within "
                f"{timeout:g} s: wait for it, or stop that process if it hangs (its lock {path} is freed when it ends)"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    try:
        yield
    finally:
        lock.release()


# -- publishing -------------------------------------------------------------------------------

#: A render's staging folder ``.<stem>.<pid>-<random>.tmp`` and other temporary files.
_TEMP_NAME = re.compile(r"^\.(?P<stem>.+)\.(?P<pid>\d+)-[A-Za-z0-9_]+(?:\.tmp|\.[A-Za-z0-9]+)$")
#: Temporary files of earlier versions (``.<stem>.<8 random>.<ext>``, no pid).
_OLD_TEMP_NAME = re.compile(r"^\.(?P<stem>.+)\.[a-z0-9_]{8}\.(?:html|ipynb|json|pdf)$")
#: Written into a staging folder once all its files are complete: from then on the switch is
#: finished by whoever finds the folder after a crash (rolled forward, never back).
_JOURNAL = "publish.json"
_BACKUP = ".old"


def _dead(path: Path, pid: int | None, now: float) -> bool:
    """Whether a temporary file or folder was left by a run that is over.

    Only asked while holding the lock of the report it belongs to, so no live render of that
    report can own it: its process is gone, or it is this process (an earlier attempt), or it
    is older than :data:`STALE_AFTER` (the pid may have been reused). Names without a pid
    (earlier versions) go by age alone.
    """
    try:
        age = now - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    if pid is None:
        return age > STALE_AFTER
    from analysis.data.loading import pid_alive  # this module stays light: imported when needed

    return pid == os.getpid() or not pid_alive(pid) or age > STALE_AFTER


def _temps(folder: Path) -> dict[str, list[tuple[Path, int | None]]]:
    found: dict[str, list[tuple[Path, int | None]]] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return found
    for entry in entries:
        if not entry.name.startswith(".") or entry.name.endswith(".lock"):
            continue
        match = _TEMP_NAME.match(entry.name)
        if match:
            found.setdefault(match["stem"], []).append((entry, int(match["pid"])))
            continue
        match = _OLD_TEMP_NAME.match(entry.name)
        if match:
            found.setdefault(match["stem"], []).append((entry, None))
    return found


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _journal(stage: Path) -> tuple[list[str], list[str]]:
    record = json.loads((stage / _JOURNAL).read_text(encoding="utf-8"))
    files, drop = [str(n) for n in record["files"]], [str(n) for n in record["drop"]]
    if not files or any(Path(n).name != n or n.startswith(".") for n in files + drop):
        raise ValueError(f"bad publishing journal in {stage}")
    return files, drop


def _switch(stage: Path, folder: Path, files: list[str], drop: list[str]) -> None:
    """Move the staged files into place, the report (the last name) last; idempotent."""
    *sidecars, report = files
    for name in sidecars:
        if (stage / name).exists():
            os.replace(stage / name, folder / name)
    for name in drop:
        (folder / name).unlink(missing_ok=True)
    if (stage / report).exists():
        os.replace(stage / report, folder / report)


def _roll_back(stage: Path, folder: Path, files: list[str], drop: list[str]) -> None:
    """Undo a switch that stopped with an error: the new files back into the stage, the old ones
    (hard links kept in ``<stage>/.old``) back in place; the journal goes last."""
    backup = stage / _BACKUP
    for name in reversed(files):
        if (stage / name).exists():
            continue  # never moved
        if (folder / name).exists():
            os.replace(folder / name, stage / name)
        if (backup / name).exists():
            os.replace(backup / name, folder / name)
    for name in drop:
        if (backup / name).exists() and not (folder / name).exists():
            os.replace(backup / name, folder / name)
    (stage / _JOURNAL).unlink()


def _publish(stage: Path, folder: Path, files: list[str], drop: list[str]) -> None:
    """Replace the report's files in ``folder`` with the staged ones as one set.

    The old set is kept as hard links in the stage, every staged file is flushed, then the
    journal is written (the commit point) and the files are moved into place, the HTML last.
    An error during the moves puts the old set back; a crash (nothing runs any more) leaves the
    journal, and the next render or index of the folder finishes the switch to the new set.
    """
    report = files[-1]
    backup = stage / _BACKUP
    try:
        backup.mkdir()
        for name in [*files, *drop]:
            current = folder / name
            if current.is_file():
                try:
                    os.link(current, backup / name)
                except OSError:  # no hard links here (some network or FAT file systems)
                    shutil.copy2(current, backup / name)
        mode = 0o666 & ~_umask()
        for name in files:
            os.chmod(stage / name, mode)
            _fsync(stage / name)
        part = stage / f"{_JOURNAL}.part"
        part.write_text(json.dumps({"files": files, "drop": drop}), encoding="utf-8")
        _fsync(part)
        os.replace(part, stage / _JOURNAL)
        _fsync(stage)
    except Exception as error:
        raise RenderError(
            f"could not stage {report} for publishing ({type(error).__name__}: {error}); "
            "the earlier report and its files were not touched"
        ) from error
    try:
        _switch(stage, folder, files, drop)
    except BaseException as error:
        try:
            _roll_back(stage, folder, files, drop)
        except BaseException:
            raise RenderError(
                f"publishing {report} stopped halfway ({type(error).__name__}: {error}) and the earlier files "
                f"could not be put back: the next render or index of {folder} completes the switch to the new "
                f"files (kept in {stage.name})"
            ) from error
        if not isinstance(error, Exception):
            raise  # KeyboardInterrupt, SystemExit: after the old set is back
        raise RenderError(
            f"could not publish {report} ({type(error).__name__}: {error}); the earlier report and its files "
            "are back in place"
        ) from error
    (stage / _JOURNAL).unlink(missing_ok=True)
    _fsync(folder)


def _tidy(folder: Path, locked_stem: str | None = None) -> None:
    """Finish or remove what dead runs left in ``folder``.

    For every report with temporary files there, whose lock this process holds
    (``locked_stem``) or can take right now (nobody renders it): a staging folder with a
    journal is switched into place (its run stopped mid-switch: roll forward), oldest first;
    every other dead temporary file or folder (see :func:`_dead`) is removed. Reports being
    rendered are left to their own run.
    """
    now = time.time()

    def age(item: tuple[Path, int | None]) -> float:
        with contextlib.suppress(OSError):
            return item[0].lstat().st_mtime
        return now

    for stem, temps in _temps(folder).items():
        lock = None
        if stem != locked_stem:
            lock = _try_lock(_lock_path(folder, stem))
            if lock is None:
                continue
        try:
            for path, pid in sorted(temps, key=age):  # oldest first: a later switch wins
                # a journal is only written under the lock, and its run let go of the lock
                # without finishing: whatever the pid, that switch is abandoned
                journaled = path.is_dir() and (path / _JOURNAL).exists()
                if not journaled and not _dead(path, pid, now):
                    continue
                if journaled:
                    try:
                        _switch(path, folder, *_journal(path))
                    except (OSError, ValueError, KeyError, TypeError):
                        if stem != locked_stem:
                            continue  # left for that report's next render
                        # this render replaces the whole set anyway
                _remove(path)
        finally:
            if lock is not None:
                lock.release()


def _stamp(page: str, render_id: str) -> str:
    """Put the render id in the page's head, so a reader can match it with ``<stem>.json``."""
    tag = f'<meta name="wb-render-id" content="{html.escape(render_id)}">'
    match = re.search(r"<meta\s+charset[^>]*>", page, re.I) or re.search(r"<head\b[^>]*>", page, re.I)
    if match is None:
        return page
    return page[: match.end()] + "\n" + tag + page[match.end():]


_RENDER_ID = re.compile(r'<meta name="wb-render-id" content="([^"]*)">')


def _page_render_id(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    match = _RENDER_ID.search(head)
    return html.unescape(match.group(1)) if match else None


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
    lock_timeout: float | None = LOCK_TIMEOUT,
) -> Path:
    """Execute a notebook and publish it as ``target_html``, all or nothing.

    Writes, beside ``target_html`` (``<folder>/<stem>.html``):

    * ``<stem>.ipynb``: the executed notebook;
    * ``<stem>.json``: how the report was made (title, notebook, parameters, render id, start
      time, run time in seconds, package and Python versions, ``scope`` and ``scope_value``
      when ``meta`` has them, ``meta``);
    * ``<stem>.pdf`` when ``pdf=True`` (headless Chromium);
    * ``<stem>.<name>.csv``: the files the notebook attached (full tables a report shows in part,
      see :data:`ATTACH_DIR_ENV`), listed in the record's ``attachments``; those of an earlier
      run that this one did not write are removed with the switch.

    Publishing guarantee: the files are made in a hidden staging folder
    ``<folder>/.<stem>.<pid>-<random>.tmp`` and switched into place as one set, the HTML last:
    an error during the switch puts the earlier set back, and after a crash mid-switch the next
    render or :func:`write_index` finishes it, so the set is not left mixed. The HTML and the
    record carry the same render id (``<meta name="wb-render-id">``, ``render_id``). Renders of
    the same report take turns (an flock on ``<folder>/.<stem>.lock``, waiting up to
    ``lock_timeout`` seconds, None: for ever); each render first finishes or removes what dead
    runs left in the folder. A successful run removes a stale
    ``<stem>.failed.ipynb`` (and, without ``pdf``, a ``<stem>.pdf`` of an earlier run).

    Raises
    ------
    RenderError
        One line. Unknown parameters are refused before anything runs. When the notebook fails
        (or its page would load something from the network), the executed notebook is kept as
        ``<stem>.failed.ipynb`` (named in the message) and the earlier report, if any, is left
        as it was.
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
    meta = dict(meta or {})

    with _locked(_lock_path(folder, stem), timeout=lock_timeout, what=f"report {target}"):
        _tidy(folder, stem)
        started = datetime.now(timezone.utc)
        clock = time.perf_counter()
        render_id = f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
        stage = Path(tempfile.mkdtemp(dir=folder, prefix=f".{stem}.{os.getpid()}-", suffix=".tmp"))
        try:
            executed = stage / f"{stem}.ipynb"
            try:
                execute_notebook(source, executed, params, cwd=cwd, progress=progress, timeout=timeout,
                                 env={ATTACH_DIR_ENV: str(stage.resolve()), ATTACH_STEM_ENV: stem})
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
            external = external_resources(page)
            if external:
                os.replace(executed, failed)
                raise RenderError(_external_message(target.name, external, failed), executed=failed)
            (stage / target.name).write_text(_stamp(page, render_id), encoding="utf-8")
            attached = attachments_of(stage, stem)
            files = [executed.name, *attached]
            if pdf:
                print_pdf(stage / target.name, stage / f"{stem}.pdf")
                files.append(f"{stem}.pdf")

            record = {
                "title": str(title),
                "notebook": str(source),
                "parameters": params,
                "render_id": render_id,
                "rendered_at": started.isoformat(timespec="seconds"),
                "duration_seconds": round(time.perf_counter() - clock, 2),
                "report": target.name,
                "executed_notebook": f"{stem}.ipynb",
                "pdf": f"{stem}.pdf" if pdf else None,
                "attachments": attached,
                "scope": meta.get("scope"),
                "scope_value": meta.get("scope_value"),
                "package_version": _version(),
                "python": platform.python_version(),
                "meta": meta,
            }
            (stage / f"{stem}.json").write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
            files += [f"{stem}.json", target.name]
            # a PDF or attachment of an earlier run would no longer match the report
            stale = [n for n in attachments_of(folder, stem) if n not in attached]
            _publish(stage, folder, files, stale + ([] if pdf else [f"{stem}.pdf"]))
            failed.unlink(missing_ok=True)
        finally:
            if not (stage / _JOURNAL).exists():  # else: left for the next run to finish
                shutil.rmtree(stage, ignore_errors=True)
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


def _scope_label(record: Mapping[str, Any], stem: str) -> tuple[str, str]:
    """(scope, name shown in the index) from a report's record; the file stem when it has none."""
    meta = record.get("meta") if isinstance(record.get("meta"), Mapping) else {}
    scope = record.get("scope") or meta.get("scope")
    value = record.get("scope_value") if record.get("scope_value") not in (None, "") else meta.get("scope_value")
    if scope == "company":
        return "company", "Company"
    if isinstance(scope, str) and scope and value not in (None, ""):
        return scope, f"{scope.capitalize()} {value}"
    return ("company", "company") if stem == "company" else (str(scope or ""), stem)


def write_index(reports_dir: str | os.PathLike, *, lock_timeout: float | None = 300.0) -> Path:
    """(Re)write ``reports_dir/index.html``: every ``<cadence>/<period>/<scope>.html`` report.

    Reports are grouped by cadence (monthly, quarterly, semiannual, annual, then any other
    folder), newest period first; within a period the company report comes first, then the
    other scopes alphabetically. A report's scope is shown by its real name (``Team 销售一部``),
    read from the ``scope`` / ``scope_value`` of its ``<scope>.json`` record (the file name when
    there is no record). Each row links (relatively) to the report and its PDF, and shows the
    render time from the record (the file time when missing, or when the record belongs to
    another render than the page). A ``<scope>.failed.ipynb`` newer than the report (or without
    any report) is flagged as a failed last run. The page is self-contained and every name is
    HTML-escaped.

    Index writers take turns (``.index.lock``, waiting up to ``lock_timeout`` seconds), so the
    last one to write has seen every report published before it started. Each first finishes
    or removes what dead renders left in the period folders (see :func:`render`).
    """
    root = Path(reports_dir)
    root.mkdir(parents=True, exist_ok=True)
    with _locked(_lock_path(root, "index"), timeout=lock_timeout, what=f"the index {root / 'index.html'}"):
        _tidy(root, "index")
        for folder in sorted(root.glob("*/*")):
            if folder.is_dir() and not any(p.startswith(".") for p in folder.relative_to(root).parts):
                _tidy(folder)
        return _write_index(root)


def _write_index(root: Path) -> Path:
    rows: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, str, str]] = set()
    candidates = sorted(root.glob("*/*/*.html")) + sorted(root.glob("*/*/*.failed.ipynb"))
    for path in candidates:
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue  # temporary files of a render in progress
        cadence, period = rel.parts[0], rel.parts[1]
        stem = path.name.removesuffix(".failed.ipynb") if path.name.endswith(".failed.ipynb") else path.stem
        key = (cadence, period, stem)
        if key in seen:
            continue
        seen.add(key)
        report = path.with_name(f"{stem}.html")
        failed = path.with_name(f"{stem}.failed.ipynb")
        record = _read_record(path.with_name(f"{stem}.json"))
        scope, label = _scope_label(record, stem)
        if report.exists():
            file_time = datetime.fromtimestamp(report.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
            page_id = _page_render_id(report)
            mismatch = page_id is not None and record.get("render_id") not in (None, page_id)
            when = file_time if mismatch else (record.get("rendered_at") or file_time)
        else:
            when = datetime.fromtimestamp(failed.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
        last_failed = failed.exists() and (
            not report.exists() or failed.stat().st_mtime >= report.stat().st_mtime
        )
        rows.setdefault(cadence, []).append(
            {
                "period": period,
                "scope": scope,
                "label": label,
                "title": str(record.get("title") or f"{cadence} review {period}, {label}"),
                "report": rel.with_name(report.name).as_posix() if report.exists() else None,
                "pdf": rel.with_name(f"{stem}.pdf").as_posix() if path.with_name(f"{stem}.pdf").exists() else None,
                "failed": rel.with_name(failed.name).as_posix() if last_failed else None,
                "when": when,
            }
        )

    order = [c for c in CADENCES if c in rows] + sorted(c for c in rows if c not in CADENCES)
    sections = []
    for cadence in order:
        entries = sorted(rows[cadence], key=lambda r: (r["scope"] != "company", r["label"].casefold(), r["label"]))
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
                f"<tr><td>{html.escape(r['period'])}</td><td>{html.escape(r['label'])}</td>"
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
