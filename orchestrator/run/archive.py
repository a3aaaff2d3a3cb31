"""Function archives a real Substra node can build: fedchem's wheel, pinned dependencies and a strict Dockerfile.

A real backend builds each function's image from its archive (Kaniko) and runs the script in it, so the archive
carries what the script imports: fedchem's wheel (built from the checkout at submission time with `pip wheel
--no-deps`, cached per hash of the sources; from an installed fedchem, the installed files repacked; or the wheel
named by FEDCHEM_WHEEL), `constraints.txt` (the exact versions of fedchem's dependencies in this environment) and
a Dockerfile in which every install step must succeed and the function's module must import. The local
subprocess backend reads only the ENTRYPOINT line and runs the script with this process's Python.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fedchem.algo.functions.specs import FunctionDef
from fedchem.opener.errors import ConfigError
from fedchem.opener.fileio import move_into_place, sha256_file

PROJECT = Path(__file__).resolve().parents[2]  # the checkout, when running from one
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_VERSION = "2.13.0"
BASE_IMAGE = "python:3.11-slim"
# CUDA-only packages a PyPI torch build pulls in; the CPU wheel from TORCH_INDEX needs none of them
_CUDA_ONLY = re.compile(r"^(nvidia-.*|triton|cuda-.*)$")

DOCKERFILE = """\
# fedchem function `{name}`: each Substra node builds this image from the archive. Every step must succeed: a failed
# install or a module that does not import fails the build (no step's failure is ignored).
FROM {base}
WORKDIR /workspace
COPY {wheel} constraints.txt /workspace/
{env}RUN python -m pip install --no-cache-dir --index-url {torch_index} torch=={torch} \\
 && python -m pip install --no-cache-dir --constraint /workspace/constraints.txt /workspace/{wheel} \\
 && python -c "import {module}"{warm}
COPY function.py /workspace/
ENTRYPOINT ["python3", "function.py", "--function-name", "{name}"]
"""

SCRIPT = """\
\"\"\"Substra task script for fedchem function `{name}`: {description}\"\"\"
import _signal  # the builtin under `signal`: importing it runs no Python code, so a Ctrl-C cannot land inside it

# Ctrl-C reaches the task with the CLI (one process group): end quietly, the CLI reports the interruption and
# leaves a resumable run. First, so that no import is under Python's KeyboardInterrupt handler.
_signal.signal(_signal.SIGINT, _signal.SIG_DFL)

import os  # noqa: E402
import sys  # noqa: E402

if os.environ.get("FEDCHEM_WARM_SOCKET"):  # a local run's warm server (fedchem.algo.functions.warmstart)
    # fedchem.algo.functions.warm_client, carried in this file: builtins only, no import of fedchem's package
    exec(compile(WARM_CLIENT, "fedchem/algo/functions/warm_client.py", "exec"), _warm := {{}})
    _warm["run_warm"](sys.argv, "{module}")  # exits with the task's status once a warm child ran it; else runs it here

import {module}  # noqa: F401,E402  (registers `{name}`)
from fedchem.algo.functions.entry import run_task  # noqa: E402

if __name__ == "__main__":
    run_task(sys.argv)  # substratools' CLI, then exit without the interpreter's teardown
"""


def task_script(name: str, module: str, description: str) -> str:
    """The function.py of a function archive: SCRIPT, with the warm server's client (warm_client's source) ahead
    of it as a string, so that a warm task imports nothing of fedchem to hand itself over."""
    from fedchem.algo.functions import warm_client

    client = Path(warm_client.__file__).read_text(encoding="utf-8")
    if "'''" in client or client.endswith("\\"):
        raise RuntimeError("warm_client.py must hold no triple single quote and not end with a backslash: the "
                           "task script carries it as a raw string")
    body = SCRIPT.format(name=name, module=module, description=description)
    head, _, rest = body.partition("\n")  # the docstring stays the file's first line
    return f"{head}\nWARM_CLIENT = r'''{client}'''\n{rest}"


@dataclass(frozen=True)
class Wheel:
    """fedchem's wheel as it travels in every function archive; `sha256` goes into the run's ledger."""

    path: Path
    sha256: str
    origin: str  # "checkout <source hash>", "installed <version>" or "FEDCHEM_WHEEL"


def checkout_root() -> Path | None:
    """The fedchem checkout this code runs from (pyproject.toml naming fedchem), or None (an installed wheel)."""
    pyproject = PROJECT / "pyproject.toml"
    if not pyproject.is_file():
        return None
    with open(pyproject, "rb") as fh:
        return PROJECT if tomllib.load(fh).get("project", {}).get("name") == "fedchem" else None


def _source_paths(root: Path) -> list[Path]:
    """The files a wheel is built from: pyproject, README and every folder the package-dir mapping names."""
    with open(root / "pyproject.toml", "rb") as fh:
        mapping = tomllib.load(fh)["tool"]["setuptools"]["package-dir"]
    files = [root / "pyproject.toml", root / "README.md"]
    for folder in sorted(set(mapping.values())):
        files += [p for p in sorted((root / folder).rglob("*")) if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix != ".pyc" and not {"charts"} & set(p.relative_to(root / folder).parts[:1])]
    return files


def source_hash(root: Path) -> str:
    """sha256 over the relative path and bytes of every source file of the wheel (the cache key)."""
    h = hashlib.sha256()
    for p in _source_paths(root):
        rel = p.relative_to(root).as_posix().encode()
        h.update(len(rel).to_bytes(4, "big") + rel + sha256_file(p).encode())
    return h.hexdigest()


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_from_checkout(root: Path, cache: Path) -> Wheel:
    """`pip wheel --no-deps` of a copy of the checkout's sources, once per source hash (cache/<hash>/)."""
    digest = source_hash(root)
    folder = cache / digest[:32]
    with _locked(cache / f"{digest[:32]}.lock"):
        found = sorted(folder.glob("fedchem-*.whl")) if folder.is_dir() else []
        if not found:
            with tempfile.TemporaryDirectory(prefix="fedchem-wheel-") as tmp:
                src = Path(tmp) / "src"
                for p in _source_paths(root):
                    (src / p.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(p, src / p.relative_to(root))
                out = Path(tmp) / "out"
                proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                                       "--quiet", "-w", str(out), str(src)], capture_output=True, text=True)
                built = sorted(out.glob("fedchem-*.whl"))
                if proc.returncode != 0 or len(built) != 1:
                    raise ConfigError("building fedchem's wheel for the function archives failed: "
                                      + (proc.stderr or proc.stdout).strip()[-800:], where=str(root),
                                      fix="fix the build error above (`pip wheel --no-deps .` in the checkout)")
                move_into_place(built[0], folder / built[0].name)
            found = sorted(folder.glob("fedchem-*.whl"))
    return Wheel(found[0], sha256_file(found[0]), f"checkout {digest[:16]}")


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def repack_installed(cache: Path) -> Wheel:
    """The installed fedchem (no checkout around) repacked as a wheel: its files as RECORD lists them, a fresh
    RECORD, fixed timestamps (the same installation gives the same bytes)."""
    dist = importlib.metadata.distribution("fedchem")
    files = [f for f in (dist.files or []) if f.parts[0] != ".." and "__pycache__" not in f.parts]
    info = next((f.parts[0] for f in files if f.parts[0].endswith(".dist-info")), None)
    if info is None or not any(f.parts[0] == "fedchem" for f in files):
        raise ConfigError("the installed fedchem is not a regular install (editable, or its file list is missing)",
                          where=str(dist.locate_file("")), fix="run from a fedchem checkout, or set FEDCHEM_WHEEL to a "
                          "wheel built with `pip wheel --no-deps .`")
    skip = {f"{info}/{n}" for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    name = f"fedchem-{dist.version}-py3-none-any.whl"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        staged = Path(tmp) / name
        records = []
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(files, key=lambda f: f.as_posix()):
                if f.as_posix() in skip:
                    continue
                data = Path(dist.locate_file(f)).read_bytes()
                z.writestr(zipfile.ZipInfo(f.as_posix(), date_time=(1980, 1, 1, 0, 0, 0)), data)
                records.append(f"{f.as_posix()},{_record_hash(data)},{len(data)}")
            records.append(f"{info}/RECORD,,")
            z.writestr(zipfile.ZipInfo(f"{info}/RECORD", date_time=(1980, 1, 1, 0, 0, 0)), "\n".join(records) + "\n")
        digest = sha256_file(staged)
        dest = move_into_place(staged, cache / digest[:32] / name)
    return Wheel(dest, digest, f"installed {dist.version}")


def default_cache() -> Path:
    if checkout_root() is not None:
        return PROJECT / ".cache" / "wheels"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fedchem" / "wheels"


def fedchem_wheel(cache: Path | None = None) -> Wheel:
    """The wheel every function archive carries: FEDCHEM_WHEEL if set, else built from the checkout, else the
    installed fedchem repacked."""
    given = os.environ.get("FEDCHEM_WHEEL")
    if given:
        path = Path(given)
        if not (path.is_file() and path.name.startswith("fedchem-") and path.suffix == ".whl"):
            raise ConfigError("FEDCHEM_WHEEL does not name a fedchem wheel", where=given,
                              fix="build one with `pip wheel --no-deps .` in a checkout, or unset FEDCHEM_WHEEL")
        return Wheel(path.resolve(), sha256_file(path), "FEDCHEM_WHEEL")
    cache = cache or default_cache()
    root = checkout_root()
    return build_from_checkout(root, cache) if root is not None else repack_installed(cache)


def pinned_constraints() -> str:
    """`name==version` for every distribution fedchem needs, as installed here (the tested versions), so a node
    builds the same environment. CUDA-only wheels of a PyPI torch are left out (the image takes the CPU build)."""
    from packaging.requirements import Requirement

    seen: dict[str, str] = {}
    todo = [Requirement(r) for r in (importlib.metadata.requires("fedchem") or [])]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        key = re.sub(r"[-_.]+", "-", req.name).lower()
        if key in seen or _CUDA_ONLY.match(key):
            continue
        try:
            dist = importlib.metadata.distribution(req.name)
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(f"fedchem's dependency '{req.name}' is not installed here", where=str(req),
                              fix="pip install -e . (or the project's `make venv`)") from None
        seen[key] = dist.version.split("+", 1)[0]  # torch 2.13.0+cpu -> 2.13.0 (the index decides the build)
        todo += [Requirement(r) for r in (dist.requires or [])]
    return "".join(f"{k}=={v}\n" for k, v in sorted(seen.items()))


# modules whose tasks run numba kernels (the compiled training step, the compiled masking): their image compiles
# them while it is built, into a cache folder any task user can read and write (fedchem.algo.kernel_cache)
KERNEL_MODULES = {"fedchem.algo.functions.train"}
NUMBA_CACHE_DIR = "/workspace/numba-cache"


def dockerfile(fdef: FunctionDef, wheel_name: str) -> str:
    warms = fdef.module in KERNEL_MODULES
    env = f"ENV NUMBA_CACHE_DIR={NUMBA_CACHE_DIR}\n" if warms else ""
    warm = (f" \\\n && python -m fedchem.algo.kernel_cache \\\n && chmod -R a+rwX {NUMBA_CACHE_DIR}" if warms
            else "")
    return DOCKERFILE.format(name=fdef.name, module=fdef.module, wheel=wheel_name, base=BASE_IMAGE,
                             torch_index=TORCH_INDEX, torch=TORCH_VERSION, env=env, warm=warm)


def function_archive(fdef: FunctionDef, folder: Path, wheel: Wheel, constraints: str) -> Path:
    """The zip Substra registers for one function: Dockerfile, function.py, fedchem's wheel, constraints.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / f"{fdef.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Dockerfile", dockerfile(fdef, wheel.path.name))
        z.writestr("function.py", task_script(fdef.name, fdef.module, fdef.description))
        z.writestr("constraints.txt", constraints)
        # the wheel is a zip already: deflating it again took ~50 ms an archive (9 a run) to save 0.5 % of its size
        z.write(wheel.path, wheel.path.name, compress_type=zipfile.ZIP_STORED)
    return archive
