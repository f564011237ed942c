"""Default gunicorn settings of the django-entrypoint image.

The image points gunicorn at this file through GUNICORN_CMD_ARGS, so a downstream
``CMD ["gunicorn", "myproject.wsgi"]`` gets it; ``--config`` or your own GUNICORN_CMD_ARGS replaces it.
Only /tmp is written (the image runs with a read-only root filesystem), logs go to stdout/stderr.
"""

import os

# GUNICORN_BIND wins; otherwise PORT (the convention of gunicorn itself and of many platforms).
bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))

# Kubernetes sends SIGTERM, then SIGKILL 30 s later (terminationGracePeriodSeconds): in-flight
# requests get 25 s to finish, which leaves gunicorn time to exit on its own with status 0.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
keepalive = 5

# Logs are the container runtime's business: access log on stdout, everything else on stderr.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
capture_output = False

# Read-only root filesystem: the heartbeat files and the control socket live in /tmp.
worker_tmp_dir = "/tmp"
control_socket = "/tmp/gunicorn.ctl"

# Behind a Kubernetes Service or ingress the client address arrives in X-Forwarded-For.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
