"""Fetch the JavaScript that the course website serves itself, so that it works offline.

By default Sphinx and myst-nb load MathJax, require.js and the ipywidgets embedding script from
CDNs. The website must make no request outside itself, so the docs build takes pinned releases of
those packages from the npm registry (``npm pack``: the package tarballs only, no dependency
tree, checked against the pinned sha512 digests below) and unpacks the parts it needs into
``docs/_static/vendor/`` (git-ignored), which Sphinx copies into the built site.

``docs/conf.py`` calls :func:`ensure_vendor` on every build; it does nothing when the folder
already holds these exact versions (a stamp file names them). Run ``python docs/vendor.py`` to
fetch them by hand (``--force`` fetches again). Needs ``npm`` (Node.js) on the PATH and access to
the npm registry npm is configured with, once: npm keeps the tarballs in its own cache
(``--prefer-offline``), so a fresh clone on the same machine fetches nothing again. Nothing but
the pinned tarballs is fetched: no dependencies, no install scripts.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

VENDOR = Path(__file__).resolve().parent / "_static" / "vendor"
STAMP = "versions.json"


class VendorError(RuntimeError):
    """The vendored assets could not be fetched; the message says why and what to do."""


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
    """True when ``vendor`` holds exactly the pinned versions (its stamp) and the files used."""
    try:
        stamped = json.loads((vendor / STAMP).read_text())
    except (OSError, ValueError):
        return False
    used = (MATHJAX_JS, REQUIRE_JS, WIDGETS_EMBED_JS)  # relative to _static/
    return stamped == _wanted() and all((vendor.parent / path).is_file() for path in used)


def _check_integrity(tarball: Path, integrity: str) -> None:
    algo, _, expected = integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algo, tarball.read_bytes()).digest()).decode()
    if digest != expected:
        raise VendorError(
            f"{tarball.name}: {algo} digest {digest} does not match the pinned {expected}; "
            "the registry served a different tarball (clear it from npm's cache with "
            "`npm cache clean --force` if the cache is corrupt)"
        )


HOW_TO_FIX = (
    "The docs build needs npm (Node.js, e.g. `apt-get install npm`) and the npm registry once, to "
    "fetch MathJax, require.js and the ipywidgets embedder that the offline website serves "
    "itself. Fix that and build again, or run `python docs/vendor.py` on a machine that can "
    "reach the registry and copy the folder docs/_static/vendor/ here."
)


def _npm_pack(workdir: Path) -> dict[str, Path]:
    npm = shutil.which("npm")
    if npm is None:
        raise VendorError(f"npm is not on the PATH. {HOW_TO_FIX}")
    cmd = [npm, "pack", "--json", "--prefer-offline", "--ignore-scripts"]
    cmd += ["--pack-destination", str(workdir), *(p.spec for p in PACKAGES)]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        # npm's own summary lines ("npm error code ...", "npm error ..."), not its stack trace.
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("npm error")]
        lines = [ln for ln in lines if not ln[9:].lstrip().startswith(("at ", "{", "}"))]
        summary = "\n".join(lines[:6]) or proc.stderr.strip()[-1500:]
        raise VendorError(
            f"`npm pack {' '.join(p.spec for p in PACKAGES)}` failed:\n{summary}\n{HOW_TO_FIX}"
        )
    try:
        packed = {entry["name"]: workdir / entry["filename"] for entry in json.loads(proc.stdout)}
    except (ValueError, KeyError, TypeError) as exc:
        raise VendorError(f"unexpected output of `npm pack --json`: {proc.stdout[:500]!r}") from exc
    missing = [p.spec for p in PACKAGES if p.name not in packed or not packed[p.name].is_file()]
    if missing:
        raise VendorError(f"npm pack did not produce the tarballs of {', '.join(missing)}")
    return packed


def _unpack(tarball: Path, dest: Path) -> Path:
    with tarfile.open(tarball) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
            tar.extractall(dest, filter="data")
        else:  # pragma: no cover - older patch releases
            for member in tar.getmembers():
                if member.name.startswith(("/", "..")) or ".." in Path(member.name).parts:
                    raise VendorError(f"{tarball.name}: unsafe path {member.name}")
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
            raise VendorError(f"{pkg.spec} has no {rel}")


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


@contextmanager
def _exclusive() -> Iterator[None]:
    """Hold a lock on this file while fetching, so that builds started together fetch once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock (a fetch replaces the folder whole)
        yield
        return
    with open(__file__, "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_vendor(vendor: Path = VENDOR, *, force: bool = False) -> bool:
    """Fetch the vendored assets unless they are already there; True when it fetched."""
    if not force and is_current(vendor):
        return False
    with _exclusive():
        if not force and is_current(vendor):  # another build fetched them while we waited
            return False
        fetch(vendor)
    return True


if __name__ == "__main__":
    try:
        fetched = ensure_vendor(force="--force" in sys.argv[1:])
    except VendorError as exc:
        sys.exit(f"error: {exc}")
    print(("fetched " if fetched else "up to date: ") + ", ".join(p.spec for p in PACKAGES))
