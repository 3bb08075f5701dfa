"""The `--data` option: which data sets a sweep runs on, one table column each.

    --data synthetic                   the embedded synthetic faces (the default when none is given)
    --data rafdb=/data/RAF-DB/basic    a real set: its registry name and its folder (official layout)
    --data rafdb=/data/raf-db-dataset/DATASET    RAF-DB as Kaggle's class folders train/1..7/, test/1..7/
    --data rafdb=/d/RAF --data affectnet=/d/AffectNet    two columns, as the paper's Table 1

Each value is checked here, before anything runs: the name (did-you-mean on a typo), the folder
(exists, is a directory; made an absolute path, its symbolic links kept, a relative one's from the shell's working
folder, $PWD: `absolute_folder`), duplicates, and
then the data layer's own `check_layout`, which names the missing file when a folder is not in the expected
layout.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from transfer_core.config import DATASETS, ConfigError, DataConfig

from search_spaces.yaml_doc import SpecError

__all__ = ["DataChoice", "DataOptionError", "absolute_folder", "check_data_layouts", "parse_data_options",
           "physical_cwd_choice", "resolved_choice", "SYNTHETIC"]

_EXAMPLE_PATHS = {"rafdb": "/data/RAF-DB/basic", "ferplus": "/data/FERPlus", "affectnet": "/data/AffectNet",
                  "fer2013": "/data/fer2013", "imagefolder": "/data/my_faces"}


class DataOptionError(SpecError):
    """A --data value is invalid; the message names the value and what would be right."""


@dataclass(frozen=True)
class DataChoice:
    """One data set of a sweep: `name` labels its table column; `root` is None for synthetic."""

    name: str
    dataset: str
    root: str | None = None
    # a relative folder made absolute from os.getcwd() (the working folder with its links resolved), its own links
    # kept, as versions from ed57113 to eca91f3 did (`physical_cwd_choice`); None where that is `root`
    physical_cwd_root: str | None = field(default=None, compare=False, repr=False)

    @property
    def synthetic(self) -> bool:
        return self.dataset == "synthetic"


SYNTHETIC = DataChoice("synthetic", "synthetic", None)


def _fail(value: str, message: str) -> DataOptionError:
    return DataOptionError(f"--data {value!r}: {message}", source="--data", key_path=value)


def _parse_one(value: str) -> DataChoice:
    if not isinstance(value, str):
        raise _fail(str(value), f"{value!r} is not a string: expected NAME=PATH or synthetic")
    if not value.strip():   # `--data "$DATA"`, DATA unset: read as a path, the working folder ("a path without a name")
        raise _fail(value, "it is empty: write NAME=PATH (e.g. rafdb=/data/RAF-DB/basic), or leave --data out for "
                           "the synthetic faces")
    name, sep, path = value.strip().partition("=")
    name = name.strip()
    if name not in DATASETS and not sep and ("/" in name or os.sep in name or Path(name).expanduser().exists()):
        raise _fail(value, f"a path without a data set's name: write --data NAME={name} with NAME one of "
                           f"{', '.join(d for d in DATASETS if d != 'synthetic')} (e.g. rafdb={name})")
    if name not in DATASETS:
        close = difflib.get_close_matches(name.lower(), DATASETS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise _fail(value, f"unknown data set {name!r}.{hint} Valid: {', '.join(DATASETS)}")
    if name == "synthetic":
        if sep:
            raise _fail(value, "the synthetic set takes no path: write --data synthetic")
        return SYNTHETIC
    example = _EXAMPLE_PATHS.get(name, "/path/to/data")
    if not sep or not path.strip():
        raise _fail(value, f"missing '=PATH' for {name}: write --data {name}={example} "
                           "(the folder in its official layout)")
    folder = Path(path.strip()).expanduser()
    if not folder.exists():
        raise _fail(value, f"no such directory: {folder} (expected the {name} folder, e.g. {name}={example})")
    if not folder.is_dir():
        raise _fail(value, f"{folder} is not a directory: expected the folder that holds the {name} data set")
    root, physical = absolute_folder(folder), _absolute_from_getcwd(folder)
    return DataChoice(name, name, root, physical if physical != root else None)


def logical_cwd() -> str:
    """The working folder as the shell names it (`pwd -L`): $PWD where it is an absolute path without `.` or `..`
    that names the folder os.getcwd() does, its symbolic links kept (os.getcwd() gives the folder they lead to);
    else os.getcwd() (a $PWD left from another folder: a process that changed folder without setting it)."""
    cwd = os.getcwd()
    pwd = os.environ.get("PWD", "")
    if not os.path.isabs(pwd) or any(part in (".", "..") for part in pwd.split(os.sep)):
        return cwd
    try:
        return pwd if os.path.samefile(pwd, cwd) else cwd
    except OSError:
        return cwd


def absolute_folder(folder: Path) -> str:
    """`folder` as an absolute path, its symbolic links kept: the data are known by the path given, so that data
    moved behind the same link (another disk, `ln -sfn /new/place /data/RAF-DB`) are the same invocation's and
    its cells' (their fingerprint, of the files' relative paths, sizes and times, still tells changed files).
    A relative path is taken from the working folder as the shell names it (`logical_cwd`: typed in a folder
    reached through a link, it keeps that link). A `..` after a link, which lexical normalising would take to
    another folder than the system does, keeps the path resolved (as it was before)."""
    typed = Path(os.path.normpath(os.path.join(logical_cwd(), folder)))
    return str(typed if typed.resolve() == folder.resolve() else folder.resolve())


def _absolute_from_getcwd(folder: Path) -> str:
    """`folder` made absolute as versions from ed57113 to eca91f3 did: from os.getcwd(), the working folder's links
    resolved, those of a relative path kept (a `..` after a link: resolved, as `absolute_folder`)."""
    typed = Path(os.path.abspath(folder))
    return str(typed if typed.resolve() == folder.resolve() else folder.resolve())


def physical_cwd_choice(choice: DataChoice) -> DataChoice:
    """`choice` as versions from ed57113 to eca91f3 knew it (the invocations and cells they recorded are keyed so):
    a relative folder typed in a working folder reached through a link, its path going through another link
    (`cd ~/project`, a link, then `--data rafdb=data`, a link too), was made absolute from os.getcwd(), neither as
    the shell names it (`absolute_folder`, now) nor resolved (`resolved_choice`, before); else `choice`."""
    if choice.physical_cwd_root is None:
        return choice
    return DataChoice(choice.name, choice.dataset, choice.physical_cwd_root)


def resolved_choice(choice: DataChoice) -> DataChoice:
    """`choice` with its folder's symbolic links resolved: how versions before `absolute_folder` knew it (the
    invocations and cells they recorded are keyed so)."""
    return choice if choice.root is None else DataChoice(choice.name, choice.dataset, str(Path(choice.root).resolve()))


def parse_data_options(values: Sequence[str], check: bool = True) -> tuple[DataChoice, ...]:
    """--data values -> DataChoices (synthetic when none), each folder's layout checked as the default data
    options read it. check=False leaves the layouts to check_data_layouts, once the configs the cells read
    are known (a sweep's, whose profile, spec, rows and --set may each set options such as
    data.ferplus_rule or data.affectnet_classes)."""
    if isinstance(values, str):
        values = [values]
    values = list(values or ())
    if not values:
        return (SYNTHETIC,)
    choices: list[DataChoice] = []
    given: dict[str, str] = {}
    for value in values:
        choice = _parse_one(value)
        if choice.name in given:
            raise _fail(value, f"data set {choice.name!r} is given twice (also as {given[choice.name]!r}): "
                               "give each data set once")
        given[choice.name] = value
        choices.append(choice)
    if check:
        for choice, value in zip(choices, values):
            if not choice.synthetic:
                try:
                    config = DataConfig(dataset=choice.dataset, root=choice.root)
                except ConfigError as exc:
                    raise _fail(value, str(exc)) from None
                _check_layout(config, value)
    return tuple(choices)


def check_data_layouts(configs: Iterable[DataConfig]) -> None:
    """check_layout of each distinct data config a sweep's cells read (its folder as those cells read it:
    with the vote rule, class count, image set, ... their profile, spec, row and --set give), as a DataOptionError
    naming its --data value."""
    layouts = {(c.dataset, c.root, c.ferplus_rule, c.affectnet_classes, c.rafdb_images): c
               for c in configs if c.dataset != "synthetic"}
    for config in layouts.values():   # once per way of reading a folder (AffectNet: ~290,000 images stat'ed)
        _check_layout(config, f"{config.dataset}={config.root}")


def _check_layout(config: DataConfig, value: str) -> None:
    from transfer_core.data import DataError, check_layout

    try:
        check_layout(config)
    except DataError as exc:
        raise _fail(value, f"{exc}") from None
