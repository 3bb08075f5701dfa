"""search_spaces.data_option: the --data option, checked before anything runs."""

from __future__ import annotations

import re

import pytest

from search_spaces import DataChoice, DataOptionError, SpecError, parse_data_options
from search_spaces.data_option import physical_cwd_choice, resolved_choice


def image_folder(root, classes=("angry", "happy", "sad")):
    """A minimal valid image-folder data set: one tiny PNG per class and split."""
    from PIL import Image

    for split in ("train", "test"):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            Image.new("RGB", (8, 8), (10, 20, 30)).save(folder / "0.png")
    return root


def test_parse_data_options_defaults_to_synthetic():
    assert parse_data_options([]) == (DataChoice("synthetic", "synthetic", None),)


def test_parse_data_options_accepts_synthetic_by_name():
    assert parse_data_options(["synthetic"]) == (DataChoice("synthetic", "synthetic", None),)


def test_parse_data_options_resolves_a_real_set_to_an_absolute_folder(tmp_path, monkeypatch):
    image_folder(tmp_path / "faces")
    monkeypatch.chdir(tmp_path)
    (choice,) = parse_data_options(["imagefolder=faces"])
    assert choice == DataChoice("imagefolder", "imagefolder", str((tmp_path / "faces").resolve()))


def test_parse_data_options_keeps_the_order_of_several_sets(tmp_path):
    image_folder(tmp_path / "faces")
    choices = parse_data_options([f"imagefolder={tmp_path / 'faces'}", "synthetic"])
    assert [c.name for c in choices] == ["imagefolder", "synthetic"]


def test_data_option_error_is_a_spec_error():
    assert issubclass(DataOptionError, SpecError)


def test_parse_data_options_unknown_data_set_lists_the_valid_ones():
    with pytest.raises(DataOptionError, match=r"--data 'rafbd=/x': unknown data set 'rafbd'\. Did you mean "
                                              r"'rafdb'\? Valid: synthetic, rafdb, ferplus, affectnet"):
        parse_data_options(["rafbd=/x"])


def test_parse_data_options_a_bare_path_says_to_name_its_data_set(tmp_path):
    with pytest.raises(DataOptionError, match=rf"--data '{tmp_path}': a path without a data set's name: write "
                                              rf"--data NAME={tmp_path} with NAME one of rafdb, ferplus"):
        parse_data_options([str(tmp_path)])


def test_parse_data_options_real_set_without_path_says_how_to_write_it():
    with pytest.raises(DataOptionError, match=r"--data 'rafdb': missing '=PATH' for rafdb: write "
                                              r"--data rafdb=/data/RAF-DB/basic \(the folder"):
        parse_data_options(["rafdb"])


def test_parse_data_options_empty_path_is_a_missing_path():
    with pytest.raises(DataOptionError, match=r"--data 'ferplus=': missing '=PATH' for ferplus"):
        parse_data_options(["ferplus="])


def test_parse_data_options_synthetic_with_a_path_is_refused(tmp_path):
    with pytest.raises(DataOptionError, match=r"the synthetic set takes no path: write --data synthetic"):
        parse_data_options([f"synthetic={tmp_path}"])


def test_parse_data_options_missing_folder_is_named(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataOptionError, match=re.escape(f"--data 'rafdb={missing}': no such directory: {missing}")):
        parse_data_options([f"rafdb={missing}"])


def test_parse_data_options_file_instead_of_folder_is_named(tmp_path):
    file = tmp_path / "labels.txt"
    file.write_text("x")
    with pytest.raises(DataOptionError, match=re.escape(f"{file} is not a directory: expected the folder")):
        parse_data_options([f"rafdb={file}"])


def test_parse_data_options_same_set_twice_is_refused(tmp_path):
    with pytest.raises(DataOptionError, match=r"--data 'synthetic': data set 'synthetic' is given twice "
                                              r"\(also as 'synthetic'\): give each data set once"):
        parse_data_options(["synthetic", "synthetic"])


def test_parse_data_options_wrong_layout_reports_the_data_layer_message(tmp_path):
    with pytest.raises(DataOptionError, match=r"--data 'rafdb=.*': RAF-DB label file not found under .*"
                                              r"expected EmoLabel/"):
        parse_data_options([f"rafdb={tmp_path}"])


def test_parse_data_options_keeps_a_symbolic_link_in_the_folder_given(tmp_path):
    # the data are known by the path given: moved behind the same link, they are the same invocation's
    image_folder(tmp_path / "disk1" / "faces")
    (tmp_path / "faces").symlink_to(tmp_path / "disk1" / "faces")
    (choice,) = parse_data_options([f"imagefolder={tmp_path}/./faces/"])
    assert choice.root == str(tmp_path / "faces")


def test_parse_data_options_keeps_the_symbolic_link_of_a_working_folder_reached_through_one(tmp_path, monkeypatch):
    # `cd /tmp/x/project` (a link) then `--data imagefolder=faces`: the shell's $PWD names the link, os.getcwd()
    # the folder it leads to, which would key the invocation on the place the data happen to be
    image_folder(tmp_path / "disk1" / "project" / "faces")
    (tmp_path / "project").symlink_to(tmp_path / "disk1" / "project")
    monkeypatch.chdir(tmp_path / "project")
    monkeypatch.setenv("PWD", str(tmp_path / "project"))
    (choice,) = parse_data_options(["imagefolder=./faces"])
    assert choice.root == str(tmp_path / "project" / "faces")
    monkeypatch.setenv("PWD", str(tmp_path))   # a $PWD left from elsewhere (a process that changed folder): not read
    (choice,) = parse_data_options(["imagefolder=faces"])
    assert choice.root == str((tmp_path / "disk1" / "project" / "faces").resolve())
    monkeypatch.setenv("PWD", f"{tmp_path}/project/../project")   # as `pwd -L`, a $PWD with . or .. is not read
    (choice,) = parse_data_options(["imagefolder=faces"])
    assert choice.root == str((tmp_path / "disk1" / "project" / "faces").resolve())


def test_a_relative_data_folder_through_two_links_is_known_too_as_versions_before_eca91f3_made_it_absolute(
        tmp_path, monkeypatch):
    # from ed57113 to eca91f3 a relative folder was made absolute from os.getcwd() (the working folder's link
    # resolved, the typed path's kept): with two links that is neither the shell's path nor the resolved one
    image_folder(tmp_path / "disk2" / "faces")
    (tmp_path / "disk1" / "project").mkdir(parents=True)
    (tmp_path / "disk1" / "project" / "faces").symlink_to(tmp_path / "disk2" / "faces")
    (tmp_path / "project").symlink_to(tmp_path / "disk1" / "project")
    monkeypatch.chdir(tmp_path / "project")
    monkeypatch.setenv("PWD", str(tmp_path / "project"))
    (choice,) = parse_data_options(["imagefolder=faces"])
    assert choice.root == str(tmp_path / "project" / "faces")
    assert physical_cwd_choice(choice).root == str(tmp_path.resolve() / "disk1" / "project" / "faces")
    assert resolved_choice(choice).root == str((tmp_path / "disk2" / "faces").resolve())
    (given,) = parse_data_options([f"imagefolder={tmp_path / 'project' / 'faces'}"])   # absolute: always as given
    assert physical_cwd_choice(given) == given and given == choice


def test_parse_data_options_resolves_a_parent_step_after_a_symbolic_link_as_the_system_does(tmp_path):
    # faces/.. is the link's target's parent, not tmp_path: normalised by its text, another folder would be read
    image_folder(tmp_path / "disk1" / "faces")
    (tmp_path / "disk1" / "nested").mkdir()
    (tmp_path / "nested").symlink_to(tmp_path / "disk1" / "nested")
    (choice,) = parse_data_options([f"imagefolder={tmp_path}/nested/../faces"])
    assert choice.root == str((tmp_path / "disk1" / "faces").resolve())
