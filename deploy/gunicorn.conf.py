"""gunicorn configuration of the API, for running gunicorn by hand or from a unit file:

    gunicorn -c deploy/gunicorn.conf.py 'ioc.api:create_app()'

The values come from the IOC_* settings through ioc.api.serve.gunicorn_options, the same
function `ioc api` uses: bind (IOC_API_HOST:IOC_API_PORT), workers (IOC_API_WORKERS), timeouts,
access log to stdout with the caller's key id, request limits.
"""

from ioc.api.serve import gunicorn_options
from ioc.settings import load_settings

globals().update(gunicorn_options(load_settings()))
