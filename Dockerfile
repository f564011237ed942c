# django-entrypoint base image: a venv with Django, psycopg, gunicorn and the entrypoint, tini as
# PID 1, a non-root user. Downstream images copy their project into /app and set CMD:
#
#   FROM django-entrypoint
#   COPY --chown=root:root . /app
#   ENV DJANGO_SETTINGS_MODULE=myproject.settings
#   CMD ["gunicorn", "myproject.wsgi"]
#
# Without CMD the container runs the steps (wait, migrate, admin) and exits: initContainer/Job mode.
# BASE_IMAGE may be any Debian-based image with python3 and python3-venv.
ARG BASE_IMAGE=python:3.12-slim-bookworm

FROM ${BASE_IMAGE} AS builder
# Only for machines that reach PyPI through a proxy with its own CA: the path of a CA bundle that
# pip reads (PIP_CERT). Pass the bundle as a build secret, which leaves no trace in any layer:
#   --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt --build-arg PIP_CERT=/run/secrets/pip-ca
# A build argument of this stage never reaches the final image's environment.
ARG PIP_CERT
WORKDIR /src
RUN python3 -m venv /opt/venv
# Dependencies first: their layer is reused while only the project changes.
COPY image/requirements.txt image/requirements.txt
RUN --mount=type=secret,id=pip-ca \
    /opt/venv/bin/pip wheel --no-cache-dir --disable-pip-version-check \
        --wheel-dir /wheels -r image/requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        --no-index --find-links /wheels -r image/requirements.txt
COPY pyproject.toml README.md ./
COPY entrypoint/ entrypoint/
RUN --mount=type=secret,id=pip-ca \
    /opt/venv/bin/pip wheel --no-cache-dir --disable-pip-version-check \
        --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        --no-index --no-deps /wheels/django_entrypoint-*.whl

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="django-entrypoint" \
      org.opencontainers.image.description="Base image for Django apps: waits for the database, migrates under a lock, ensures an admin, then execs the app server." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="BSD-3-Clause" \
      org.opencontainers.image.source="${SOURCE}"

# tini is PID 1: it forwards SIGTERM to the server and reaps zombies. Not version-pinned: the
# image must build on any Debian release, each of which ships its own tini.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app \
    && install -d -o root -g root -m 0755 /etc/django-entrypoint/hooks.d

# The venv, built above from wheels on the same base image (so its interpreter path holds): no
# compiler, wheel or build tool reaches this stage. COPY --from is cached by content.
COPY --from=builder /opt/venv /opt/venv
COPY image/gunicorn.conf.py /etc/django-entrypoint/gunicorn.conf.py

ENV PATH="/opt/venv/bin:${PATH}" \
    VIRTUAL_ENV=/opt/venv \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GUNICORN_CMD_ARGS="--config /etc/django-entrypoint/gunicorn.conf.py"

WORKDIR /app
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["tini", "--", "django-entrypoint"]
