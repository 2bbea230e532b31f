"""The layering the code relies on, checked on the source itself: a core that imports no stage, stages
that import no application layer, small units, and an in-server gear that imports on RedisGears' Python."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STAGES = ("producer", "gears", "consumer", "models")
APP = "facestream.app"


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> list[Path]:
    return sorted(p for top in ("facestream", *STAGES) for p in (REPO / top).rglob("*.py"))


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


def _layer(module: str) -> str:
    if module == APP or module.startswith(APP + ".") or module == "facestream.__main__":
        return "app"  # __main__ is `python -m facestream`: a program, never imported
    top = module.split(".")[0]
    return "stage" if top in STAGES else "core" if top == "facestream" else "other"


def test_core_imports_no_stage_and_stages_import_no_app_layer():
    bad = []
    for path in _sources():
        layer = _layer(_module(path))
        for imp in _imports(path):
            target = _layer(imp)
            if (layer == "core" and target in ("stage", "app")) or (layer == "stage" and target == "app"):
                bad.append(f"{path.relative_to(REPO)} ({layer}) imports {imp} ({target})")
    assert not bad, "\n".join(bad)


def test_the_walker_sees_an_upward_import(tmp_path):
    """The rule above can fail: a core module importing a stage inside a function is caught."""
    probe = REPO / "facestream" / "_probe_upward.py"
    probe.write_text("def f():\n    from gears.worker import Worker\n")
    try:
        assert any(_layer(i) == "stage" for i in _imports(probe))
    finally:
        probe.unlink()


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


#: What the RedisGears image installs into the Gears interpreter (docker/gears.Dockerfile): no redis-py,
#: no pydantic, no trackers. Anything else the gear imports fails there at load time.
GEAR_THIRD_PARTY = {"numpy", "cv2", "dlib", "face_recognition_models", "pkg_resources", "setuptools"}

GEAR_IMPORT = """
import importlib.abc, json, sys
allowed = set(json.loads(sys.argv[1])) | set(sys.stdlib_module_names) | {"facestream", "gears", "models"}
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in allowed and not name.startswith("_"):
            raise ImportError(f"the gear image has no {name}")
sys.meta_path.insert(0, Refuse())
import gears.step, models.analyzer, facestream.records  # what gear_script.py imports
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
    assert {"gears/step.py", "models/knn.py", "models/analyzer.py", "facestream/records.py"} <= names
    assert "models/gallery.py" not in names and "facestream/config.py" not in names
    # The gear image copies exactly these files into the Gears interpreter.
    dockerfile = (REPO / "docker" / "gears.Dockerfile").read_text()
    copied = {p for line in re.findall(r"^COPY (.+) /gears-src/\w+/$", dockerfile, re.M) for p in line.split()}
    assert names <= copied, f"docker/gears.Dockerfile does not copy {sorted(names - copied)}"


def test_the_gear_closure_runs_on_python_3_7():
    """RedisGears 1.2 embeds Python 3.7: vermin checks the minimum version of every module the gear imports."""
    pytest.importorskip("vermin", reason="vermin is a test dependency (scripts/setup.sh --test)")
    files = [str(p) for p in _gear_closure()] + [str(REPO / "gears" / "gear_script.py")]
    out = subprocess.run([str(Path(sys.executable).with_name("vermin")), "-t=3.7-", "--no-tips", "--violations",
                          "--no-parse-comments", *files], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"needs a newer Python than RedisGears' 3.7:\n{out.stdout}{out.stderr}"
