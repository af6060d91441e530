"""Never-overwrite file operations on real folders, across two file systems when the machine has them."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from daemon.engine.effects import Effects
from daemon.errors import InputError, UnsafePathError
from daemon.files import ops
from tests.support import dead_pid

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
    stale = tmp_path / f".gristmill-tmp-{dead_pid()}-0"
    mine = tmp_path / f".gristmill-tmp-{os.getpid()}-0"
    document = tmp_path / ".gristmill-tmp-notes.txt"  # not ours: no pid in the name
    for path in (stale, mine, document):
        path.write_text("x")

    assert ops.sweep_temporaries(tmp_path) == [stale]
    assert not stale.exists() and mine.exists() and document.exists()


def _copy(src: Path, folder: Path) -> Path:
    """A route's copy_to, the way a run does it: the intent recorded, then an exact name claimed."""
    return Effects(dry_run=False, record=lambda intent: None).place("copy_to", src, folder)


# -- the publish step itself: a name taken after the free-name check must still never be replaced


def test_publishing_a_write_onto_a_name_that_exists_fails_and_keeps_both(tmp_path):
    dest = tmp_path / "Summaries" / "a.md"
    dest.parent.mkdir()
    dest.write_bytes(b"someone else's")

    with pytest.raises(FileExistsError):
        ops.write_exact(dest, b"ours")

    assert dest.read_bytes() == b"someone else's"
    assert list(dest.parent.iterdir()) == [dest]  # no temporary file left behind either


def _rival(taken: list[Path]):
    """An intent recorder that, like a second run, takes the first recorded name before it is published."""

    def record(intent: dict) -> None:
        if not taken:
            taken.append(Path(intent["destination"]))
            taken[0].parent.mkdir(parents=True, exist_ok=True)
            taken[0].write_bytes(b"rival")

    return record


def test_a_name_taken_between_the_check_and_the_publish_of_a_write_gets_a_suffix(tmp_path):
    taken: list[Path] = []
    folder = tmp_path / "Summaries"

    written = Effects(dry_run=False, record=_rival(taken)).write(folder / "a.md", "ours")

    assert taken == [folder / "a.md"] and taken[0].read_bytes() == b"rival"
    assert written == folder / "a (1).md" and written.read_text() == "ours"
    assert sorted(p.name for p in folder.iterdir()) == ["a (1).md", "a.md"]


def test_a_name_taken_before_a_move_across_file_systems_is_published_gets_a_suffix(tmp_path):
    other = _other_file_system(tmp_path)
    if other is None:
        pytest.skip("no second file system here (/dev/shm missing or on the same device as the tmp dir)")
    folder = Path(os.path.join(other, f"gristmill-race-{os.getpid()}-{tmp_path.name}"))
    src = tmp_path / "bill.pdf"
    src.write_bytes(b"new bill")
    taken: list[Path] = []
    try:
        moved = Effects(dry_run=False, record=_rival(taken)).place("move_to", src, folder)

        assert taken == [folder / "bill.pdf"] and taken[0].read_bytes() == b"rival"
        assert moved == folder / "bill (1).pdf" and moved.read_bytes() == b"new bill" and not src.exists()
        assert sorted(p.name for p in folder.iterdir()) == ["bill (1).pdf", "bill.pdf"]
    finally:
        for p in folder.glob("*"):
            p.unlink()
        if folder.exists():
            folder.rmdir()


# -- names, modes and the data errors carry


def test_a_dotfile_with_a_suffix_keeps_its_whole_name_before_the_number(tmp_path):
    for content in (b"first", b"second"):
        src = tmp_path / "src" / ".notes.txt"
        src.parent.mkdir(exist_ok=True)
        src.write_bytes(content)
        ops.move_file(src, tmp_path / "out")

    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".notes.txt", ".notes.txt (1)"]


def test_a_name_that_is_not_utf8_and_just_fits_keeps_its_bytes_in_the_numbered_name(tmp_path):
    stem = "x" * 246 + os.fsdecode(b"\xff")  # 247 bytes: with " (1).pdf" exactly 255
    for content in (b"first", b"second"):
        src = tmp_path / "src"
        src.write_bytes(content)
        ops.move_file(src, tmp_path / "out", f"{stem}.pdf")

    assert sorted(os.listdir(os.fsencode(tmp_path / "out"))) == sorted(
        [os.fsencode(f"{stem}.pdf"), os.fsencode(f"{stem} (1).pdf")]
    )


def test_a_written_file_gets_the_usual_mode_and_a_temporary_name_in_use_is_left_alone(tmp_path):
    busy = tmp_path / f".gristmill-tmp-{os.getpid()}-0"  # another thread of this process is writing
    busy.write_bytes(b"another writer's bytes")
    previous = os.umask(0o022)
    try:
        ops.write_exact(tmp_path / "a.md", b"ours")
    finally:
        os.umask(previous)

    assert (tmp_path / "a.md").read_bytes() == b"ours"
    assert os.stat(tmp_path / "a.md").st_mode & 0o777 == 0o644
    assert busy.read_bytes() == b"another writer's bytes"


def test_refusals_carry_the_path_they_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real")
    src = tmp_path / "a.txt"
    src.write_bytes(b"a")

    with pytest.raises(UnsafePathError) as folder:
        ops.move_file(src, tmp_path / "linked")
    assert folder.value.path == str(tmp_path / "linked")
    with pytest.raises(UnsafePathError) as source:
        ops.move_file(tmp_path / "link.txt", tmp_path / "out")
    assert source.value.path == str(tmp_path / "link.txt")
    with pytest.raises(InputError) as not_a_file:
        ops.move_file(tmp_path / "real", tmp_path / "out")
    assert str(not_a_file.value) == f"{tmp_path / 'real'} is not a regular file"


def test_a_full_destination_is_an_outage_of_that_folder(tmp_path):
    from daemon.errors import FolderUnavailable
    from tests.tmpfs import tmpfs

    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(256 * 1024))
    with tmpfs(tmp_path / "Full", 64 * 1024) as full:
        for attempt in (lambda: ops.write_exact(full.path / "a.bin", src.read_bytes()),
                        lambda: ops.place_exact(src, full.path / "sub" / "big.bin")):  # fmt: skip
            with pytest.raises(FolderUnavailable) as caught:
                attempt()
            assert caught.value.folder in (full.path, full.path / "sub")
            assert caught.value.reason == "its disk is full; free some space"
        full.read_only(True)
        with pytest.raises(FolderUnavailable) as caught:
            ops.place_exact(src, full.path / "new" / "big.bin")
        assert (caught.value.folder, caught.value.reason) == (
            full.path / "new",
            "its file system is read-only; mount it read-write",
        )
        assert src.exists()


def test_ten_thousand_taken_names_are_a_clear_error(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    for dest in ops.candidates(folder, "a.txt"):
        dest.touch()
    src = tmp_path / "a.txt"
    src.write_bytes(b"a")

    with pytest.raises(UnsafePathError) as caught:
        ops.move_file(src, folder)

    assert str(caught.value) == f"no free name for a.txt in {folder} after 10000 tries"
    assert (caught.value.path, caught.value.base) == ("a.txt", folder) and src.exists()


def test_ten_thousand_temporary_names_taken_are_a_clear_error_and_a_write_needs_none_of_them(tmp_path):
    for n in range(ops.MAX_SUFFIX):
        (tmp_path / f".gristmill-tmp-{os.getpid()}-{n}").touch()
    src = tmp_path / "src.bin"
    src.write_bytes(b"theirs")

    with pytest.raises(UnsafePathError) as caught:
        ops.copy_exact(src, tmp_path / "a.md")  # a copy (across file systems) fills a named temporary

    assert str(caught.value) == f"cannot create a temporary file in {tmp_path}"
    assert (caught.value.path, caught.value.base) == (str(tmp_path), tmp_path)
    assert not (tmp_path / "a.md").exists()
    if ops.UNNAMED_TEMPORARIES:  # Linux: a written file has no name until it is complete
        ops.write_exact(tmp_path / "b.md", b"ours")
        assert (tmp_path / "b.md").read_bytes() == b"ours"
        assert len(os.listdir(tmp_path)) == ops.MAX_SUFFIX + 2


def test_a_write_makes_its_folder_and_refuses_a_linked_folder_or_a_file_in_the_way(tmp_path):
    from daemon.errors import FolderBlocked

    ops.write_exact(tmp_path / "new" / "deeper" / "a.md", b"ours")
    assert (tmp_path / "new" / "deeper" / "a.md").read_bytes() == b"ours"
    assert os.listdir(tmp_path / "new" / "deeper") == ["a.md"]  # no temporary left behind
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafePathError):
        ops.write_exact(tmp_path / "link" / "a.md", b"ours")
    (tmp_path / "file").write_text("a file")
    with pytest.raises(FolderBlocked):
        ops.write_exact(tmp_path / "file" / "a.md", b"ours")
    assert os.listdir(tmp_path / "real") == [] and (tmp_path / "file").read_text() == "a file"


def test_a_write_into_a_folder_it_may_not_list_still_publishes_under_its_exact_name(tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    folder.chmod(0o300)  # write and enter, not read: the folder cannot be opened, so paths are used
    try:
        ops.write_exact(folder / "a.md", b"ours")
        with pytest.raises(FileExistsError):
            ops.write_exact(folder / "a.md", b"again")
        src = tmp_path / "bill.pdf"
        src.write_bytes(b"bill")
        ops.place_exact(src, folder / "bill.pdf")
        assert (folder / "a.md").read_bytes() == b"ours" and (folder / "bill.pdf").read_bytes() == b"bill"
    finally:
        folder.chmod(0o700)


# -- Effects: free names, and what an earlier attempt already did


def test_a_placed_file_takes_the_next_free_name_and_ten_thousand_taken_names_are_a_clear_error(tmp_path):
    folder, src = tmp_path / "out", tmp_path / "a.txt"
    folder.mkdir()
    src.write_bytes(b"a")
    (folder / "a.txt").write_bytes(b"taken")
    assert _copy(src, folder) == folder / "a (1).txt"  # a taken name is passed over, not the end of the search

    for dest in ops.candidates(folder, "a.txt"):
        dest.touch()
    with pytest.raises(UnsafePathError) as caught:
        _copy(src, folder)
    assert str(caught.value) == f"no free name for a.txt in {folder}"
    assert (caught.value.path, caught.value.base) == ("a.txt", folder)


def test_an_earlier_attempt_counts_only_when_it_did_the_same_kind_of_thing_to_the_same_place(tmp_path):
    src, first, other = tmp_path / "a.txt", tmp_path / "First", tmp_path / "Other"
    src.write_bytes(b"a")
    earlier = {"intent": "copy_to", "folder": str(first), "destination": str(first / "a.txt")}

    def place(kind: str, folder: Path) -> Path:
        return Effects(dry_run=False, record=lambda intent: None, done=earlier).place(kind, src, folder)

    assert place("copy_to", first) == first / "a.txt"  # done before the crash: not copied again
    assert not first.exists()
    assert place("copy_to", other) == other / "a.txt"  # the step now aims elsewhere: it copies
    assert (other / "a.txt").read_bytes() == b"a"
    assert place("move_to", first) == first / "a.txt" and not src.exists()  # a move is not the earlier copy
    assert (first / "a.txt").read_bytes() == b"a"


def test_a_dry_run_names_the_free_name_it_would_take_and_touches_nothing(tmp_path):
    folder, src = tmp_path / "out", tmp_path / "a.txt"
    folder.mkdir()
    src.write_bytes(b"a")
    (folder / "a.txt").write_bytes(b"taken")
    dry = Effects(dry_run=True, record=lambda intent: pytest.fail("a dry run records nothing"))
    assert dry.place("move_to", src, folder) == folder / "a (1).txt"
    assert dry.write(folder / "a.txt", "x") == folder / "a.txt"
    assert src.exists() and sorted(p.name for p in folder.iterdir()) == ["a.txt"]


def test_a_write_records_its_intent_first_and_a_crash_after_it_is_recovered_as_done(tmp_path):
    from daemon.engine.effects import recover
    from daemon.files.hashing import sha256_bytes

    intents: list[dict] = []
    written = Effects(dry_run=False, record=intents.append).write(tmp_path / "a.md", "ours")
    assert intents == [{
        "intent": "write", "requested": str(tmp_path / "a.md"), "sha256": sha256_bytes(b"ours"),
        "destination": str(written),
    }]  # fmt: skip
    # The process died before the step's output was stored: the intent is what the run has.
    assert recover({"summary": {"text": "t"}, "note": intents[0]}) == ({"summary": {"text": "t"}}, {"note": intents[0]})
    again = Effects(dry_run=False, record=intents.append, done=intents[0]).write(tmp_path / "a.md", "ours")
    assert again == written and sorted(p.name for p in tmp_path.iterdir()) == ["a.md"]  # not written twice


def test_a_temporary_of_another_live_process_is_kept_and_that_process_is_not_signalled(tmp_path):
    import subprocess
    import sys

    # Another gristmill process in the middle of a write: alive, ours (same user), not this process.
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        theirs = tmp_path / f".gristmill-tmp-{other.pid}-0"
        theirs.write_text("half written")
        assert ops.sweep_temporaries(tmp_path) == []
        assert theirs.exists() and other.poll() is None  # asked whether it lives (signal 0), nothing more
    finally:
        other.stdin.close()
        other.wait(timeout=30)
    assert other.returncode == 0


def test_a_destination_folder_is_made_with_its_parents_and_an_existing_one_is_fine(tmp_path):
    folder = tmp_path / "a" / "b" / "c"
    ops.ensure_folder(folder)
    ops.ensure_folder(folder)
    assert folder.is_dir() and ops.blocking_file(folder) is None


def test_a_file_in_the_way_of_a_destination_folder_is_named(tmp_path):
    from daemon.errors import FolderBlocked

    (tmp_path / "a").write_text("a file")
    with pytest.raises(FolderBlocked) as caught:
        ops.ensure_folder(tmp_path / "a" / "b")
    assert str(caught.value) == (
        f"cannot put files into {tmp_path / 'a' / 'b'}: {tmp_path / 'a'} is a file, not a folder; move that file "
        "away or change the destination in the workflow, then: gristmill retry --failed"
    )
    assert (caught.value.folder, caught.value.blocker) == (tmp_path / "a" / "b", tmp_path / "a")
    with pytest.raises(FolderBlocked) as caught:
        ops.ensure_folder(tmp_path / "a")
    assert (caught.value.folder, caught.value.blocker) == (tmp_path / "a", tmp_path / "a")
    assert f"{tmp_path / 'a'}: it is a file, not a folder" in str(caught.value)


def test_a_destination_folder_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafePathError) as caught:
        ops.ensure_folder(tmp_path / "link")
    assert str(caught.value) == f"{tmp_path / 'link'} is a symbolic link; gristmill does not follow links"
    assert caught.value.path == str(tmp_path / "link")


@pytest.mark.parametrize("name", ["a.txt", "a", "a.", "x.tar.gz", ".notes.txt", "..x", "a b.pdf", "y" * 250 + ".pdf"])
def test_the_names_a_move_tries_are_those_pathlib_would_make(tmp_path, name):
    from pathlib import PurePath

    path = PurePath(name)
    stem, suffix = (name, "") if name.startswith(".") else (path.stem, path.suffix)
    expected = [tmp_path / name] + [
        tmp_path / f"{ops._fit(stem, ops.MAX_NAME_BYTES - len(f' ({n}){suffix}'.encode()))} ({n}){suffix}"
        for n in range(1, 5)
    ]
    tried = ops.names(str(tmp_path), name)
    assert [next(tried) for _ in range(5)] == [str(p) for p in expected]
    made = ops.candidates(tmp_path, name)
    assert [next(made) for _ in range(5)] == expected
