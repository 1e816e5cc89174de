# The operator image: python -m minop run, with every plugin in plugins/ installed.
# BASE is any Debian-based image; without Python, Debian's python3 is installed.
# `make image` builds the wheels on the host first (no index is needed inside).
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

# nginx-light: the NGINX plugin checks configurations with `nginx -t` before rollout.
RUN set -eu; export DEBIAN_FRONTEND=noninteractive; \
    pkgs="nginx-light openssl"; command -v python3 >/dev/null || pkgs="$pkgs python3 python3-venv"; \
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $pkgs && \
    rm -rf /var/lib/apt/lists/*

COPY build/wheels /tmp/wheels
RUN python3 -m venv /opt/minop && \
    /opt/minop/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels \
      minop minop-memcached minop-nginx minop-redis && \
    rm -rf /tmp/wheels

ENV PATH=/opt/minop/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# numeric non-root user: runAsNonRoot can verify it; the root filesystem can be read-only
USER 65532:65532
ENTRYPOINT ["python3", "-m", "minop"]
CMD ["run"]
