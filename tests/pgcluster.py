"""Throw-away PostgreSQL clusters for tests that stop, restart or replicate a server (tests/faults/), so the
shared private cluster of `make test` is never touched. Each lives in its own directory under /tmp (short:
it holds the unix socket), runs as `postgres` (initdb refuses root) on that socket only, fsync off."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

PGBIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(*cmd: str, **kw) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *cmd], check=True, capture_output=True, **kw)


@dataclass
class Cluster:
    base: Path

    @classmethod
    def create(cls, *, prefix: str = "gm-pg-") -> Cluster:
        base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        base.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(base, "postgres", "postgres")
        return cls(base)

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> str:
        return str(self.base)

    def url(self, dbname: str, user: str = "gridmgmt") -> str:
        return f"postgis://{user}@{quote(self.socket_dir, safe='')}/{dbname}"

    def settings_dict(self, dbname: str) -> dict:
        return {"NAME": dbname, "HOST": self.socket_dir, "USER": "gridmgmt", "PASSWORD": "", "PORT": ""}

    def init(self) -> None:
        _as_postgres(str(PGBIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                     "--locale=C.UTF-8", "--no-sync")  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = ''\nunix_socket_directories = '{self.socket_dir}'\nfsync = off\n"
                "synchronous_commit = off\nfull_page_writes = off\njit = off\ntimezone = 'Asia/Shanghai'\n"
                "max_connections = 100\nshared_buffers = 64MB\n"
            )

    @classmethod
    def replica_of(cls, primary: Cluster) -> Cluster:
        """A hot standby streaming from `primary`: pg_basebackup -R (standby.signal + primary_conninfo), on a
        socket of its own. Started."""
        replica = cls.create(prefix="gm-replica-")
        _as_postgres(str(PGBIN / "pg_basebackup"), "-h", primary.socket_dir, "-U", "postgres", "-D",
                     str(replica.data), "-R", "-X", "stream", "-c", "fast", "--no-sync")  # fmt: skip
        with (replica.data / "postgresql.conf").open("a") as conf:
            conf.write(f"unix_socket_directories = '{replica.socket_dir}'\nhot_standby = on\n")
        replica.start()
        return replica

    def lsn_replayed(self) -> str:
        return self.psql("SELECT pg_last_wal_replay_lsn()")

    def start(self) -> None:
        log = self.base / "postgresql.log"
        _as_postgres(str(PGBIN / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        _as_postgres(str(PGBIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, str(PGBIN / "pg_ctl"), "-D", str(self.data), "status"], capture_output=True)
        return done.returncode == 0

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        args = ["-h", self.socket_dir, "-U", "postgres", "-d", dbname, "-qtAX", "-v", "ON_ERROR_STOP=1"]
        out = subprocess.run(
            ["psql", *args, "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def _dump(self, source: dict, *extra: str) -> Path:
        dump = self.base / f"copy-{len(list(self.base.glob('copy-*')))}.dump"
        env = {**os.environ, "PGPASSWORD": source.get("PASSWORD") or ""}
        src = ["-h", source["HOST"] or "localhost", "-U", source["USER"], "-d", source["NAME"]]
        if source.get("PORT"):
            src += ["-p", str(source["PORT"])]
        subprocess.run(["pg_dump", "-Fc", *extra, "-f", str(dump), *src], check=True, capture_output=True, env=env)
        return dump

    def _restore(self, dump: Path, name: str, *extra: str) -> None:
        subprocess.run(
            ["pg_restore", "-h", self.socket_dir, "-U", "gridmgmt", "-d", name, "--no-owner", *extra, str(dump)],
            check=True,
            capture_output=True,
        )
        dump.unlink()

    def copy_database(self, *, source: dict, name: str) -> None:
        """The database of Django settings `source` (schema and data), as `name` owned by role gridmgmt."""
        self.psql("CREATE ROLE gridmgmt LOGIN SUPERUSER")
        self.psql(f"CREATE DATABASE {name} OWNER gridmgmt")
        self._restore(self._dump(source), name, "-j", "2")

    def copy_data(self, *, source: dict, name: str) -> None:
        """The rows of `source` into `name`, whose schema is already the same (`copy_schema`, `from_template`);
        triggers (the append-only guards) off while loading."""
        self._restore(self._dump(source, "--data-only"), name, "--data-only", "--disable-triggers")

    def copy_schema(self, *, source: dict, name: str) -> None:
        self.psql("CREATE ROLE gridmgmt LOGIN SUPERUSER")
        self.psql(f"CREATE DATABASE {name} OWNER gridmgmt")
        self._restore(self._dump(source, "--schema-only"), name)

    @classmethod
    def from_template(cls, template: Cluster, *, prefix: str) -> Cluster:
        """A copy of a stopped cluster's files (initdb and a schema paid once per test session), started."""
        cluster = cls.create(prefix=prefix)
        subprocess.run(["cp", "-a", str(template.data), str(cluster.data)], check=True)
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.write(f"unix_socket_directories = '{cluster.socket_dir}'\n")
        (cluster.data / "postmaster.pid").unlink(missing_ok=True)
        cluster.start()
        return cluster

    def destroy(self) -> None:
        if self.data.exists() and self.running():
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


_templates: dict[str, Cluster] = {}


def cluster_with_copy(*, source: dict, name: str, prefix: str) -> Cluster:
    """A started cluster of its own holding database `name`: `source`'s schema (made once per process into a
    template cluster, removed at exit) and its current rows."""
    key = f"{source['NAME']}:{name}"
    if key not in _templates:
        template = Cluster.create(prefix="gm-template-")
        atexit.register(template.destroy)
        template.init()
        template.start()
        template.copy_schema(source=source, name=name)
        template.stop()
        _templates[key] = template
    cluster = Cluster.from_template(_templates[key], prefix=prefix)
    cluster.copy_data(source=source, name=name)
    return cluster
