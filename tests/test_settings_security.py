"""Issue 9, "fail closed": the settings as a server would load them from a clean environment (no var/local.env),
each in its own interpreter."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETUP = "import django, json; django.setup(); from django.conf import settings as s; "


def run(code: str, **env) -> subprocess.CompletedProcess:
    """`python -c code` in a clean environment: no DEBUG, no SECRET_KEY, no var/local.env."""
    clean = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "gridmgmt.settings",
        "LOCAL_ENV_FILE": "",
        **env,
    }
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)


def key() -> str:
    return secrets.token_urlsafe(50)


def test_refuses_to_load_without_a_secret_key():
    result = run(SETUP + "print(s.DEBUG)")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY" in result.stderr


def test_refuses_a_short_or_placeholder_key():
    for bad in ["short", "dev-insecure-gridmgmt-key-change-me-in-production", "django-insecure-" + "x" * 60, "a" * 60]:
        result = run(SETUP + "print(s.DEBUG)", SECRET_KEY=bad)
        assert result.returncode != 0 and "ImproperlyConfigured" in result.stderr, bad


def test_debug_defaults_off_and_https_settings_on():
    fields = [
        "DEBUG",
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "ALLOWED_HOSTS",
    ]
    result = run(SETUP + f"print(json.dumps({{f: getattr(s, f) for f in {fields!r}}}))", SECRET_KEY=key())
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["DEBUG"] is False
    assert values["SECURE_SSL_REDIRECT"] and values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] > 0
    assert values["ALLOWED_HOSTS"] == []  # nothing served until the operator names the host


def test_development_is_explicit():
    result = run(SETUP + "print(json.dumps([s.DEBUG, s.SECURE_SSL_REDIRECT, len(s.SECRET_KEY)]))", DEBUG="true")
    assert result.returncode == 0, result.stderr
    debug, redirect, key_length = json.loads(result.stdout)
    assert debug is True and redirect is False and key_length >= 50  # a throw-away key, never a committed one


def test_proxy_header_from_the_environment():
    code = SETUP + "print(json.dumps(s.SECURE_PROXY_SSL_HEADER))"
    result = run(code, SECRET_KEY=key(), SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")
    assert json.loads(result.stdout) == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_anonymous_500_shows_no_debug_page():
    code = SETUP + (
        "from django.core.handlers.exception import response_for_exception; "
        "from django.test import RequestFactory; "
        "request = RequestFactory().get('/api/public/cases/x/'); "
        "from django.contrib.auth.models import AnonymousUser; request.user = AnonymousUser(); "
        "response = response_for_exception(request, RuntimeError('boom-secret-local')); "
        "print(json.dumps([response.status_code, response.content.decode()]))"
    )
    result = run(code, SECRET_KEY=key())
    assert result.returncode == 0, result.stderr
    status, body = json.loads(result.stdout)
    assert status == 500
    for leak in ["Traceback", "boom-secret-local", "SECRET_KEY", "settings", "Request information"]:
        assert leak not in body


def test_deploy_check_passes_under_the_documented_production_environment():
    env = {
        "DEBUG": "false",
        "SECRET_KEY": key(),
        "ALLOWED_HOSTS": "grid.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://grid.example.org",
        "SECURE_HSTS_SECONDS": "3600",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    }
    code = "import sys; from django.core.management import execute_from_command_line as run; run(sys.argv)"
    clean = {"PATH": os.environ.get("PATH", ""), "DJANGO_SETTINGS_MODULE": "gridmgmt.settings", "LOCAL_ENV_FILE": ""}
    result = subprocess.run(
        [sys.executable, "-c", code, "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
