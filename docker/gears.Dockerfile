# The in-server variant: redis-server 8.2 + RediSearch 2.10 (the PyPI packages the embedded default runs) and
# RedisGears 1.2.9 built from source by `facestream gears build` (scripts/setup.sh --gears), the gear running
# facestream's own code. `facestream redis --gears --foreground` is the server: its password is generated
# into /data/redis-6379/password on first start (the other services of docker-compose.gears.yml read it).
#   BASE: as in docker/Dockerfile. GEARS_SOURCE: a RedisGears v1.2.9 source archive in the build context (the
#   vendored ../shared/vendor one copied in, say); without one the build clones it from GitHub.
#   Offline: wheelhouse/ as in docker/Dockerfile (the gear's own Python 3.7 packages still come from PyPI).
#   Behind a TLS-inspecting proxy: its CA certificate(s) at docker/site-ca.crt, added to the image's bundle so
#   that pip trusts them.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
ARG GEARS_SOURCE=
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates git \
      $(command -v python3 >/dev/null || echo python3 python3-venv) && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
ENV FACESTREAM_VENV=/opt/venv PATH=/opt/venv/bin:$PATH OPENBLAS_NUM_THREADS=1 XDG_CACHE_HOME=/opt/cache
RUN if [ -f docker/site-ca.crt ]; then cat docker/site-ca.crt >> /etc/ssl/certs/ca-certificates.crt; fi \
    && if [ -d wheelhouse ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS=/app/wheelhouse; fi \
    && apt-get update -qq && FACESTREAM_GEARS_SOURCE="$GEARS_SOURCE" scripts/setup.sh --gears \
    && rm -rf /var/lib/apt/lists/* /root/.cache
RUN useradd --uid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin facestream \
    && mkdir -p /app/.facestream /data && chown -R facestream /app/.facestream /data
USER 10001
ENV FACESTREAM_DATA_DIR=/data
ENTRYPOINT ["facestream"]
CMD ["redis", "--gears", "--port", "6379", "--bind", "0.0.0.0", "--foreground"]
