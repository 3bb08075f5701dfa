"""Host locks: one holder at a time among this host's processes, and no lock file left behind by those that let go."""

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from sweeps import host_locks
from sweeps.host_locks import LockHeld, host_lock

TAKE_IN_TURN = """
import os, sys, time
from pathlib import Path
from sweeps.host_locks import host_lock
path, inside, rounds, go = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
(go.parent / f"ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.005)
together = 0
for _ in range(rounds):
    with host_lock(path, "a test") as held:
        assert held
        try:   # another holder inside now: a file only the holder makes and removes is there
            os.close(os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            together += 1
            continue
        os.unlink(inside)
print(together)
"""


def test_processes_taking_one_lock_in_turn_never_hold_it_together_though_each_removes_its_file(tmp_path):
    # each lock had left its file in /tmp for good (376 after two CI runs). Removed by its holder as it lets go,
    # a process that opened the file before it was removed gets its lock, of a file no longer named: it must take
    # the file the name leads to now, or it holds the lock beside the process that made that one
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", TAKE_IN_TURN, str(tmp_path / "x.lock"), str(tmp_path / "inside"),
                               "300", str(go)], text=True, stdout=subprocess.PIPE) for _ in range(4)]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    assert [p.communicate(timeout=120)[0].strip() for p in procs] == ["0"] * 4, "rounds held by two at once"
    assert not (tmp_path / "x.lock").exists(), "each holder removes the file as it lets go"


HOLD = """
import sys, time
from pathlib import Path
from sweeps.host_locks import host_lock
with host_lock(Path(sys.argv[1]), "a test", note="holder 1"):
    print("holding", flush=True)
    time.sleep(120)
"""


def test_a_lock_file_left_by_a_holder_killed_outright_is_taken_by_the_next_and_removed(tmp_path):
    path = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], text=True, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(LockHeld) as held:
            with host_lock(path, "a test", wait=False):
                pytest.fail("taken while another process holds it")
        assert held.value.note == "holder 1"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert path.read_text() == "holder 1\n", "a killed holder removes nothing"
    with host_lock(path, "a test", wait=False, note="holder 2") as taken:
        assert taken and path.read_text() == "holder 2\n"
    assert not path.exists()


def test_a_lock_is_held_against_another_open_of_its_file_in_the_same_process_too(tmp_path):
    path = tmp_path / "x.lock"
    with host_lock(path, "a test", note="4242"):
        with pytest.raises(LockHeld, match=r"held by another process \(4242\)"):
            with host_lock(path, "a test", wait=False):
                pass
    with host_lock(path, "a test", wait=False) as taken:   # read-only: shared with another user's processes
        assert taken and path.read_text() == ""
    assert not path.exists()


def test_a_lock_that_cannot_be_taken_lets_the_block_run_without_it_and_says_so_in_a_debug_line(tmp_path, caplog):
    path = tmp_path / "no such folder" / "x.lock"
    with caplog.at_level(logging.DEBUG, logger="sweeps.host_locks"):
        with host_lock(path, "opening a store") as taken:
            assert taken is False
    assert f"lock on opening a store not taken: no lock file {path}" in caplog.text


def test_this_users_lock_folder_is_made_for_this_user_alone_and_refused_where_another_could_have_made_it(
        tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = host_locks.lock_folder()
    assert folder == tmp_path / f"sweeps-locks-{os.getuid()}"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert host_locks.lock_folder() == folder, "found again as made"
    folder.chmod(0o777)
    with pytest.raises(PermissionError, match="is not a folder of this user's alone"):
        host_locks.lock_folder()
    folder.rmdir()
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    folder.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PermissionError, match="is not a folder of this user's alone"):
        host_locks.lock_folder()


def test_the_suite_keeps_what_it_leaves_in_the_temporary_folder_in_a_session_folder_of_its_own(
        own_temporary_folder, tmp_path_factory):
    # every test run had left its lock files in the machine's /tmp
    assert Path(tempfile.gettempdir()) == own_temporary_folder
    assert own_temporary_folder.is_relative_to(tmp_path_factory.getbasetemp())
    seen = subprocess.run([sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"], text=True,
                          capture_output=True, check=True).stdout.strip()
    assert seen == str(own_temporary_folder), "a process a test starts takes its locks there too"
