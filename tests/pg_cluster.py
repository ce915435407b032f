"""A throw-away PostgreSQL + PostGIS cluster on loopback, for the PostGIS leg of the tests.

``with pg_cluster() as cluster:`` runs ``initdb`` into a temporary folder,
starts ``postgres`` on 127.0.0.1 at a free port (its Unix socket in the same
folder, durability off: ``fsync``, ``synchronous_commit`` and
``full_page_writes``), creates the database ``crimemap_test`` with the
``postgis`` extension, yields a :class:`Cluster` whose ``url`` is
``postgresql://postgres@127.0.0.1:<port>/crimemap_test``, then stops the
server and removes the folder.

``initdb`` refuses to run as root: when root, the cluster belongs to the
``postgres`` user that Debian's ``postgresql`` package creates, and the
server commands run through ``runuser``.

Command line::

    python tests/pg_cluster.py              # print the URL, keep the cluster until Ctrl-C
    python tests/pg_cluster.py -- CMD ...   # run CMD with the PostGIS leg's environment, then stop

The second form sets ``CRIMEMAP_DATABASE_URL``, ``CRIMEMAP_DATABASE_SCHEMA=instance``
and ``CRIMEMAP_TEST_BACKEND=postgis`` (docs/ci.md) and exits with CMD's status.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

DATABASE = "crimemap_test"
PG_VERSION = "15"


class ClusterError(RuntimeError):
    """PostgreSQL or PostGIS is missing, or the cluster did not start."""


def find_bin_dir():
    """The folder holding ``initdb``, ``pg_ctl`` and ``psql``, or None when PostgreSQL is not installed.

    ``CRIMEMAP_PG_BIN`` wins; then Debian's ``/usr/lib/postgresql/15/bin`` (or
    the newest other version there); then ``initdb`` on the PATH.
    """
    explicit = os.environ.get("CRIMEMAP_PG_BIN")
    if explicit:
        return Path(explicit) if (Path(explicit) / "initdb").exists() else None
    debian = Path("/usr/lib/postgresql")
    preferred = debian / PG_VERSION / "bin"
    if (preferred / "initdb").exists():
        return preferred
    others = sorted((p for p in debian.glob("*/bin") if (p / "initdb").exists()),
                    key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if others:
        return others[-1]
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def missing_reason():
    """Why a cluster cannot be started here (a sentence), or None when it can."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        return ("PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on the PATH; "
                "apt-get install postgresql postgresql-15-postgis-3)")
    share = _share_dir(bin_dir)
    if share is not None and not (share / "extension" / "postgis.control").exists():
        return f"PostGIS is not installed for {bin_dir} (apt-get install postgresql-15-postgis-3)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to own the cluster (initdb refuses root)"
    return None


def _share_dir(bin_dir):
    try:
        out = subprocess.run([str(bin_dir / "pg_config"), "--sharedir"], capture_output=True, text=True,
                             check=True, timeout=30).stdout.strip()
        return Path(out)
    except (OSError, subprocess.SubprocessError):
        return None


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A running throw-away cluster: ``url``, ``port``, ``folder``; ``stop()``, ``start()``, ``psql(sql)``."""

    def __init__(self, bin_dir, folder, port, user):
        self.bin_dir = bin_dir
        self.folder = folder
        self.data = folder / "data"
        self.socket_dir = folder / "socket"
        self.log = folder / "postgres.log"
        self.port = port
        self.user = user
        self.url = f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"

    def _run(self, tool, *args, check=True, timeout=120):
        command = [str(self.bin_dir / tool), *map(str, args)]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.folder)
        if check and result.returncode != 0:
            raise ClusterError(f"{tool} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
                               + self._log_tail())
        return result

    def _log_tail(self):
        try:
            return "\n--- postgres.log ---\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def initdb(self):
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8",
                  "--locale=C", timeout=300)

    def start(self):
        """Start the server (again, after :meth:`stop`) and wait until it accepts connections."""
        options = " ".join([
            "-c listen_addresses=127.0.0.1", f"-p {self.port}", f"-k {self.socket_dir}",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
            "-c max_connections=300", "-c shared_buffers=64MB", "-c log_min_messages=warning",
        ])
        self._run("pg_ctl", "start", "-w", "-t", "120", "-D", self.data, "-l", self.log, "-o", options,
                  timeout=180)

    def stop(self, mode="fast"):
        """Stop the server (``pg_ctl stop -m MODE``); the data folder stays."""
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-D", self.data, "-m", mode, timeout=120)

    def running(self):
        """True while the server's postmaster runs."""
        return self._run("pg_ctl", "status", "-D", self.data, check=False).returncode == 0

    def psql(self, sql, database=DATABASE):
        """Run ``sql`` through ``psql`` as ``postgres`` over TCP; returns its unaligned output."""
        result = subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", "postgres", "-d", database, "-c", sql],
            capture_output=True, text=True, timeout=120, env=dict(os.environ, PGCONNECT_TIMEOUT="10"))
        if result.returncode != 0:
            raise ClusterError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()


@contextlib.contextmanager
def pg_cluster(port=None):
    """Start a throw-away cluster with ``crimemap_test`` + PostGIS; yield it; stop and remove it.

    Raises
    ------
    ClusterError
        PostgreSQL or PostGIS is missing, or the server did not start.
    """
    reason = missing_reason()
    if reason:
        raise ClusterError(reason)
    bin_dir = find_bin_dir()
    user = "postgres" if os.geteuid() == 0 else None
    # As root the folder must be reachable by the postgres user: not under a private TMPDIR such as /root/tmp.
    folder = Path(tempfile.mkdtemp(prefix="crimemap-pg-", dir="/tmp" if user is not None else None))
    started = False
    try:
        (folder / "socket").mkdir()
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in (folder, folder / "socket"):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        cluster = None
        for attempt in range(5):  # a free port can be taken between choosing it and binding it
            cluster = Cluster(bin_dir, folder, port or free_port(), user)
            if attempt == 0:
                cluster.initdb()
            try:
                cluster.start()
                started = True
                break
            except ClusterError:
                if port is not None or attempt == 4:
                    raise
        cluster.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
        try:
            cluster.psql("CREATE EXTENSION postgis")
        except ClusterError as error:
            raise ClusterError(f"PostGIS is not usable: {error}") from None
        yield cluster
    finally:
        if started:
            with contextlib.suppress(ClusterError, subprocess.SubprocessError, OSError):
                Cluster(bin_dir, folder, 0, user).stop(mode="immediate")
        shutil.rmtree(folder, ignore_errors=True)


def leg_environment(url):
    """The environment variables of the PostGIS test leg (docs/ci.md)."""
    return {"CRIMEMAP_DATABASE_URL": url, "CRIMEMAP_DATABASE_SCHEMA": "instance",
            "CRIMEMAP_TEST_BACKEND": "postgis"}


def main(argv):
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    # SIGTERM (CI timeouts, kill) unwinds through the context manager like Ctrl-C does.
    # (and so does SIGINT, which a shell ignores in background jobs unless it is set back).
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pg_cluster() as cluster:
            if not command:
                print(cluster.url, flush=True)
                try:
                    signal.pause()
                except KeyboardInterrupt:
                    pass
                return 0
            proc = subprocess.Popen(command, env=dict(os.environ, **leg_environment(cluster.url)))
            try:
                return proc.wait()
            except KeyboardInterrupt:
                proc.terminate()
                return proc.wait()
    except ClusterError as error:
        print(f"pg_cluster: {error}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
