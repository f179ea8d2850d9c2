"""Settings from the environment. Production is the default: DEBUG is off unless set, and then the server
refuses to start without a real SECRET_KEY (README, "Security").

`make demo` / `make test` start a private PostgreSQL and Redis and write their URLs — and the development
values DEBUG=true and a generated SECRET_KEY — to `var/local.env` (LOCAL_ENV_FILE names another file, "" none);
values from the real environment always win over that file.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def _load_local_env(path: Path) -> None:
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            os.environ.setdefault(key.strip(), value.strip())


_load_local_env(Path(os.environ.get("LOCAL_ENV_FILE", BASE_DIR / "var" / "local.env")))


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [v.strip() for v in os.environ.get(name, default).split(",") if v.strip()]


DEBUG = env_bool("DEBUG", False)
# No default key: tracking tokens, sessions and password resets rest on it. Without DEBUG a missing, short or
# placeholder key stops the server here (the rule of Django's security.W009).
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not DEBUG and (
    len(SECRET_KEY) < 50
    or len(set(SECRET_KEY)) < 5
    or SECRET_KEY.startswith("django-insecure-")
    or "insecure" in SECRET_KEY.lower()
):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters when DEBUG is off, e.g. "
        '`python -c "import secrets; print(secrets.token_urlsafe(50))"` (README, "Security").'
    )
if not SECRET_KEY:  # DEBUG on and no key: a throw-away key for this process only
    import secrets

    SECRET_KEY = secrets.token_urlsafe(50)
# Production: no host is served until ALLOWED_HOSTS names it (Django answers 400).
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# HTTPS, on unless DEBUG (each can be turned off by its variable). Behind a proxy that terminates TLS, set
# SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https — only if that proxy always sets (overwrites) the header,
# e.g. nginx `proxy_set_header X-Forwarded-Proto $scheme;` — or the redirect loops.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    _header, _sep, _value = os.environ["SECURE_PROXY_SSL_HEADER"].partition(",")
    SECURE_PROXY_SSL_HEADER = (_header.strip(), _value.strip() or "https")
# HSTS ramp: start low (3600 = 1 hour, the default without DEBUG), check every host and subdomain works over
# HTTPS, then raise: 86400 (a day), 604800 (a week), 31536000 (a year). Browsers keep the last value they saw.
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "3600"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading is a one-way, domain-wide decision (removal takes months): the operator's, never a default.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_gis",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / Redoc assets served locally (offline)
    "django_filters",
    "channels",
    "geo",
    "gridmgmt",
    "realtime",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # request latency by view (README, "Observability")
    "gridmgmt.observability.requestlog.RequestContextMiddleware",  # request id + user id on every log record
    "gridmgmt.unavailable.DatabaseUnavailableMiddleware",  # database gone for a moment: 503, not 500
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "gridmgmt.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
ASGI_APPLICATION = "gridmgmt.asgi.application"
WSGI_APPLICATION = None

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgis://gridmgmt@localhost:5432/gridmgmt"),
        engine="django.contrib.gis.db.backends.postgis",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "0")),
    )
}
# Under ASGI every request runs in its own thread, so persistent connections (CONN_MAX_AGE) cannot be
# reused; a psycopg pool can. A new PostgreSQL connection costs ~15 ms here — as much as rendering a cell
# tile. DB_POOL_MAX_SIZE=0 turns the pool off (then CONN_MAX_AGE applies).
DB_POOL_MAX_SIZE = int(os.environ.get("DB_POOL_MAX_SIZE", "10"))
if DB_POOL_MAX_SIZE > 0 and not DATABASES["default"].get("CONN_MAX_AGE"):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, DB_POOL_MAX_SIZE),
        "max_size": DB_POOL_MAX_SIZE,
        # Seconds a request waits for a connection (all busy, or PostgreSQL unreachable) before the 503 of
        # gridmgmt.unavailable.
        "timeout": float(os.environ.get("DB_POOL_TIMEOUT", "10")),
    }
    # Django then gives the pool psycopg_pool's connection check: one round trip per checkout, so after
    # PostgreSQL restarts the pool's dead connections are replaced before a request gets one (otherwise each
    # would fail once, as a 503; README, "Faults").
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A streaming replica for reads that tolerate lag (wall snapshot, KPIs): gridmgmt/dbrouter.py, README "Scale-out".
if os.environ.get("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = {
        **dj_database_url.parse(
            os.environ["DATABASE_REPLICA_URL"],
            engine="django.contrib.gis.db.backends.postgis",
            conn_max_age=DATABASES["default"]["CONN_MAX_AGE"],
        ),
        "OPTIONS": dict(DATABASES["default"].get("OPTIONS", {})),
        "CONN_HEALTH_CHECKS": DATABASES["default"].get("CONN_HEALTH_CHECKS", False),
        "TEST": {"MIRROR": "default"},  # tests: the test database stands in for the replica
    }
    DATABASE_ROUTERS = ["gridmgmt.dbrouter.ReplicaRouter"]
# Parallel test runs (helpers, CI shards) may name their own test database.
if os.environ.get("TEST_DB_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DB_NAME"]}

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# The pub/sub layer: it carries only the hub's notices (one per commit batch per process); measured against the
# core layer in bench/layers.py and bench/fanout.py --layer (README, "Real time").
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}
# Redis Sentinel instead of REDIS_URL's one server (README, "Scale-out"): the channel layer and the cache ask
# the sentinels for the current master and follow a failover. REDIS_SENTINELS=host:port,host:port,…
REDIS_SENTINELS = os.environ.get("REDIS_SENTINELS", "")
REDIS_SENTINEL_MASTER = os.environ.get("REDIS_SENTINEL_MASTER", "gridmgmt")
REDIS_SENTINEL_DB = int(os.environ.get("REDIS_SENTINEL_DB", "0"))
REDIS_PASSWORD = os.environ.get("REDIS_PASSWORD", "") or None
if REDIS_SENTINELS:
    from gridmgmt.redissentinel import sentinels_parse

    _sentinel = {
        "master_name": REDIS_SENTINEL_MASTER,
        "sentinels": sentinels_parse(REDIS_SENTINELS),
        "db": REDIS_SENTINEL_DB,
        "password": REDIS_PASSWORD,
    }
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [
        {**_sentinel, "sentinel_kwargs": {"password": REDIS_PASSWORD} if REDIS_PASSWORD else None}
    ]

AUTH_USER_MODEL = "gridmgmt.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
# Working time for deadlines (Monday–Friday, holidays and make-up days from WorkCalendarDay).
WORK_PERIODS = [("09:00", "12:00"), ("13:00", "18:00")]
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "var" / "staticfiles"))
# The ASGI app serves /static/ itself (intranet demo, tests); turn off when nginx serves collectstatic output.
SERVE_STATIC = env_bool("SERVE_STATIC", True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if not SERVE_STATIC:
    # nginx serves collectstatic's output: content-hashed names, cached for a year (gridmgmt/staticstorage.py).
    STORAGES["staticfiles"] = {"BACKEND": "gridmgmt.staticstorage.HashedStaticStorage"}
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))
# Photos on S3-compatible object storage instead of MEDIA_ROOT (gridmgmt/mediastorage.py, README "Scale-out"):
# a private bucket; credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the instance's role).
MEDIA_S3_BUCKET = os.environ.get("MEDIA_S3_BUCKET", "")
# Stream photos through the app instead of redirecting to a presigned URL (storage browsers cannot reach).
MEDIA_S3_PROXY = env_bool("MEDIA_S3_PROXY", False)
if MEDIA_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "gridmgmt.mediastorage.PhotoS3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_S3_BUCKET,
            "location": os.environ.get("MEDIA_S3_PREFIX", ""),
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,  # MinIO, Ceph RGW, OSS, COS …
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            "access_key": os.environ.get("AWS_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
            "addressing_style": os.environ.get("AWS_S3_ADDRESSING_STYLE", "path"),
            "signature_version": "s3v4",
            "default_acl": None,  # the bucket's own (private)
            "querystring_auth": True,
            "querystring_expire": int(os.environ.get("MEDIA_S3_URL_SECONDS", "60")),
            "file_overwrite": False,  # photos get fresh names; never replace an object
            "object_parameters": {"CacheControl": "private, max-age=3600"},
        },
    }
# Photos are answered by gridmgmt.media (access checked per request, DEBUG or not). Behind nginx the view only
# decides and nginx sends the file: `X-Accel-Redirect: /protected-media/<path>` (an `internal` location
# aliased to MEDIA_ROOT, deploy/nginx/gridmgmt.conf). Off: the process streams the file itself.
MEDIA_ACCEL_REDIRECT = env_bool("MEDIA_ACCEL_REDIRECT", False)
MEDIA_ACCEL_PREFIX = "/protected-media/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
# Files per request: Django's default (100) would receive that many before the photo cap (gridmgmt.photos,
# 9 per report) refuses them; above this bound Django refuses the request with a 400 while parsing.
DATA_UPLOAD_MAX_NUMBER_FILES = 20

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes an anonymous request a 401, not a 403.
        "gridmgmt.api.authentication.TokenAuthentication",  # DRF's, its lookup one statement
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON and form bodies capped at DATA_UPLOAD_MAX_MEMORY_SIZE like every other non-file body (413).
    "DEFAULT_PARSER_CLASSES": [
        "gridmgmt.api.parsers.JSONParser",
        "gridmgmt.api.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "PAGE_SIZE": 50,
    # One error shape for every API error: {"code", "detail", "field"}.
    "EXCEPTION_HANDLER": "gridmgmt.api.exceptions.api_exception_handler",
    # Every limit, DRF and plain views alike (gridmgmt/clients.py), per client address (NUM_PROXIES) or per
    # account / Open311 key, counted in the shared cache. "Limits" block below.
    "DEFAULT_THROTTLE_RATES": {
        "public_report": os.environ.get("THROTTLE_PUBLIC_REPORT", "30/hour"),
        "public_action": os.environ.get("THROTTLE_PUBLIC_ACTION", "120/hour"),
        "public_read": os.environ.get("THROTTLE_PUBLIC_READ", "600/hour"),
        "public_map": os.environ.get("THROTTLE_PUBLIC_MAP", "600/hour"),
        "duplicates": os.environ.get("THROTTLE_DUPLICATES", "300/hour"),
        # A return-visit caller's reveals of whole reporter numbers, per user: a day's calls, not a harvest.
        "reporter_phone": os.environ.get("THROTTLE_REPORTER_PHONE", "200/hour"),
        "open311_read": os.environ.get("THROTTLE_OPEN311_READ", "600/hour"),
        "open311_post": os.environ.get("THROTTLE_OPEN311_POST", "120/hour"),  # per api_key
        # Attempts per address, both logins. Patrol phones share carrier NAT addresses and a centre's staff one
        # proxy, so this bounds a flood; guessing one account is stopped by the axes lockout below.
        "login": os.environ.get("THROTTLE_LOGIN", "300/hour"),
        # Tracker positions (/track/osmand): per device identifier (a tracker sends every few seconds at most, a
        # buffer it empties after a dead spot goes as fast as the answers come), and per address (many trackers
        # behind one carrier NAT).
        "track_device": os.environ.get("THROTTLE_TRACK_DEVICE", "120/min"),
        "track_address": os.environ.get("THROTTLE_TRACK_ADDRESS", "3000/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "gridmgmt API",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # validatorUrl: null — Swagger UI would otherwise fetch a badge from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Same-named choice sets of different models get distinct schema names.
    "ENUM_NAME_OVERRIDES": {
        "CategoryKindEnum": "gridmgmt.models.Category.Kind",
        "PhotoKindEnum": "gridmgmt.models.CasePhoto.Kind",
        "LimitUnitEnum": "gridmgmt.models.Category.LimitUnit",
        "UrgencyEnum": "gridmgmt.models.Case.Urgency",
    },
    # Every operation declares the errors it can answer (400/401/403/404/413/429) in the one error shape.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "gridmgmt.api.schema.errors_declare",
        "gridmgmt.api.schema.geojson_lists_fix",
    ],
}

# Basemap: none by default (intranets have no internet). Either a local MBTiles file or a tile URL
# template on the intranet; GCJ-02 tiles (AMap/Tencent) need BASEMAP_DATUM=gcj02 so data is shifted.
BASEMAP_MBTILES = os.environ.get("BASEMAP_MBTILES", "")
BASEMAP_URL = os.environ.get("BASEMAP_URL", "")
BASEMAP_DATUM = os.environ.get("BASEMAP_DATUM", "wgs84")
# How long a worker's cell-tile fast path trusts the grid version stamp it last read from Redis (geo/tile_asgi.py):
# a rebuild's tiles are served at most this late; within it a warm tile costs no Redis read at all. 0 reads the
# stamp on every request (the test servers, whose tests replace it between tests).
TILE_VERSION_SECONDS = float(os.environ.get("TILE_VERSION_SECONDS", "1"))

SILENCED_SYSTEM_CHECKS = [
    # Debian 12 ships GDAL 3.6; Django 5.2 merely notes GDAL < 3.9 will be unsupported later.
    "gis.W001",
]
if not SECURE_HSTS_PRELOAD:
    # W021 asks for HSTS preload: an opt-in the operator makes at the end of the ramp (SECURE_HSTS_PRELOAD).
    SILENCED_SYSTEM_CHECKS.append("security.W021")

# --- Observability (README, "Observability") ---------------------------------------------------------------
# Logs: one JSON object a line in production (timestamp, level, logger, message, request_id, user_id and the
# record's extras), plain text when DEBUG; LOG_FORMAT=json|text overrides. The access log (logger
# gridmgmt.request: method, path without query, route, status, ms) is on in production.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "gridmgmt.observability.requestlog.RequestContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601 in UTC, with microseconds
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s u%(user_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {"gridmgmt.request": {"level": os.environ.get("ACCESS_LOG_LEVEL", "WARNING" if DEBUG else "INFO")}},
}
# /healthz and /readyz answer anyone (a load balancer); /metrics only scrapers from these networks (through
# NUM_PROXIES, like every other client address) or with `Authorization: Bearer $METRICS_TOKEN`.
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128")
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
READY_MEDIA_FREE_BYTES = int(os.environ.get("READY_MEDIA_FREE_BYTES", str(512 * 2**20)))
# Probes come over plain HTTP from inside the network: no redirect to HTTPS for them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]


# --- Limits (issue 9, "limits that hold") -------------------------------------------------------------------
# Counters live in Redis, shared by every server process (a per-process cache would multiply each limit by
# the number of processes and forget it on restart). Same Redis as the channel layer, which only uses
# pub/sub channels, never keys; the cache's keys carry their own prefix. CACHE_URL may point elsewhere.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("CACHE_URL", REDIS_URL),
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "gridmgmt"),
    }
}
if REDIS_SENTINELS and not os.environ.get("CACHE_URL"):
    CACHES["default"]["LOCATION"] = f"sentinel://{REDIS_SENTINEL_MASTER}/{REDIS_SENTINEL_DB}"  # named, not dialled
    CACHES["default"]["OPTIONS"] = {"pool_class": "gridmgmt.redissentinel.SentinelPool", **_sentinel}
# Proxies in front of the app that append to X-Forwarded-For. 0: trust no X-Forwarded-For (the client is
# REMOTE_ADDR). Behind one nginx with `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`: 1.
# gridmgmt.clients.client_ip reads it for every limit; DRF and django-axes are pointed at the same function.
NUM_PROXIES = int(os.environ.get("NUM_PROXIES", "0"))
REST_FRAMEWORK["NUM_PROXIES"] = NUM_PROXIES
# Login lockout (both /api/token/ and /accounts/login/, and the admin's): django-axes, attempts stored in the
# database. Locked per (username, address) after AXES_FAILURE_LIMIT failures for AXES_COOLOFF_MINUTES;
# `manage.py axes_reset` lifts every lock. The "login" rate above bounds attempts per address over all names.
INSTALLED_APPS += ["axes"]
MIDDLEWARE += [
    # %00 in a path or query: 400 before any view runs, not a 500 from PostgreSQL. Innermost on purpose: it is
    # sync-only, so under ASGI Django runs every middleware above it as plain sync calls in the request's one
    # thread. Second in the list it split the chain, and each of Django's middlewares inside it ran each hook
    # through its own thread hop (sync_to_async): ~3 ms of CPU per request (bench/intake.py, issue 8).
    "gridmgmt.badinput.NulRefusalMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into our 429
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "gridmgmt.clients.client_ip"
AXES_LOCKOUT_CALLABLE = "gridmgmt.clients.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# +1 on a case: once per client (account or address) per case for this long.
SUPPORT_ONCE_SECONDS = int(os.environ.get("SUPPORT_ONCE_DAYS", "365")) * 86400
# Camera heartbeats (POST /api/camera-heartbeats/): a camera whose last heartbeat is older than this many seconds
# is marked offline by `manage.py cameras_timeout` (also run on every `cases_escalate` pass). 0: no timeout.
CAMERA_OFFLINE_AFTER = int(os.environ.get("CAMERA_OFFLINE_AFTER", "180"))
# Position history (realtime/positions.py, README "Tracking devices"): days kept (whole day partitions are
# dropped), days of partitions made ahead, how far ahead of the server's clock a fix may be.
POSITION_RETENTION_DAYS = int(os.environ.get("POSITION_RETENTION_DAYS", "30"))
POSITION_PARTITIONS_AHEAD = int(os.environ.get("POSITION_PARTITIONS_AHEAD", "7"))
POSITION_FUTURE_SECONDS = int(os.environ.get("POSITION_FUTURE_SECONDS", "300"))

# --- Notifications outside the browser (README, "Notifications and delivery") --------------------------------
# Each channel is off until the operator configures it. E-mail: Django's SMTP backend, on when EMAIL_HOST is set.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "gridmgmt@localhost")
# Every network call of a delivery (SMTP, the SMS gateway, the robots) gives up after this many seconds.
NOTIFY_TIMEOUT_SECONDS = float(os.environ.get("NOTIFY_TIMEOUT_SECONDS", "10"))
EMAIL_TIMEOUT = NOTIFY_TIMEOUT_SECONDS
# SMS: a government SMS gateway's HTTP API, on when SMS_GATEWAY_URL is set. {phone} and {text} in the URL and in
# SMS_GATEWAY_BODY are replaced, escaped for where they stand (URL-quoted in the URL, JSON-escaped in a JSON body,
# form-encoded in a form body). Success: a 2xx answer whose body matches the regular expression
# SMS_GATEWAY_SUCCESS (empty: any 2xx). SMS_GATEWAY_HEADERS: a JSON object of extra headers (e.g. a token).
SMS_GATEWAY_URL = os.environ.get("SMS_GATEWAY_URL", "")
SMS_GATEWAY_METHOD = os.environ.get("SMS_GATEWAY_METHOD", "POST").upper()
SMS_GATEWAY_CONTENT_TYPE = os.environ.get("SMS_GATEWAY_CONTENT_TYPE", "application/json")
SMS_GATEWAY_BODY = os.environ.get("SMS_GATEWAY_BODY", '{"mobile": "{phone}", "content": "{text}"}')
SMS_GATEWAY_HEADERS = os.environ.get("SMS_GATEWAY_HEADERS", "")
SMS_GATEWAY_SUCCESS = os.environ.get("SMS_GATEWAY_SUCCESS", "")
SMS_SIGNATURE = os.environ.get("SMS_SIGNATURE", "")  # e.g. 【浦东城运】, put before every text
# A user with no preference of their own or of their team gets these channels (those configured, and only
# where the user has an address: e-mail, phone). Empty: in-app only unless a preference says otherwise.
NOTIFY_DEFAULT_CHANNELS = env_list("NOTIFY_DEFAULT_CHANNELS", "email,sms")
# Reporters who left a phone number get an SMS when their case is filed, closed and reopened (SMS configured).
NOTIFY_REPORTER_SMS = env_bool("NOTIFY_REPORTER_SMS", True)
NOTIFY_REPORTER_QUIET = os.environ.get("NOTIFY_REPORTER_QUIET", "21:00-08:00")  # residents' quiet hours; "" none
# Retries: the n-th failure waits NOTIFY_RETRY_SECONDS × 2^(n-1) (at most NOTIFY_RETRY_MAX_SECONDS); after
# NOTIFY_MAX_ATTEMPTS tries a delivery is marked failed.
NOTIFY_RETRY_SECONDS = float(os.environ.get("NOTIFY_RETRY_SECONDS", "60"))
NOTIFY_RETRY_MAX_SECONDS = float(os.environ.get("NOTIFY_RETRY_MAX_SECONDS", "3600"))
NOTIFY_MAX_ATTEMPTS = int(os.environ.get("NOTIFY_MAX_ATTEMPTS", "6"))
# The public site's address, for the tracking link in the reporter's SMS (e.g. https://grid.example.org).
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "").rstrip("/")
# Street loudspeakers (gridmgmt/loudspeakers.py). A call waits for the speakers' answers in the request, in
# parallel, for at most this many seconds (speakers are on the intranet and answer in milliseconds; a dispatcher
# needs the outcome at once): keep it short.
SPEAKER_TIMEOUT_SECONDS = float(os.environ.get("SPEAKER_TIMEOUT_SECONDS", "3"))
SPEAKER_NEAR_M = int(os.environ.get("SPEAKER_NEAR_M", "150"))  # a cell's speakers: within this distance of it
SPEAKER_CALL_MAX = int(os.environ.get("SPEAKER_CALL_MAX", "20"))  # speakers one call reaches at most
SPEAKER_ESPEAK = os.environ.get("SPEAKER_ESPEAK", "espeak-ng")  # for speakers that take an audio file
SPEAKER_VOICE = os.environ.get("SPEAKER_VOICE", "cmn")  # espeak-ng's Mandarin voice
