"""The legacy Flask app alone, for gunicorn: the status quo every comparison starts from.

    SCRIPT_NAME=/legacy gunicorn --workers 4 --threads 10 -b 127.0.0.1:8001 gateway.legacy_wsgi:app

(`SCRIPT_NAME` makes gunicorn serve it under the same `/legacy` paths as the gateway.)
"""

import legacy_flask
from shop_core.settings import Settings

app = legacy_flask.create_app(Settings().legacy_config())
