# syntax=docker/dockerfile:1
# Receptionist: one image for the bridge (`receptionist serve`) and the post-call worker
# (`receptionist worker`); the command picks the role. Build:
#   docker build -t receptionist .                       # Gemini Live engine (small)
#   docker build --build-arg EXTRAS=local -t receptionist:local .   # + offline CPU engine (big)
# Settings come only from the environment at run time (README "Deploy"): nothing secret is
# baked in.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the project and its dependencies installed into a venv -------------------------
FROM ${PYTHON_IMAGE} AS builder

# Optional extras, comma separated ("local", "local,llm"): the `local` engine's models and
# runtimes add hundreds of MB, so the default image leaves them out.
ARG EXTRAS=""

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /build
# Only what the package build reads (pyproject names README.md as its readme).
COPY pyproject.toml README.md ./
COPY src ./src
# A regular (not editable) install: the runtime stage needs the venv only, not the source;
# nor pip itself (16 MB) once it is done.
RUN pip install --no-cache-dir ".${EXTRAS:+[${EXTRAS}]}" \
    && receptionist --help > /dev/null \
    && pip uninstall --yes pip

# --- runtime: python and the venv, run as an unprivileged user ------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8765 \
    TENANTS_DIR=/app/tenants \
    DATABASE_URL=sqlite:////app/data/receptionist.db \
    SPOOL_DIR=/app/data/spool \
    LOG_FORMAT=json

# A fixed uid/gid so a mounted volume's owner can be set to match (chown 10001).
RUN groupadd --system --gid 10001 receptionist \
    && useradd --system --uid 10001 --gid receptionist --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin receptionist

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# The example tenants; mount your own folder over /app/tenants (read-only is enough).
COPY tenants ./tenants
# /app/data: the SQLite file (single-machine default), the spool of calls the database could
# not take, and the greeting cache. Mount a volume here to keep them across restarts.
RUN mkdir -p /app/data && chown receptionist:receptionist /app/data

# numeric, so a platform can verify it is not root without reading /etc/passwd
USER 10001:10001
EXPOSE 8765

# Ready means the database answers and the server takes calls; no curl in the slim image, so
# Python asks. (Platforms such as Railway use their own check on /readyz instead.)
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8765'), timeout=4)"]

# Listens on $HOST:$PORT (0.0.0.0 here; platforms set PORT). On PostgreSQL add `--migrate`
# (or run `receptionist db upgrade` first); SQLite is migrated on start.
CMD ["receptionist", "serve"]
