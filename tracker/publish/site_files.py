"""The site's files: a writer that skips outputs whose inputs did not change and removes
stale ones, and the build manifest in `.build/` that remembers what made each output."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.core.errors import TrackerError
from tracker.core.files import atomic_write, read_bytes, safe_relative
from tracker.publish import site_layout as layout
from tracker.storage.captures import DamagedFileError

log = logging.getLogger("tracker.site")  # the name log lines have always shown

BUILD_DIR = ".build"
MANIFEST = f"{BUILD_DIR}/manifest.json"


class SiteError(TrackerError):
    """The site cannot be built where asked."""


class SiteFolderError(SiteError):
    """The output folder holds files that no build made: a usage error (exit 2)."""

    exit_code = 2


@dataclass
class BuildStats:
    """What a build did, for the command's output and the benchmark."""

    out: Path
    documents: int = 0
    changes: int = 0
    computed: int = 0
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    seconds: float = 0.0
    # "<document>: <why>" for each document left out because a stored file is damaged
    skipped: list[str] = field(default_factory=list)

    def line(self) -> str:
        left_out = (
            f"; {len(self.skipped)} damaged documents left out (`verify` names the files)"
            if self.skipped
            else ""
        )
        return (
            f"site: {self.documents} documents, {self.changes} changes"
            f" ({self.computed} computed); {self.written} files written,"
            f" {self.unchanged} unchanged, {self.removed} removed"
            f" in {self.seconds:.2f} s → {self.out / layout.HOME}{left_out}"
        )


class SiteWriter:
    """Writes outputs, skipping those whose inputs are unchanged; removes stale ones."""

    def __init__(
        self,
        out: Path,
        previous: dict[str, str],
        stats: BuildStats,
        made: dict[str, str] | None = None,
    ) -> None:
        self.out = out
        self.previous = previous
        self.made = made if made is not None else previous
        self.current: dict[str, str] = {}
        self.stats = stats
        self._real_out = os.path.realpath(out)
        self._folders: dict[str, bool] = {}  # folder → inside the output folder

    def target(self, path: str) -> Path | None:
        """`out/path` when `path` is a plain relative path whose folder resolves inside the
        output folder (no `..`, absolute path, or symbolic link leading out), else None."""
        parts = safe_relative(path)
        if parts is None:
            return None
        target = self.out.joinpath(*parts)
        folder = str(target.parent)
        inside = self._folders.get(folder)
        if inside is None:
            real = os.path.realpath(folder)
            inside = real == self._real_out or real.startswith(self._real_out + os.sep)
            self._folders[folder] = inside
        return target if inside else None

    def _plain_file(self, path: str) -> Path | None:
        """`out/path` if it is a plain file inside the output folder (not a link)."""
        target = self.target(path)
        if target is None:
            return None
        try:
            return target if stat.S_ISREG(os.lstat(target).st_mode) else None
        except OSError:
            return None

    def read(self, path: str) -> bytes:
        """An output of a previous build (a cache), never through a link."""
        target = self._plain_file(path)
        if target is None:
            raise OSError(f"{path} is not a plain file inside the site folder")
        return read_bytes(target, follow=False)

    def is_fresh(self, path: str, key: str) -> bool:
        """`path` was made from `key` last time and is still there, a plain file."""
        return self.previous.get(path) == key and self._plain_file(path) is not None

    def fresh(self, path: str, key: str) -> bool:
        """Keep `path` as it is when it is fresh; say whether it was."""
        if self.is_fresh(path, key):
            self.current[path] = key
            self.stats.unchanged += 1
            return True
        return False

    def write(self, path: str, data: str | bytes, key: str | None = None) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        key = key or hashlib.sha256(raw).hexdigest()
        if self.fresh(path, key):
            return
        atomic_write(self._writable(path), raw, durable=False)  # the site can be rebuilt
        self.current[path] = key
        self.stats.written += 1

    def copy(self, path: str, source: Path, key: str) -> None:
        if self.fresh(path, key):
            return
        # Through a fresh temporary name (O_EXCL): a fixed one planted in a shared site
        # folder as a link would have been written through.
        try:
            data = read_bytes(source)
        except OSError as exc:
            raise DamagedFileError(source, f"cannot be read: {exc.strerror or exc}") from None
        atomic_write(self._writable(path), data, durable=False)
        self.current[path] = key
        self.stats.written += 1

    def _writable(self, path: str) -> Path:
        target = self.target(path)
        if target is None:
            raise SiteError(f"{self.out / path} leads outside the site folder; refused")
        return target

    def finish(self, fingerprint: str) -> None:
        for path in sorted(set(self.made) - set(self.current)):
            target = self._plain_file(path)
            if target is not None:
                target.unlink()
                self.stats.removed += 1
                _prune_empty(target.parent, self.out)
        _write_manifest(
            self.out, {"fingerprint": fingerprint, "outputs": self.current, "complete": True}
        )


def _read_manifest(out: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_bytes(out / MANIFEST, follow=False))
    except (ValueError, OSError):
        return {}  # none yet, or damaged: that only costs a full rebuild
    return data if isinstance(data, dict) else {}


def _made_outputs(manifest: dict[str, Any]) -> dict[str, str]:
    """The files a previous build says it made, only those that can be outputs: the
    manifest is a file in a shared folder, so a `../x` or `/etc/x` in it is ignored
    (never deleted), and said once."""
    outputs = manifest.get("outputs")
    made: dict[str, str] = {}
    for path, key in (outputs if isinstance(outputs, dict) else {}).items():
        if (
            safe_relative(path) is None
            or not isinstance(key, str)
            or not layout.is_output_path(path)
        ):
            log.warning("site manifest names %r, which is no output; ignored", path)
            continue
        made[path] = key
    return made


def _check_out(out: Path, force: bool) -> None:
    """Refuse a folder holding files that no build made, unless forced: a build writes
    `index.html`, `assets/`… over whatever is there, and removes what it made before."""
    if force or not out.exists():
        return
    if not out.is_dir():
        raise SiteFolderError(f"{out} is not a folder")
    manifest = out / MANIFEST
    if manifest.is_file() and not manifest.is_symlink():
        return  # a previous build
    if any(out.iterdir()):
        raise SiteFolderError(
            f"{out} is not empty and holds no previous build ({MANIFEST} is missing):"
            " building there would overwrite its files; give an empty or new folder,"
            " or --force to build there anyway"
        )


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=0).encode("utf-8"))


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
