"""Settings of the test project: its only database is Switchyard.

SY_HOST, SY_PORT, SY_DB, SY_USER and SY_PASSWORD say where Switchyard listens
and how to log in; the Go tests set them.
"""
import os

SECRET_KEY = "switchyard-test-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "shop",
]

_db = {
    "ENGINE": "django.db.backends.mysql",
    "HOST": os.environ.get("SY_HOST", "127.0.0.1"),
    "PORT": os.environ.get("SY_PORT", "6033"),
    "NAME": os.environ.get("SY_DB", "shop"),
    "USER": os.environ.get("SY_USER", "app"),
    "PASSWORD": os.environ.get("SY_PASSWORD", "app-secret"),
    "OPTIONS": {"charset": "utf8mb4"},
}

DATABASES = {
    "default": _db,
    # A second connection (its own Switchyard session) for lock checks.
    "other": dict(_db),
}
