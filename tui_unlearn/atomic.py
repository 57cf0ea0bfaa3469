"""Writing a folder all at once: the one swap that session models and checkpoints share.

Used where a kill mid-write must leave the previous folder (or none), never half of one.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path


def write_folder_atomically(folder: Path, tmp_prefix: str, write: Callable[[Path], None]) -> Path:
    """``folder`` written all at once: ``write(tmp)`` fills a new temp folder beside it (named
    ``tmp_prefix`` + pid + random), which then replaces ``folder``.

    An older ``folder`` is first moved aside (``tmp_prefix`` + "old-"), then dropped, so at every
    moment either the old or the new one is complete under its name. An exception from ``write``
    removes the temp folder and propagates; a kill leaves only hidden temp folders, which
    readers ignore and the writer's next save or resume removes. Returns ``folder``.
    """
    tmp = folder.with_name(f"{tmp_prefix}{os.getpid()}-{secrets.token_hex(3)}")
    tmp.mkdir()
    try:
        write(tmp)
        if folder.exists():
            old = folder.with_name(f"{tmp_prefix}old-{secrets.token_hex(3)}")
            os.rename(folder, old)
            os.rename(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
