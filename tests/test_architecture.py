"""The layering the code relies on, checked on the source itself: a core that imports no stage, stages
that import no application layer, small units, and an in-server gear that imports on RedisGears' Python."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from facestream.gearsbuild import GEAR_PACKAGES

REPO = Path(__file__).resolve().parents[1]
#: A folder at the top of the repository -> the package it installs as (pyproject.toml's package-dir).
FOLDERS = {"facestream": "facestream", "producer": "facestream.producer", "gears": "facestream.gears",
           "consumer": "facestream.consumer", "models": "facestream.models"}
STAGES = tuple(pkg for pkg in FOLDERS.values() if pkg != "facestream")
APP = "facestream.app"
#: What each part of facestream.models may import of the others: types at the bottom, evaluation on top.
MODELS_MAY_IMPORT = {
    "types": set(),
    "impostors": set(),
    "protocols": {"types"},
    "matcher": {"types", "protocols", "impostors"},
    "vision": {"types", "protocols"},
    "store": {"types", "protocols", "impostors"},
    "curation": {"types", "protocols", "matcher", "vision", "store"},
    "evaluation": {"types", "protocols", "matcher", "vision", "store", "curation"},
}
#: What each part of the application layer may import of the others: the command line sits on top; the
#: benchmarks run the local stack's pipeline; the stack runs nothing of the benchmarks' or the CLI's.
APP_MAY_IMPORT = {"cli": {"stack", "bench"}, "bench": {"stack"}, "stack": set()}


def _module(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("").parts
    parts = [*FOLDERS[rel[0]].split("."), *rel[1:]]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> list[Path]:
    return sorted(p for top in FOLDERS for p in (REPO / top).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function (relative imports resolved)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                base = ".".join(_module(path).split(".")[: -node.level] + [node.module])
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return out


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _layer(module: str) -> str:
    if module == "facestream":
        return "api"  # the package's front door: lazy names from every layer, imported by no module of ours
    if _within(module, APP) or module == "facestream.__main__":
        return "app"  # __main__ is `python -m facestream`: a program, never imported
    if any(_within(module, stage) for stage in STAGES):
        return "stage"
    return "core" if module.split(".")[0] == "facestream" else "other"


def _models_part(module: str) -> str | None:
    return module.split(".")[2] if _within(module, "facestream.models") and module.count(".") >= 2 else None


def _app_part(module: str) -> str | None:
    return module.split(".")[2] if _within(module, APP) and module.count(".") >= 2 else None


def _violations(path: Path) -> list[str]:
    """The imports of ``path`` that break the layering."""
    source, bad = _module(path), []
    layer, part = _layer(source), _models_part(source)
    for imp in _imports(path):
        target = _layer(imp)
        if (layer == "core" and target in ("stage", "app")) or (layer == "stage" and target == "app") \
                or (layer != "api" and target == "api" and imp != "facestream.__version__"):
            bad.append(f"{path.relative_to(REPO)} ({layer}) imports {imp} ({target})")
        if _within(source, "facestream.models") and target == "stage" and not _within(imp, "facestream.models"):
            bad.append(f"{path.relative_to(REPO)}: the models import no other stage, but {imp}")
        other = _models_part(imp)
        if part and other and other != part and other not in MODELS_MAY_IMPORT[part]:
            bad.append(f"{path.relative_to(REPO)}: models.{part} may not import models.{other} ({imp})")
        here, there = _app_part(source), _app_part(imp)
        if here and there and there != here and there not in APP_MAY_IMPORT.get(here, set()):
            bad.append(f"{path.relative_to(REPO)}: app.{here} may not import app.{there} ({imp})")
    return bad


def test_the_application_layer_is_split_by_concern():
    """facestream/app/ holds its parts and nothing else: the CLI, the local stack, the benchmarks."""
    parts = {p.name for p in (REPO / "facestream" / "app").iterdir() if p.is_dir() and p.name != "__pycache__"}
    loose = {p.name for p in (REPO / "facestream" / "app").glob("*.py")} - {"__init__.py"}
    assert parts == set(APP_MAY_IMPORT) and not loose, (parts, loose)


def test_core_imports_no_stage_stages_import_no_app_layer_and_models_parts_stack():
    bad = [v for path in _sources() for v in _violations(path)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("where, line", [
    ("facestream/_probe_upward.py", "def f():\n    from facestream.gears.worker import Worker\n"),
    ("models/vision/_probe_upward.py", "from facestream.models.store.gallery import Gallery\n"),
    ("models/store/_probe_upward.py", "import facestream.gears.step\n"),
    ("facestream/app/stack/_probe_upward.py", "def f():\n    from facestream.app.bench.clip import clip_bench\n"),
])
def test_the_walker_sees_an_upward_import(where, line):
    """The rules above can fail: an upward import (even inside a function) is caught."""
    probe = REPO / where
    probe.write_text(line)
    try:
        assert _violations(probe)
    finally:
        probe.unlink()


def test_only_facestream_is_importable_from_outside_the_checkout(tmp_path):
    """The stages install as sub-packages of facestream: no top-level ``models`` or ``consumer`` to shadow
    another project's; ``import facestream`` gives the public API."""
    probe = ("import importlib, json\n"
             "out = {}\n"
             "for name in ('models', 'consumer', 'gears', 'producer'):\n"
             "    try:\n        importlib.import_module(name); out[name] = 'imported'\n"
             "    except ImportError:\n        out[name] = 'absent'\n"
             "import facestream\n"
             "out['api'] = [facestream.Settings.__name__, facestream.FrameResult.__name__, facestream.follow.__name__]\n"
             "print(json.dumps(out))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"models": "absent", "consumer": "absent", "gears": "absent", "producer": "absent",
                   "api": ["Settings", "FrameResult", "follow"]}


def test_no_file_over_400_lines_and_no_function_over_50():
    long_files, long_functions = [], []
    for path in [*_sources(), *(REPO / "scripts").glob("*.py")]:
        text = path.read_text()
        if text.count("\n") > 400:
            long_files.append(f"{path.relative_to(REPO)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 50:
                long_functions.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: "
                                      f"{node.end_lineno - node.lineno + 1} lines")
    assert not long_files and not long_functions, "\n".join(long_files + long_functions)


#: What `facestream gears build` installs into the Gears interpreter (GEAR_REQUIREMENTS): no redis-py, no
#: pydantic, no trackers. Anything else the gear imports fails there at load time.
GEAR_THIRD_PARTY = {*GEAR_PACKAGES, "pkg_resources", "setuptools"}  # face_recognition_models imports pkg_resources

GEAR_IMPORT = """
import importlib.abc, json, sys
allowed = set(json.loads(sys.argv[1])) | set(sys.stdlib_module_names) | {"facestream"}
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in allowed and not name.startswith("_"):
            raise ImportError(f"the gear image has no {name}")
sys.meta_path.insert(0, Refuse())
import facestream.gears.step, facestream.models.vision.analyzer, facestream.records  # what gear_script.py imports
import facestream.models.vision.retinaface, facestream.models.vision.dlib_detect  # the detectors it builds
print(json.dumps(sorted(m.__file__ for n, m in sys.modules.items()
                        if n.split(".")[0] in ("facestream", "gears", "models") and getattr(m, "__file__", None))))
"""


def _gear_closure() -> list[Path]:
    out = subprocess.run([sys.executable, "-c", GEAR_IMPORT, json.dumps(sorted(GEAR_THIRD_PARTY))],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return [Path(p).resolve() for p in json.loads(out.stdout.strip().splitlines()[-1])]


def test_the_gear_imports_without_redis_py_or_pydantic():
    closure = _gear_closure()
    names = {str(p.relative_to(REPO)) for p in closure}
    assert {"gears/step.py", "models/store/knn.py", "models/vision/analyzer.py", "facestream/records.py"} <= names
    assert "models/store/gallery.py" not in names and "facestream/config.py" not in names


def test_the_gear_closure_runs_on_python_3_7():
    """RedisGears 1.2 embeds Python 3.7: vermin checks the minimum version of every module the gear imports."""
    pytest.importorskip("vermin", reason="vermin is a test dependency (scripts/setup.sh --test)")
    files = [str(p) for p in _gear_closure()] + [str(REPO / "gears" / "gear_script.py")]
    out = subprocess.run([str(Path(sys.executable).with_name("vermin")), "-t=3.7-", "--no-tips", "--violations",
                          "--no-parse-comments", *files], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"needs a newer Python than RedisGears' 3.7:\n{out.stdout}{out.stderr}"
