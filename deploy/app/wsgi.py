"""WSGI entry point: the Flask app at /, the Django app at /django/."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402
from werkzeug.middleware.dispatcher import DispatcherMiddleware  # noqa: E402

from flaskapp import app as flask_app  # noqa: E402

application = DispatcherMiddleware(flask_app, {"/django": get_wsgi_application()})
