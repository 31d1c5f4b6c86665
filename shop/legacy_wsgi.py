"""The legacy Flask app alone, for gunicorn: the status quo every comparison starts from.

    SCRIPT_NAME=/legacy gunicorn --workers 4 --threads 10 -b 127.0.0.1:8001 shop.legacy_wsgi:app

(`SCRIPT_NAME` makes gunicorn serve it under the same `/legacy` paths as the gateway.)
"""

import legacy_flask
from shop.settings import ShopSettings

_settings = ShopSettings()
app = legacy_flask.create_app(
    _settings.legacy_config(
        threads=_settings.legacy_workers, max_body_bytes=_settings.max_body_bytes
    )
)
