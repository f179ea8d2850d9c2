"""The production configuration of deploy/ on this machine, under var/prod-check/ (`make prod-check`):
Debian's nginx run from the deploy/nginx/gridmgmt.conf site (paths, ports and names substituted) with `-p`/`-c`
on a generated main config, a self-signed certificate made with openssl, two uvicorn workers started as
deploy/systemd/gridmgmt@.service starts them, the environment of deploy/gridmgmt.env (DEBUG off, a fresh
SECRET_KEY), collectstatic's hashed output, and the private PostgreSQL (the test database) and Redis.
High ports only; the system's nginx service and /etc are never touched. `stop()` takes everything down,
and `start()` first ends whatever a killed earlier run left (only processes named in its pid files)."""

from __future__ import annotations

import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.live import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HOST = "localhost"


def _worker_cmd(port: int) -> list[str]:
    """ExecStart of deploy/systemd/gridmgmt@.service for instance `port`, on this checkout's venv."""
    unit = (DEPLOY / "systemd" / "gridmgmt@.service").read_text()
    line = re.search(r"^ExecStart=((?:.*\\\n)*.*)$", unit, re.M).group(1)
    args = line.replace("\\\n", " ").replace("%i", str(port)).split()
    assert args[0] == "/srv/gridmgmt/app/.venv/bin/uvicorn", args[0]
    return [sys.executable, "-m", "uvicorn", *args[1:]]


def _substitute(text: str, replacements: list[tuple[str, str]]) -> str:
    """Each literal must occur in the deploy file: an edit there that this check does not follow fails loudly."""
    for old, new in replacements:
        assert old in text, f"deploy/nginx/gridmgmt.conf no longer contains {old!r}: update tests/prod_check/stack.py"
        text = text.replace(old, new)
    return text


@dataclass
class Stack:
    base: Path
    database_url: str
    redis_url: str
    https_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    worker_ports: list[int] = field(default_factory=lambda: [free_port(), free_port()])
    procs: list[subprocess.Popen] = field(default_factory=list)
    nginx_started: bool = False

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def cert(self) -> Path:
        return self.base / "tls" / "cert.pem"

    @property
    def static_root(self) -> Path:
        return self.base / "static"

    @property
    def media_root(self) -> Path:
        return self.base / "media"

    @property
    def run_dir(self) -> Path:
        return self.base / "run"

    def env(self) -> dict[str, str]:
        """deploy/gridmgmt.env's production values for this machine."""
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME", "TZ")}
        return {
            **keep,
            "DJANGO_SETTINGS_MODULE": "gridmgmt.settings",
            "PYTHONUNBUFFERED": "1",
            "LOCAL_ENV_FILE": "",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": HOST,
            "CSRF_TRUSTED_ORIGINS": self.url,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CACHE_KEY_PREFIX": f"prodcheck-{uuid.uuid4().hex}",  # limits of this run only
            "NUM_PROXIES": "1",
            "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
            "SECURE_HSTS_SECONDS": "3600",
            "SERVE_STATIC": "false",
            "STATIC_ROOT": str(self.static_root),
            "MEDIA_ROOT": str(self.media_root),
            "MEDIA_ACCEL_REDIRECT": "true",
            "PROMETHEUS_MULTIPROC_DIR": str(self.run_dir / "metrics"),
        }

    # --- start / stop ---------------------------------------------------------------------------------------

    def start(self) -> None:
        self.leftovers_stop()
        shutil.rmtree(self.base, ignore_errors=True)
        for sub in ("tls", "static", "media", "run/metrics", "nginx/logs", "nginx/temp"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        env = self.env()
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        self.certificate_make()
        for port in self.worker_ports:
            log = (self.run_dir / f"uvicorn-{port}.log").open("wb")
            proc = subprocess.Popen(_worker_cmd(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            self.procs.append(proc)
            (self.run_dir / f"uvicorn-{port}.pid").write_text(str(proc.pid))
        for port, proc in zip(self.worker_ports, self.procs, strict=True):
            # The workers refuse plain HTTP from outside nginx with a redirect: any answer means "up".
            wait_until_up(f"http://127.0.0.1:{port}/healthz", proc, self.run_dir / f"uvicorn-{port}.log", 60)
        self.nginx_start()

    def certificate_make(self) -> None:
        tls = self.base / "tls"
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"]
        name = ["-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST},IP:127.0.0.1"]
        subprocess.run(
            ["openssl", "req", "-x509", *key, *name, "-keyout", str(tls / "key.pem"), "-out", str(self.cert)],
            check=True,
            capture_output=True,
        )
        (tls / "key.pem").chmod(0o600)

    def nginx_site(self) -> str:
        site = (DEPLOY / "nginx" / "gridmgmt.conf").read_text()
        upstream = "\n".join(f"    server 127.0.0.1:{p};" for p in self.worker_ports)
        return _substitute(
            site,
            [
                ("    server 127.0.0.1:8001;\n    server 127.0.0.1:8002;", upstream),
                ("listen 80;", f"listen 127.0.0.1:{self.http_port};"),
                ("listen [::]:80;\n", ""),
                ("listen 443 ssl http2;", f"listen 127.0.0.1:{self.https_port} ssl http2;"),
                ("listen [::]:443 ssl http2;\n", ""),
                ("return 301 https://$host$request_uri;", f"return 301 https://$host:{self.https_port}$request_uri;"),
                ("/etc/letsencrypt/live/grid.example.org/fullchain.pem", str(self.cert)),
                ("/etc/letsencrypt/live/grid.example.org/privkey.pem", str(self.base / "tls" / "key.pem")),
                ("server_name grid.example.org;", f"server_name {HOST};"),
                ("/var/log/nginx/gridmgmt.access.log", str(self.base / "nginx" / "logs" / "access.log")),
                ("root /srv/gridmgmt;", f"root {self.base};"),  # STATIC_ROOT = <root>/static
                ("alias /srv/gridmgmt/media/;", f"alias {self.media_root}/;"),
            ],
        )

    def nginx_main(self) -> str:
        """The main config around the site: prefix-relative pid, logs and temp directories, no system paths."""
        n = self.base / "nginx"
        user = ""
        if os.geteuid() == 0:
            # As root, nginx's workers run as the `user` named here (default nobody). They must read the checkout's
            # static files and photos and write their temp files under it, and a checkout may sit in a directory
            # only its owner can enter (`mktemp -d` makes 0700): run them as that owner. A deployment instead
            # gives www-data read access to STATIC_ROOT and MEDIA_ROOT (deploy/, README "Deploying").
            st = self.base.stat()
            user = f"user {pwd.getpwuid(st.st_uid).pw_name} {grp.getgrgid(st.st_gid).gr_name};\n"
        kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        temps = "\n".join(f"    {kind}_temp_path {n / 'temp' / kind};" for kind in kinds)
        return (
            f"{user}worker_processes 1;\npid {n / 'nginx.pid'};\nerror_log {n / 'logs' / 'error.log'} warn;\n"
            "events { worker_connections 512; }\n"
            "http {\n    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n"
            f"    sendfile on;\n    tcp_nopush on;\n{temps}\n    include {n / 'gridmgmt.conf'};\n}}\n"
        )

    def nginx_cmd(self, *extra: str) -> list[str]:
        n = self.base / "nginx"
        return [NGINX, "-p", f"{n}/", "-e", str(n / "logs" / "error.log"), "-c", str(n / "nginx.conf"), *extra]

    def nginx_start(self) -> None:
        n = self.base / "nginx"
        (n / "gridmgmt.conf").write_text(self.nginx_site())
        (n / "nginx.conf").write_text(self.nginx_main())
        subprocess.run(self.nginx_cmd("-t", "-q"), check=True)
        subprocess.run(self.nginx_cmd(), check=True)  # daemonizes; the master's pid is in nginx.pid
        self.nginx_started = True
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen on port {self.https_port}")

    def stop(self) -> None:
        if self.nginx_started:
            subprocess.run(self.nginx_cmd("-s", "quit"), check=False, capture_output=True)
            self._pidfile_wait(self.base / "nginx" / "nginx.pid")
            self.nginx_started = False
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        for pidfile in self.run_dir.glob("*.pid"):
            pidfile.unlink(missing_ok=True)

    @staticmethod
    def _pidfile_wait(pidfile: Path, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def leftovers_stop(self) -> None:
        """End the nginx master and workers a killed earlier run left behind — by the pids it recorded, and
        only when that pid still runs a command naming this directory."""
        pidfiles = [self.base / "nginx" / "nginx.pid", *self.run_dir.glob("uvicorn-*.pid")]
        for pidfile in pidfiles:
            try:
                pid = int(pidfile.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except (OSError, ValueError):
                continue
            if str(self.base) in cmdline:  # our nginx master (its -p names this directory)
                os.kill(pid, signal.SIGQUIT)
            elif f"MEDIA_ROOT={self.media_root}".encode() in environ:  # one of our workers
                os.kill(pid, signal.SIGTERM)
        for pidfile in pidfiles:
            self._pidfile_wait(pidfile, 5)
