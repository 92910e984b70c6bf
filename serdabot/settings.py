"""Django settings for SerdaBot.

Everything has an embedded default (SQLite, in-memory channel layer, no credentials),
so a fresh clone runs with nothing configured. Production values come from the
environment or a `.env` file (the environment wins); `.env.example` lists them all.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext

from serdabot.env import SettingError, env_bool, env_float, env_int, env_list, env_str
from serdabot.env_file import load_env_file
from serdabot.redis_hosts import redis_host
from serdabot.time_zone import time_zone

# `.env` at the project root (or SERDABOT_ENV_FILE), under the environment, before any setting
# is read: for whatever imports the settings without manage.py or serdabot.asgi (pytest, a script).
load_env_file()

# Lets `admin.ModelAdmin[Model]` and friends be written with their type parameters.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
# Files the bot writes for itself (generated secret, SQLite database); kept out of git.
LOCAL_DIR = Path(env_str("SERDABOT_LOCAL_DIR") or BASE_DIR / ".local")

DEBUG = env_bool("DEBUG", True)
# Django's own bar for a production key (security.W009).
MIN_SECRET_KEY_LENGTH = 50


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key and not DEBUG and len(key) < MIN_SECRET_KEY_LENGTH:
        # What `check --deploy` calls too short to be secure; the key itself is never printed.
        raise SettingError(
            f"SECRET_KEY: must be at least {MIN_SECRET_KEY_LENGTH} characters when DEBUG is off, "
            f"got {len(key)} (set it to a long random string)"
        )
    if key:
        return key
    if not DEBUG:
        raise SettingError("SECRET_KEY: required when DEBUG is off (set it to a long random string)")
    # Local runs get a secret generated once and kept on disk, never a shared default.
    path = LOCAL_DIR / "secret_key"
    if not path.exists():
        LOCAL_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "fallbacks",
    "llm",
    "chatbridge",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # WhiteNoise, streaming its files asynchronously under ASGI (serdabot/static_files.py).
    "serdabot.static_files.AsgiWhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The page language: the session's or cookie's choice (set_language), else Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A wrong setting met by a page: a page naming it and the fix, not a server error.
    "serdabot.setting_errors.SettingErrorMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "serdabot.urls"
ASGI_APPLICATION = "serdabot.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{LOCAL_DIR / 'db.sqlite3'}",
        conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    # WAL lets the web pages read while the bot writes history; the busy timeout
    # makes a writer wait for a lock instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 5,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        # sqlite3 keeps 128 compiled statements per connection by default; the history
        # writer's bulk inserts (up to 200 rows each, every size a new statement) made that
        # cache alone grow the bot by tens of MiB over a long stream (8 keeps it to a few).
        "cached_statements": 8,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that vanishes (a partition, a failover) sends no RST: without these,
    # libpq waits minutes for a connection and the kernel for ever on an open one, and the
    # history writer, the settings refresh and a stopping process wait with them. libpq's
    # own parameters; ones given in DATABASE_URL's query string win.
    for option, value in {
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 30_000,  # ms: data sent and never acknowledged
    }.items():
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault(option, value)

REDIS_URL = env_str("REDIS_URL")
# channels drops a group member this many seconds after it joined; the long-running
# listeners rejoin well within it (serdabot/groups.py). Tests shorten it to seconds.
CHANNEL_GROUP_EXPIRY = env_int("CHANNEL_GROUP_EXPIRY", 86400, minimum=1)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [redis_host(REDIS_URL)],
                "capacity": 1000,
                "expiry": 60,
                "group_expiry": CHANNEL_GROUP_EXPIRY,
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 1000, "expiry": 60, "group_expiry": CHANNEL_GROUP_EXPIRY},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# French by default: a browser asking for English (or a user picking it) gets English.
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
# The project's catalogues (scripts/messages.sh); the compiled .mo files are kept in git.
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = time_zone(env_str("TIME_ZONE"))
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG  # no collectstatic needed for a local run
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOGIN_URL = "/admin/login/"

# Login throttling (django-axes) for the admin's login form, which the dashboard uses too.
# The throttling backend comes first: it refuses a locked-out login before any password check.
AUTHENTICATION_BACKENDS = [
    "serdabot.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# 5 failures within 15 minutes lock for 15 minutes (each failure counts for 15 minutes).
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
# Two locks, either one refuses: a user name tried from anywhere, and an address trying any name.
# The address is REMOTE_ADDR as uvicorn reports it (django-axes' default without django-ipware):
# uvicorn puts X-Forwarded-For there only for the proxies in FORWARDED_ALLOW_IPS (default
# 127.0.0.1 and ::1), so a client cannot choose its own address.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# AXES_RESET_ON_SUCCESS stays off: a login to any account would clear its address's failures,
# those against the admin included, and let whoever holds an account guess on forever.
# The lockout page: templates/registration/login_locked.html, with the lock's length.
AXES_LOCKOUT_CALLABLE = "serdabot.login_throttle.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429  # Too Many Requests: refused for a while, not forbidden

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Production hardening: secure values by default whenever DEBUG is off.
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Error bodies and tracebacks can carry a key (some proxies echo it): every line is redacted.
    "filters": {
        "redact": {"()": "serdabot.redact.RedactingFilter"},
        "starlette_hint": {"()": "serdabot.log_filters.TwitchioStarletteHint"},
        "access_not_found": {"()": "serdabot.log_filters.AccessNotFound"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # Without handlers of its own: Django's default console handler (DEBUG) would print
        # its records (500 tracebacks) a second time, unredacted. They reach ours instead.
        "django": {"level": "INFO"},
        # twitchio's hint to install its Starlette adapter, which the bot does not use.
        "twitchio.client": {"filters": ["starlette_hint"]},
        # uvicorn serving alone (the web process): its access lines in this format, redacted,
        # without a 404's (django.request logs each 404 once). runbot keeps it at WARNING.
        "uvicorn.access": {"handlers": ["console"], "propagate": False, "filters": ["access_not_found"]},
        "serdabot": {"level": env_str("LOG_LEVEL") or "INFO"},
        "llm": {"level": env_str("LOG_LEVEL") or "INFO"},
        "chatbridge": {"level": env_str("LOG_LEVEL") or "INFO"},
        "fallbacks": {"level": env_str("LOG_LEVEL") or "INFO"},
    },
}

# The bot's own settings. BOT_NAME is what chat calls it (`@serdabot`, "serdabot?").
BOT_NAME = env_str("BOT_NAME") or "serdabot"
# Store chat text and user names in the call history (off: only metadata is kept).
HISTORY_STORE_CHAT = env_bool("HISTORY_STORE_CHAT", False)
# Conversation memory for !ask and mentions (chatbridge/memory.py): per user and channel, the
# last MEMORY_TURNS exchanges within MEMORY_TTL seconds. In this process, or in Redis with
# REDIS_URL. Bounded: MEMORY_MAX_USERS conversations, MEMORY_MAX_BYTES of text in all.
MEMORY_TURNS = env_int("MEMORY_TURNS", 6)
MEMORY_TTL = env_int("MEMORY_TTL", 600)
MEMORY_MAX_USERS = env_int("MEMORY_MAX_USERS", 5_000, minimum=1)
MEMORY_MAX_BYTES = env_int("MEMORY_MAX_BYTES", 4_000_000, minimum=1_000)
# Moderation of answers (chatbridge/moderation/): blocked terms always; MODERATION=openai also
# asks OpenAI's moderation endpoint when a key is set. A failed check holds the answer unless
# MODERATION_FAIL_OPEN is on.
MODERATION = env_str("MODERATION").lower()
MODERATION_FAIL_OPEN = env_bool("MODERATION_FAIL_OPEN", False)
# Probes, calls and state changes older than this are pruned (prunehistory, and runbot daily).
HISTORY_RETENTION_DAYS = env_int("HISTORY_RETENTION_DAYS", 90, minimum=1)
# On SIGTERM, how long in-flight answers and queued replies get to finish before the process closes.
SHUTDOWN_GRACE = env_float("SHUTDOWN_GRACE", 10.0)
# Alert targets created at `runbot` start when missing (llm/alerts/seed.py); edited in the admin after.
ALERT_DISCORD_WEBHOOK_URL = env_str("ALERT_DISCORD_WEBHOOK_URL")
ALERT_WEBHOOK_URL = env_str("ALERT_WEBHOOK_URL")
ALERT_EMAIL_TO = env_list("ALERT_EMAIL_TO")
# Mail for email alerts: Django's settings, read from the environment (the password is a secret).
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "serdabot@localhost")
