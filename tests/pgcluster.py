"""Throw-away PostgreSQL clusters for tests that stop, restart or replicate a server (tests/faults/), so the
shared private cluster of `make test` is never touched. Each lives in its own directory under /tmp (short:
it holds the unix socket), runs as `postgres` (initdb refuses root) on that socket only, fsync off."""

from __future__ import annotations

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
                     "--locale=C.UTF-8")  # fmt: skip
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
                     str(replica.data), "-R", "-X", "stream", "-c", "fast")  # fmt: skip
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

    def copy_database(self, *, source: dict, name: str) -> None:
        """The database of Django settings `source` (schema and data), as `name` owned by role gridmgmt."""
        self.psql("CREATE ROLE gridmgmt LOGIN SUPERUSER")
        self.psql(f"CREATE DATABASE {name} OWNER gridmgmt")
        dump = self.base / "copy.dump"
        env = {**os.environ, "PGPASSWORD": source.get("PASSWORD") or ""}
        src = ["-h", source["HOST"] or "localhost", "-U", source["USER"], "-d", source["NAME"]]
        if source.get("PORT"):
            src += ["-p", str(source["PORT"])]
        subprocess.run(["pg_dump", "-Fc", "-f", str(dump), *src], check=True, capture_output=True, env=env)
        subprocess.run(
            ["pg_restore", "-h", self.socket_dir, "-U", "gridmgmt", "-d", name, "--no-owner", "-j", "2", str(dump)],
            check=True,
            capture_output=True,
        )
        dump.unlink()

    def destroy(self) -> None:
        if self.data.exists() and self.running():
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)
