# django-entrypoint base image: a venv with Django, psycopg, gunicorn and the entrypoint, tini as
# PID 1, a non-root user. Downstream images copy their project into /app and set CMD:
#
#   FROM ghcr.io/OWNER/django-entrypoint:py3.13-django5.2
#   COPY --chown=root:root . /app
#   ENV DJANGO_SETTINGS_MODULE=myproject.settings
#   CMD ["gunicorn", "myproject.wsgi"]
#
# Without CMD the container runs the steps (wait, migrate, admin, manage, hooks) and exits: initContainer/Job mode.
# BASE_IMAGE may be any Debian-based image with python3 (3.12 or later) and python3-venv; the
# release build (image/build, .github/workflows/release.yml) passes it pinned by digest.
ARG BASE_IMAGE=python:3.13-slim-trixie

FROM ${BASE_IMAGE} AS builder
# The Django line of the image: selects image/requirements-django<DJANGO>.txt.
ARG DJANGO=5.2
# Only for machines that reach PyPI through a proxy with its own CA: the path of a CA bundle that
# pip reads (PIP_CERT). Pass the bundle as a build secret, which leaves no trace in any layer:
#   --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt --build-arg PIP_CERT=/run/secrets/pip-ca
# A build argument of this stage never reaches the final image's environment.
ARG PIP_CERT=
# Only for sites that reach PyPI through a mirror: its simple index (pip's PIP_INDEX_URL).
ARG PIP_INDEX_URL=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Dependencies first: their layer is reused while only the project changes. Every file is pinned
# with hashes and only wheels are accepted: nothing unpinned is fetched, nothing is compiled.
# /opt/tools holds the build-stage tools (setuptools, cyclonedx-bom), apart from the image's venv.
COPY image/requirements-build.txt image/requirements-django${DJANGO}.txt image/
# pglast's parser module ships with its debug symbols (28 of its 33 MB): strip drops them here,
# in the build stage, with binutils from the base release's signed archive (as tini below); the
# C and Cython sources beside it go too. Nothing of binutils reaches the final image.
# hadolint ignore=DL3008
RUN --mount=type=secret,id=pip-ca \
    apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends binutils \
    && python3 -m venv /opt/venv \
    && python3 -m venv /opt/tools \
    && /opt/tools/bin/pip install --require-hashes --only-binary=:all: \
        -r image/requirements-build.txt \
    && /opt/venv/bin/pip install --require-hashes --only-binary=:all: \
        -r "image/requirements-django${DJANGO}.txt" \
    && find /opt/venv -path '*/pglast/*' -name '*.so' -exec strip --strip-debug {} + \
    && find /opt/venv -path '*/pglast/*' \( -name '*.c' -o -name '*.pyx' -o -name '*.pxd' \) -delete
COPY pyproject.toml README.md LICENSE ./
COPY entrypoint/ entrypoint/
# The project's own wheel, built with the pinned setuptools (no isolated build env that would fetch
# an unpinned one), then the SBOM of the finished environment.
RUN /opt/tools/bin/pip wheel --no-build-isolation --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-index --no-deps /wheels/django_entrypoint-*.whl \
    && /opt/tools/bin/cyclonedx-py environment --output-reproducible --output-format JSON \
        --pyproject pyproject.toml --output-file /sbom.cdx.json /opt/venv/bin/python

FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG BASE_DIGEST=""
ARG VERSION=0.2.0
ARG REVISION=unknown
ARG SOURCE=""
ARG CREATED=""
LABEL org.opencontainers.image.title="django-entrypoint" \
      org.opencontainers.image.description="Base image for Django apps: waits for the database, migrates under a lock, ensures an admin, then execs the app server." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="BSD-3-Clause" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.opencontainers.image.base.digest="${BASE_DIGEST}"

# tini is PID 1: it forwards SIGTERM to the server and reaps zombies. It comes from the base
# release's signed Debian archive; its version is not pinned because Debian drops superseded
# versions (security and rebuild uploads) from its mirrors, so a pin would break rebuilds while
# the base image's digest already fixes the release. `dpkg -s tini` in the image tells the version.
# setuid/setgid bits are stripped last: a plain `docker run` has no allowPrivilegeEscalation:
# false, and nothing in this image needs them.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app \
    && install -d -o root -g root -m 0755 /etc/django-entrypoint/hooks.d \
    && find / -xdev -type f -perm /6000 -exec chmod ug-s {} +

# The venv, built above on the same base image (so its interpreter path holds): no compiler,
# wheel or build tool reaches this stage. COPY --from is cached by content.
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /sbom.cdx.json /usr/share/doc/django-entrypoint/sbom.cdx.json
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
