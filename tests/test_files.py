"""sweeps.files: files people read (figures, tables, specs) replaced whole, keeping what a person set on them."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

from sweeps import files
from sweeps.files import replacing, write_whole


def _parts(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_each_writer_writes_its_own_hidden_file_named_by_host_and_pid(tmp_path, monkeypatch):
    # two writers of one table at once: each its own hidden file, and the name says whose it is
    target = tmp_path / "t.tex"
    with replacing(target) as first, replacing(target) as second:
        first.write(b"first")
        second.write(b"second")
        names = _parts(tmp_path)
        assert len(names) == 2
        assert all(n.startswith(f".t.tex.{files._host()}-{os.getpid()}-") for n in names), names
    assert target.read_bytes() == b"first", "the last to finish stays"
    assert _parts(tmp_path) == []


def _left_by_a_killed_writer(target):
    """The hidden file a writer of `target` SIGKILLed part way leaves, and that writer's pid (gone now)."""
    code = ("import os, signal, sys\n"
            "from sweeps.files import replacing\n"
            "with replacing(sys.argv[1]) as f:\n"
            "    f.write(b'half a table'); f.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", code, str(target)], env={**os.environ})
    assert done.returncode == -9
    left, = _parts(target.parent)
    return target.parent / left


def _age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_writer_killed_outright_leaves_a_hidden_file_that_the_next_write_removes(tmp_path):
    # SIGKILL or a power cut part way: its .part stayed beside the figure or table for good
    target = tmp_path / "t.tex"
    write_whole(target, "earlier")
    left = _left_by_a_killed_writer(target)
    _age(left, 120)
    write_whole(target, "later")
    assert target.read_text() == "later"
    assert _parts(tmp_path) == [], "its writer's process is gone: removed"


def test_a_hidden_file_of_a_writer_that_may_still_run_is_left_to_it(tmp_path):
    # the next write never removes the file another writer is writing now: here (its pid runs), or on another
    # machine sharing the folder (its pid says nothing here), or one just begun (a pid namespace of its own)
    target = tmp_path / "t.tex"
    write_whole(target, "earlier")
    gone_just_now = _left_by_a_killed_writer(target)   # untouched for less than a minute
    running = tmp_path / f".t.tex.{files._host()}-{os.getpid()}-abcdef.part"
    elsewhere = tmp_path / ".t.tex.0badc0de-1-abcdef.part"
    other_file = tmp_path / f".u.tex.{files._host()}-999999999-abcdef.part"
    for path in (running, elsewhere, other_file):
        path.write_bytes(b"being written")
        _age(path, 3600)
    write_whole(target, "later")
    assert _parts(tmp_path) == sorted(p.name for p in (gone_just_now, running, elsewhere, other_file))


def test_any_hidden_file_of_a_write_untouched_for_a_day_is_removed(tmp_path):
    # another machine's, or an earlier version's (a fixed .part name, or one without the host)
    target = tmp_path / "t.tex"
    left = [tmp_path / ".t.tex.0badc0de-1-abcdef.part", tmp_path / ".t.tex.part", tmp_path / ".t.tex.77-abcdef.part"]
    for path in left:
        path.write_bytes(b"left")
        _age(path, files.LEFT_BEHIND_AFTER_S + 60)
    write_whole(target, "table")
    assert _parts(tmp_path) == []


def test_a_replaced_file_keeps_its_permission_bits(tmp_path):
    # a table made group-readable (chmod 640 for a co-author) went back to the umask's 0644, or 0600
    target = tmp_path / "t.tex"
    write_whole(target, "earlier")
    target.chmod(0o640)
    write_whole(target, "later")
    assert target.stat().st_mode & 0o7777 == 0o640
    target.chmod(0o444)   # made read-only: still replaced, as before, and read-only still
    write_whole(target, "again")
    assert target.read_text() == "again" and target.stat().st_mode & 0o7777 == 0o444
    target.chmod(0o6750)   # setuid and setgid bits are not carried onto the new file
    write_whole(target, "later still")
    assert target.stat().st_mode & 0o7777 == 0o750


def test_a_file_with_another_name_is_replaced_and_its_other_names_keep_the_earlier_content_with_a_warning(
        tmp_path, caplog):
    # the other name may be a snapshot (cp -al, rsnapshot) or DVC's cache object, which must not change; written
    # through, each plot changed them. The warning names the way to a name that follows: a symbolic link
    target = tmp_path / "t.tex"
    write_whole(target, "an earlier table")
    snapshot = tmp_path / "snapshot.tex"
    os.link(target, snapshot)
    with caplog.at_level(logging.WARNING, logger="sweeps.files"):
        write_whole(target, "later")
    assert target.read_text() == "later" and snapshot.read_text() == "an earlier table"
    assert target.stat().st_nlink == 1 and _parts(tmp_path) == []
    assert f"{target} had 1 other name(s) (hard links), which keep the earlier content" in caplog.text
    assert "symbolic link (ln -s)" in caplog.text


def test_a_file_without_other_names_is_replaced_without_a_word(tmp_path, caplog):
    target = tmp_path / "t.tex"
    write_whole(target, "earlier")
    with caplog.at_level(logging.WARNING, logger="sweeps.files"):
        write_whole(target, "later")
    assert target.read_text() == "later" and caplog.text == ""


def test_a_file_system_that_refuses_chmod_still_has_the_file_written(tmp_path, monkeypatch):
    # a FUSE or SMB mount refuses chmod: the file is written with the default bits, as before they were kept
    target = tmp_path / "t.tex"
    write_whole(target, "earlier")
    target.chmod(0o640)

    def refused(fd, mode):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "fchmod", refused)
    write_whole(target, "later")
    assert target.read_text() == "later" and _parts(tmp_path) == []
