"""All-or-nothing version directories: build in hidden temporary directories, rename into place at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from crowdalpha.datasets.errors import rule_error


@contextlib.contextmanager
def staged_directories(finals: Sequence[Path]) -> Iterator[list[Path]]:
    """Yield one empty temporary directory per final path; rename them all into place only on success.

    Every final directory must not exist yet (a dataset version is immutable). On any failure the
    temporary directories, any already renamed final directory and any parent created here are
    removed, so no partial version is left behind.
    """
    finals = [Path(final) for final in finals]
    for final in finals:
        if final.exists():
            raise rule_error(
                "a dataset version is immutable: its directory must not exist yet", f"{final} exists"
            )
    created = [parent for parent in dict.fromkeys(final.parent for final in finals) if not parent.exists()]
    staged: list[Path] = []
    renamed: list[Path] = []
    try:
        for final in finals:
            final.parent.mkdir(parents=True, exist_ok=True)
            staged.append(
                Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
            )
        yield list(staged)
        umask = os.umask(0)
        os.umask(umask)
        for directory, final in zip(staged, finals, strict=True):
            directory.chmod(0o777 & ~umask)
            directory.rename(final)
            renamed.append(final)
    except BaseException:
        for directory in [*staged, *renamed]:
            shutil.rmtree(directory, ignore_errors=True)
        for parent in reversed(created):
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise
