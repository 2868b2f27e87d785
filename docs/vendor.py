"""Fetch the JavaScript that the course website serves itself, so that it works offline.

By default Sphinx and myst-nb load MathJax, require.js and the ipywidgets embedding script from
CDNs. The website must make no request outside itself, so the docs build takes pinned releases of
those packages from the npm registry (``npm pack``: the package tarballs only, no dependency
tree, checked against the pinned sha512 digests below) and unpacks the parts it needs into
``docs/_static/vendor/`` (git-ignored), which Sphinx copies into the built site.

``docs/conf.py`` calls :func:`ensure_vendor` on every build; it does nothing when the folder
already holds these exact versions. Run ``python docs/vendor.py`` to fetch them by hand
(``--force`` fetches again). Needs ``npm`` (Node.js) on the PATH.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

VENDOR = Path(__file__).resolve().parent / "_static" / "vendor"
STAMP = "versions.json"


@dataclass(frozen=True)
class Package:
    name: str  # npm package name
    version: str  # exact version
    integrity: str  # sha512 of the tarball, as the npm registry publishes it
    folder: str  # where it goes below docs/_static/vendor/
    keep: tuple[str, ...]  # paths inside the package to copy (files or folders; licences)
    skip_suffixes: tuple[str, ...] = ()  # file endings not worth serving (source maps, ...)

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


PACKAGES = (
    Package(
        "mathjax",
        "3.2.2",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        "mathjax",
        ("es5", "LICENSE", "package.json"),
    ),
    Package(
        "requirejs",
        "2.3.8",
        "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
        "requirejs",
        ("require.js", "package.json"),
    ),
    Package(
        "@jupyter-widgets/html-manager",
        "1.0.15",
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        "html-manager",
        ("dist", "package.json"),
        # embed-amd.js is self-contained (with its fonts); the other bundles are not used.
        (".map", "/embed.js", "/libembed-amd.js"),
    ),
)

# Paths (relative to docs/_static/) that conf.py hands to Sphinx and myst-nb.
MATHJAX_JS = "vendor/mathjax/es5/tex-chtml.js"
REQUIRE_JS = "vendor/requirejs/require.js"
WIDGETS_EMBED_JS = "vendor/html-manager/dist/embed-amd.js"


def _wanted() -> dict[str, str]:
    return {p.name: p.version for p in PACKAGES}


def is_current(vendor: Path = VENDOR) -> bool:
    """True when ``vendor`` holds exactly the pinned versions (checked by its stamp file)."""
    try:
        return json.loads((vendor / STAMP).read_text()) == _wanted()
    except (OSError, ValueError):
        return False


def _check_integrity(tarball: Path, integrity: str) -> None:
    algo, _, expected = integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algo, tarball.read_bytes()).digest()).decode()
    if digest != expected:
        raise RuntimeError(f"{tarball.name}: {algo} digest {digest} does not match {expected}")


def _npm_pack(workdir: Path) -> dict[str, Path]:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "npm is needed once to fetch MathJax, require.js and the ipywidgets embedder for the "
            "offline website (install Node.js, e.g. `apt-get install npm`), then build again"
        )
    cmd = [npm, "pack", "--json", "--prefer-offline", "--pack-destination", str(workdir)]
    cmd += [p.spec for p in PACKAGES]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed:\n{proc.stderr.strip()}")
    packed = json.loads(proc.stdout)
    return {entry["name"]: workdir / entry["filename"] for entry in packed}


def _unpack(tarball: Path, dest: Path) -> Path:
    with tarfile.open(tarball) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
            tar.extractall(dest, filter="data")
        else:  # pragma: no cover - older patch releases
            for member in tar.getmembers():
                if member.name.startswith(("/", "..")) or ".." in Path(member.name).parts:
                    raise RuntimeError(f"{tarball.name}: unsafe path {member.name}")
            tar.extractall(dest)  # paths checked above
    return dest / "package"


def _copy_kept(pkg: Package, root: Path, target: Path) -> None:
    for rel in pkg.keep:
        src = root / rel
        if src.is_dir():
            for path in sorted(src.rglob("*")):
                name = "/" + path.relative_to(root).as_posix()
                if path.is_dir() or name.endswith(pkg.skip_suffixes):
                    continue
                out = target / path.relative_to(root)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, out)
        elif src.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target / rel)
        else:
            raise RuntimeError(f"{pkg.spec} has no {rel}")


def fetch(vendor: Path = VENDOR) -> None:
    """Download the pinned packages with npm and unpack what the site needs into ``vendor``."""
    vendor.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vendor-", dir=vendor.parent) as tmp:
        work = Path(tmp)
        tarballs = _npm_pack(work)
        staging = work / "vendor"
        for pkg in PACKAGES:
            _check_integrity(tarballs[pkg.name], pkg.integrity)
            root = _unpack(tarballs[pkg.name], work / f"unpacked-{pkg.folder}")
            _copy_kept(pkg, root, staging / pkg.folder)
        (staging / STAMP).write_text(json.dumps(_wanted(), indent=2) + "\n")
        if vendor.exists():
            shutil.rmtree(vendor)
        os.replace(staging, vendor)


def ensure_vendor(vendor: Path = VENDOR, *, force: bool = False) -> bool:
    """Fetch the vendored assets unless they are already there; True when it fetched."""
    if not force and is_current(vendor):
        return False
    fetch(vendor)
    return True


if __name__ == "__main__":
    fetched = ensure_vendor(force="--force" in sys.argv[1:])
    print(("fetched " if fetched else "up to date: ") + ", ".join(p.spec for p in PACKAGES))
