"""Run the real helm binary (lint, dependency build, template) and serve stand-in charts from loopback.

Substra's chart repository cannot be reached from build machines; `standin_repo` packages deploy/standins/ (charts
of the same names and versions) into a chart repository served by python's http.server on 127.0.0.1, so the
umbrella chart builds, lints and renders offline exactly as it would against the real repository.
The chart and the stand-ins are found in a checkout (deploy/helm, deploy/standins) or, from an installed wheel, as
package data beside this module (chart/, standins/); helm itself is found by `helm_install.find_helm`.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import yaml

from fedchem.opener.errors import ConfigError

log = logging.getLogger(__name__)

PROJECT = Path(__file__).resolve().parents[2]  # the checkout, when running from one
_HERE = Path(__file__).resolve().parent


def _data_folder(packaged: str, checkout: Path) -> Path:
    """A data folder of the wheel (beside this module) or, in a checkout / editable install, its source folder."""
    inside = _HERE / packaged
    return inside if inside.is_dir() else checkout


CHART_DIR = _data_folder("chart", PROJECT / "deploy" / "helm")
STANDINS_DIR = _data_folder("standins", PROJECT / "deploy" / "standins")


@dataclass
class Helm:
    """A helm binary plus the environment it runs in (isolated HELM_* homes when `home` is given)."""

    path: Path | None = None  # None: a helm v3 on PATH, else the pinned one (helm_install.find_helm)
    home: Path | None = None
    echo: bool = False
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.path is None:
            from fedchem.orchestrator.node.helm_install import find_helm

            self.path = find_helm()
        if not Path(self.path).is_file():
            raise ConfigError("the helm binary is not installed", where=str(self.path),
                              fix="run `make helm` (or `python deploy/install_helm.py`)")
        self.env = dict(os.environ)
        if self.home is not None:
            for var, sub in (("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"),
                             ("HELM_DATA_HOME", "data")):
                self.env[var] = str(Path(self.home) / sub)
            self.env["HELM_REPOSITORY_CONFIG"] = str(Path(self.home) / "config" / "repositories.yaml")
            self.env["HELM_REPOSITORY_CACHE"] = str(Path(self.home) / "cache" / "repository")

    def run(self, *args: str, check: bool = True, what: str = "helm") -> subprocess.CompletedProcess:
        """Run `helm args...`; on failure raise ConfigError carrying helm's own message."""
        cmd = [str(self.path), *map(str, args)]
        if self.echo:
            log.info("+ " + shlex.join(["helm", *map(str, args)]))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=300)
        if check and proc.returncode != 0:
            msg = (proc.stderr or proc.stdout).strip()
            raise ConfigError(f"{what} failed: {msg}", where=shlex.join(["helm", *map(str, args[:2])]),
                              fix="fix the values or chart named in helm's message")
        return proc


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test and dry-run output clean
        pass


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve a folder over HTTP on 127.0.0.1 (a random free port) in a thread; yields its URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def package_standins(helm: Helm, out: Path, standins: Path = STANDINS_DIR) -> Path:
    """`helm package` every stand-in chart into out/ and write its index.yaml; returns out."""
    out.mkdir(parents=True, exist_ok=True)
    for chart in sorted(p for p in standins.iterdir() if (p / "Chart.yaml").is_file()):
        helm.run("package", chart, "--destination", out, what="packaging a stand-in chart")
    helm.run("repo", "index", out, what="indexing the stand-in charts")
    return out


@contextlib.contextmanager
def standin_repo(helm: Helm, workdir: Path, standins: Path = STANDINS_DIR) -> Iterator[str]:
    """A loopback chart repository holding the stand-ins; yields its URL (give it the `substra` alias)."""
    repo = package_standins(helm, Path(workdir) / "standin-repo", standins)
    with serve_folder(repo) as url:
        yield url


def copy_chart(dest: Path, chart: Path = CHART_DIR) -> Path:
    """Copy the umbrella chart without built dependencies, so a build never touches the working tree."""
    shutil.copytree(chart, dest, ignore=shutil.ignore_patterns("charts", "Chart.lock", "*.tgz"))
    return dest


def render(helm: Helm, chart: Path, values: Path, release: str, namespace: str,
           extra: tuple[str, ...] = ()) -> list[dict]:
    """`helm template` the chart with a values file; returns the rendered objects (empty documents dropped)."""
    proc = helm.run("template", release, chart, "--namespace", namespace, "-f", values, *extra,
                    what="rendering the chart")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def temp_home() -> tempfile.TemporaryDirectory:
    """A throw-away HELM_* home so tests and dry runs never touch the user's helm repositories."""
    return tempfile.TemporaryDirectory(prefix="fedchem-helm-")
