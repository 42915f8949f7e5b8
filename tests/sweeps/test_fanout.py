"""The local pool's shared objects: written once, loaded once per worker, removed after, orphans cleaned.

A pool sweep hands each worker its grid and markets through a file in a private temporary folder
(``riskon.sweeps.fanout.PoolFanout``). The folder is removed when the sweep ends; a driver killed with
SIGKILL cannot remove it, so the next pool sweep removes folders whose driver is gone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from riskon.sweeps import fanout
from riskon.sweeps.fanout import PoolFanout, SharedFile, _mine, resolve
from riskon.sweeps.pools import ExecutorError


class _NoPool:
    """A stand-in pool: sharing and cleaning need none."""


def test_a_full_temporary_disk_is_one_line(tmp_path):
    fan = PoolFanout(_NoPool(), 2)
    fan.close()  # the folder is gone: writing into it fails as a full or read-only disk would
    with pytest.raises(ExecutorError) as info:
        fan.share({"x": 1})
    text = str(info.value)
    assert text.startswith(f"cannot write the sweep's shared data to {fan.folder}: ") and "TMPDIR" in text
    assert "\n" not in text


def test_a_shared_object_is_loaded_once_per_process_and_its_folder_removed():
    fan = PoolFanout(_NoPool(), 2)
    try:
        handle = fan.share({"grid": list(range(5))})
        assert isinstance(handle, SharedFile) and Path(handle.path).parent == Path(fan.folder)
        first = resolve(handle)
        assert first == {"grid": [0, 1, 2, 3, 4]}
        assert resolve(handle) is first  # kept: the file is read once per process
        assert resolve({"plain": 1}) == {"plain": 1}  # Dask hands over the object itself
    finally:
        fan.close()
        fanout._LOADED.clear()
    assert not Path(fan.folder).exists()


def test_a_folder_left_by_a_dead_driver_is_removed_and_a_live_ones_kept():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # that process has exited: its pid is free (reuse within this test is unlikely)
    root = Path(tempfile.gettempdir())
    orphan = Path(tempfile.mkdtemp(prefix=f"{_mine()}{dead_pid}-", dir=root))
    (orphan / "x.pickle").write_bytes(b"0" * 1000)
    live = Path(tempfile.mkdtemp(prefix=f"{_mine()}{os.getpid()}-", dir=root))
    other = Path(tempfile.mkdtemp(prefix=f"{_mine()}notapid-", dir=root))
    elsewhere = Path(tempfile.mkdtemp(prefix=f"riskon-share-otherhost-{dead_pid}-", dir=root))
    try:
        fan = PoolFanout(_NoPool(), 2)
        fan.close()
        assert not orphan.exists()
        assert live.exists() and other.exists()  # a running driver's folder, and a name that is not ours
        assert elsewhere.exists()  # another host's pid: not judged here
    finally:
        for folder in (orphan, live, other, elsewhere):
            if folder.exists():
                for f in folder.iterdir():
                    f.unlink()
                folder.rmdir()
