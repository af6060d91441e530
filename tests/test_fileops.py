"""Never-overwrite file operations on real folders, across two file systems when the machine has them."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from daemon.errors import InputError, UnsafePathError
from daemon.engine.effects import Effects
from daemon.files import ops

SHM = Path("/dev/shm")


def _other_file_system(tmp_path: Path) -> Path | None:
    if not SHM.is_dir() or not os.access(SHM, os.W_OK):
        return None
    return SHM if os.stat(SHM).st_dev != os.stat(tmp_path).st_dev else None


def test_a_collision_at_the_destination_gets_a_numbered_suffix(tmp_path):
    dest = tmp_path / "Invoices"
    dest.mkdir()
    (dest / "bill.pdf").write_bytes(b"older bill")
    (dest / "bill (1).pdf").write_bytes(b"another older bill")
    src = tmp_path / "bill.pdf"
    src.write_bytes(b"new bill")

    moved = ops.move_file(src, dest)

    assert moved == dest / "bill (2).pdf" and moved.read_bytes() == b"new bill"
    assert (dest / "bill.pdf").read_bytes() == b"older bill"
    assert (dest / "bill (1).pdf").read_bytes() == b"another older bill"
    assert not src.exists()


def test_the_destination_folder_is_created_when_missing(tmp_path):
    src = tmp_path / "a.txt"
    src.write_bytes(b"a")

    moved = ops.move_file(src, tmp_path / "new" / "deeper")

    assert moved == tmp_path / "new" / "deeper" / "a.txt" and moved.read_bytes() == b"a"


def test_two_moves_to_the_same_name_at_once_both_keep_their_file(tmp_path):
    dest = tmp_path / "out"
    sources = []
    for n in range(8):
        (tmp_path / f"in{n}").mkdir()
        src = tmp_path / f"in{n}" / "same.txt"
        src.write_bytes(f"content {n}".encode())
        sources.append(src)
    barrier = threading.Barrier(len(sources))
    results: list[Path] = []

    def move(src: Path) -> None:
        barrier.wait()
        results.append(ops.move_file(src, dest))

    threads = [threading.Thread(target=move, args=(s,)) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert len(set(results)) == 8
    assert sorted(p.read_bytes() for p in results) == sorted(f"content {n}".encode() for n in range(8))
    assert not any(p.name.startswith(".gristmill-tmp-") for p in dest.iterdir())


def test_a_move_across_file_systems_copies_fsyncs_and_then_removes_the_source(tmp_path):
    other = _other_file_system(tmp_path)
    if other is None:
        pytest.skip("no second file system here (/dev/shm missing or on the same device as the tmp dir)")
    dest = Path(os.path.join(other, f"gristmill-test-{os.getpid()}-{tmp_path.name}"))
    try:
        (dest).mkdir()
        (dest / "big.bin").write_bytes(b"already there")
        src = tmp_path / "big.bin"
        data = os.urandom(3 * 1024 * 1024 + 17)
        src.write_bytes(data)
        os.utime(src, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))

        moved = ops.move_file(src, dest)

        assert os.stat(moved).st_dev != os.stat(tmp_path).st_dev
        assert moved == dest / "big (1).bin" and moved.read_bytes() == data
        assert os.stat(moved).st_mtime_ns == 1_600_000_000_000_000_000
        assert (dest / "big.bin").read_bytes() == b"already there"
        assert not src.exists()
        assert sorted(p.name for p in dest.iterdir()) == ["big (1).bin", "big.bin"]  # no temp left
    finally:
        for p in dest.glob("*"):
            p.unlink()
        dest.rmdir()


def test_a_copy_across_file_systems_keeps_the_source(tmp_path):
    other = _other_file_system(tmp_path)
    if other is None:
        pytest.skip("no second file system here (/dev/shm missing or on the same device as the tmp dir)")
    dest = Path(os.path.join(other, f"gristmill-copy-{os.getpid()}-{tmp_path.name}"))
    try:
        src = tmp_path / "a.txt"
        src.write_bytes(b"keep me")

        copied = _copy(src, dest)

        assert copied.read_bytes() == b"keep me" and src.read_bytes() == b"keep me"
    finally:
        for p in dest.glob("*"):
            p.unlink()
        if dest.exists():
            dest.rmdir()


def test_a_symlinked_source_is_never_followed(tmp_path):
    target = tmp_path / "secret.txt"
    target.write_bytes(b"secret")
    link = tmp_path / "link.txt"
    link.symlink_to(target)

    with pytest.raises(UnsafePathError, match="symbolic link"):
        ops.move_file(link, tmp_path / "out")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        _copy(link, tmp_path / "out")
    assert link.is_symlink() and target.read_bytes() == b"secret"
    assert not (tmp_path / "out" / "link.txt").exists()


def test_a_symlinked_destination_folder_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "Docs").symlink_to(elsewhere)
    src = tmp_path / "a.txt"
    src.write_bytes(b"a")

    with pytest.raises(UnsafePathError, match="symbolic link"):
        ops.move_file(src, tmp_path / "Docs")
    assert src.read_bytes() == b"a" and list(elsewhere.iterdir()) == []


def test_a_vanished_source_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="is gone"):
        ops.move_file(tmp_path / "nothing.txt", tmp_path / "out")


def test_a_collision_on_a_name_of_255_bytes_shortens_the_stem_not_the_suffix(tmp_path):
    name = "é" * 125 + ".pdf"  # 250 + 4 bytes
    (tmp_path / "src").mkdir()
    first, second = tmp_path / "src" / "a", tmp_path / "src" / "b"
    first.write_bytes(b"one")
    second.write_bytes(b"two")
    dest = tmp_path / "dest"

    kept = ops.move_file(first, dest, name)
    renamed = ops.move_file(second, dest, name)

    assert kept.name == name
    assert renamed.name.endswith(" (1).pdf") and len(renamed.name.encode()) <= 255
    assert renamed.read_bytes() == b"two" and kept.read_bytes() == b"one"


def test_temporaries_of_dead_processes_are_swept_and_live_ones_kept(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".gristmill-tmp-{int(dead.stdout)}-0"
    mine = tmp_path / f".gristmill-tmp-{os.getpid()}-0"
    document = tmp_path / ".gristmill-tmp-notes.txt"  # not ours: no pid in the name
    for path in (stale, mine, document):
        path.write_text("x")

    assert ops.sweep_temporaries(tmp_path) == [stale]
    assert not stale.exists() and mine.exists() and document.exists()


def _copy(src: Path, folder: Path) -> Path:
    """A route's copy_to, the way a run does it: the intent recorded, then an exact name claimed."""
    return Effects(dry_run=False, record=lambda intent: None).place("copy_to", src, folder)
