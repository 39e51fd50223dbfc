"""A throwaway PostgreSQL server for tests and benchmarks.

Debian's ``postgresql`` package gives ``initdb`` and ``pg_ctl``; a cluster is made in a
temporary folder, listens on a free local port (and a socket in that folder), trusts local
connections, and is stopped and removed at the end. PostgreSQL refuses to run as root, so under
root the cluster belongs to the ``postgres`` user the package creates.

    with PgServer() as pg:
        url = pg.url("crm")   # postgresql://postgres@127.0.0.1:PORT/workbench?schema=crm
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def pg_bin(name: str) -> str | None:
    """The path of PostgreSQL program ``name`` (``initdb`` is not on PATH in Debian)."""
    found = shutil.which(name)
    if found:
        return found
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        for version in sorted(root.iterdir(), reverse=True):
            if (version / "bin" / name).is_file():
                return str(version / "bin" / name)
    return None


def available() -> str | None:
    """None when a server can be started here, else why not."""
    for name in ("initdb", "pg_ctl"):
        if pg_bin(name) is None:
            return f"{name} not found: install Debian's postgresql package"
    if os.getuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to own the cluster"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """A PostgreSQL cluster in a temporary folder, running while the ``with`` block does."""

    def __init__(self, database: str = "workbench") -> None:
        self.database = database
        self.port = _free_port()
        # under root the cluster belongs to postgres, which must reach the folder: not a private TMPDIR
        base = "/tmp" if os.getuid() == 0 and os.path.isdir("/tmp") else None
        self.folder = Path(tempfile.mkdtemp(prefix="workbench-pg-", dir=base))
        self.data = self.folder / "data"
        self.user = "postgres"

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        prefix: list[str] = []
        if os.getuid() == 0:  # initdb and postgres refuse root
            prefix = ["runuser", "-u", "postgres", "--"]
        return subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> PgServer:
        why = available()
        if why:
            raise RuntimeError(why)
        if os.getuid() == 0:
            shutil.chown(self.folder, "postgres")
        self._run(pg_bin("initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8")
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c timezone=UTC")
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"),
                  "-w", "-t", "60", "start")
        self._run(pg_bin("createdb") or "createdb", "-h", str(self.folder), "-p", str(self.port), "-U", self.user,
                  self.database)
        return self

    def stop(self) -> None:
        if self.data.is_dir():
            try:
                self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except (subprocess.SubprocessError, OSError):
                pass
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, schema: str | None = None) -> str:
        base = f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"
        return f"{base}?schema={schema}" if schema else base

    def __enter__(self) -> PgServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
