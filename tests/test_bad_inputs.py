"""Every malformed input is refused at the boundary, before anything runs (DESIGN.md "Validation at the
boundary"): one table of bad inputs, each with the callable that must reject it, the exception type and
the message, which names the file / key / value and what would be right. None of them starts Ray.

Cases are (id, call, expected type, message regex). `call(tmp)` builds the input under `tmp` and calls
the library (`sweeps.runner.prepare`, the checkpoint loaders) or the CLI (in-process, click exceptions
propagate). In a regex, `{tmp}` stands for the escaped test folder.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import re
from pathlib import Path

import click
import numpy as np
import pytest
import ray
import torch
from click.testing import CliRunner
from PIL import Image

import sweeps.runner
import sweeps.sweep_data
from search_spaces import DataOptionError, SpecError
from sweeps.cli import cli
from sweeps.runner import RunOptions, SweepError, prepare
from sweeps.tracking import TrackingError
from transfer_core.engine import STATE_FORMAT, StateError, load_state
from transfer_core.models.checkpoint import CheckpointError, load_ir50_checkpoint
from transfer_core.models.stems import IR50Stem

# --------------------------------------------------------------------------- inputs

TABLE = """\
name: bad
profile: smoke
arms:
  - {label: A, set: {model.drop_variant: none}}
  - {label: B, set: {model.drop_variant: mad}}
"""

SEARCH = """\
name: bad_search
kind: search
profile: smoke
search:
  space: {optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}
  num_samples: 2
"""


def write_spec(tmp: Path, text: str) -> str:
    path = tmp / "spec.yaml"
    path.write_text(text)
    return str(path)


def options(tmp: Path, **kw) -> RunOptions:
    kw.setdefault("tracking_uri", f"sqlite:///{tmp}/mlflow.db")
    kw.setdefault("storage", str(tmp / "ray_results"))
    return RunOptions(**kw)


def prepare_spec(text: str, **kw):
    """prepare() of a spec file with `text`."""
    return lambda tmp: prepare(write_spec(tmp, text), options(tmp, **kw))


def prepare_table(**kw):
    """prepare() of a valid table spec with the given RunOptions."""
    return prepare_spec(TABLE, **kw)


def prepare_data(build, **kw):
    """prepare() of a valid table spec with --data NAME=<the folder `build(tmp)` returns>."""
    return lambda tmp: prepare(write_spec(tmp, TABLE), options(tmp, data=(build(tmp),), **kw))


def run_cli(*args: str):
    """The CLI in-process; click's exceptions propagate (standalone_mode=False). `{tmp}` in args is the
    test folder; `{spec}` a valid table spec written there."""
    def call(tmp: Path):
        spec = write_spec(tmp, TABLE)
        argv = [a.replace("{tmp}", str(tmp)).replace("{spec}", spec) for a in args]
        CliRunner().invoke(cli, argv, standalone_mode=False, catch_exceptions=False)
    return call


def run_cli_with_store(*args: str):
    return run_cli(*args, "--tracking-uri", "sqlite:///{tmp}/mlflow.db", "--storage", "{tmp}/ray_results")


def run_cli_on_data(build, spoil):
    """`sweeps run` of a valid table spec on the data folder `build(tmp)` makes, after `spoil(root)`: a
    fault only decoding finds (prepare checks the layout, not every image)."""
    def call(tmp: Path):
        option = build(tmp)
        spoil(Path(option.partition("=")[2]))
        run_cli_with_store("run", "{spec}", "--data", option)(tmp)
    return call


# data folders: miniatures of the official layouts (reference/datasets.md)

RAF_ENTRIES = [("train_00001.jpg", "5"), ("train_00002.jpg", "1"), ("test_0001.jpg", "2"), ("test_0002.jpg", "7")]


def rafdb(lines: list[str] | None):
    """A RAF-DB basic folder: Image/aligned/ and EmoLabel/list_patition_label.txt with `lines` (upstream:
    single spaces, LF, no newline at the end); no label file when `lines` is None."""
    def build(tmp: Path) -> str:
        root = tmp / "RAF-DB"
        aligned = root / "Image" / "aligned"
        aligned.mkdir(parents=True)
        (root / "EmoLabel").mkdir()
        for name, _ in RAF_ENTRIES:
            Image.new("RGB", (16, 16), (120, 80, 40)).save(aligned / (name[:-4] + "_aligned.jpg"))
        if lines is not None:
            (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines))
        return f"rafdb={root}"
    return build


def _pixels(n: int = 48 * 48) -> str:
    return " ".join(["128"] * n)


def ferplus_csv(short_row: bool):
    """FERPlus as fer2013.csv + fer2013new.csv; the second data row's pixels are short if asked."""
    def build(tmp: Path) -> str:
        root = tmp / "FERPlus"
        root.mkdir()
        rows = [("0", _pixels(), "Training"), ("3", _pixels(47) if short_row else _pixels(), "PublicTest"),
                ("4", _pixels(), "PrivateTest")]
        with open(root / "fer2013.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["emotion", "pixels", "Usage"])
            w.writerows(rows)
        with open(root / "fer2013new.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust",
                        "fear", "contempt", "unknown", "NF"])
            for i, (_, _, usage) in enumerate(rows):
                w.writerow([usage, f"fer{i:07d}.png", 10, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        return f"ferplus={root}"
    return build


AFFECTNET_HEADER = ("subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,"
                    "valence,arousal")


def affectnet(train_lines: list[str]):
    """AffectNet's Manually_Annotated release: file lists + Manually_Annotated_Images/."""
    def build(tmp: Path) -> str:
        root = tmp / "AffectNet"
        images = root / "Manually_Annotated" / "Manually_Annotated_Images" / "1"
        images.mkdir(parents=True)
        Image.new("RGB", (32, 32), (90, 90, 90)).save(images / "a.jpg")
        lists = root / "Manually_Annotated_file_lists"
        lists.mkdir()
        (lists / "training.csv").write_text("\n".join(train_lines) + "\n")
        (lists / "validation.csv").write_text(AFFECTNET_HEADER + "\n1/a.jpg,0,0,32,32,1;2,1,0.5,0.2\n")
        return f"affectnet={root}"
    return build


def plain_file(tmp: Path) -> Path:
    path = tmp / "afile"
    path.write_text("not a folder")
    return path


# checkpoints

def load_state_of(content):
    """load_state() of a file written by `content(path)`."""
    def call(tmp: Path):
        path = tmp / "state.pt"
        content(path)
        load_state(path)
    return call


def _truncated_state(path: Path) -> None:
    torch.save({"format": STATE_FORMAT, "model": {"w": torch.zeros(4096)}, "epoch": 3}, path)
    path.write_bytes(path.read_bytes()[:2000])


def _foreign_state(path: Path) -> None:
    torch.save({"model_state": {"w": torch.zeros(4)}, "epoch": 3}, path)


def _tiny_stem() -> IR50Stem:
    return IR50Stem(((8, 1),), in_width=8)  # face.evoLVe key names, one narrow unit


def load_ir50_of(content):
    """load_ir50_checkpoint() of a file written by `content(path)`, into a narrow IR50Stem."""
    def call(tmp: Path):
        path = tmp / "ir50.pth"
        content(path)
        load_ir50_checkpoint(_tiny_stem(), path)
    return call


def _ir50_with_foreign_key(path: Path) -> None:
    torch.save({**_tiny_stem().state_dict(), "head.fc.weight": torch.zeros(7, 8)}, path)


def _nothing(path: Path) -> None:
    pass


def _narrow_vit(path: Path, depth: int = 2) -> str:
    """A legacy-timm-layout ViT state dict as wide as the smoke profile's encoder (32-d, MLP 3), with `depth`
    blocks (timm's 14 x 14 positions: resampled to the smoke grid)."""
    from transfer_core.models.encoder import Encoder

    state = {k: v for k, v in Encoder(8, 196, 32, depth, 4, 3.0).state_dict().items() if not k.startswith("proj.")}
    torch.save(state, path)
    return str(path)


def prepare_search_with_vit(space: str):
    """prepare() of a search over `space` on the smoke profile (depth 1), with a 2-block ViT checkpoint."""
    return lambda tmp: prepare(write_spec(tmp, SEARCH.replace("{optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, "
                                                              "log: true}}", space)),
                               options(tmp, overrides={"model.encoder_checkpoint": _narrow_vit(tmp / "vit.pth")}))


# --------------------------------------------------------------------------- the table

CASES = [
    # sweep specs: SpecError naming the file, the line, the key path, the value and what is right
    ("spec_unknown_top_level_key",
     prepare_spec(TABLE + "seedz: [0]\n"),
     SpecError, r"^{tmp}/spec\.yaml line 6: seedz: unknown key 'seedz'\. Did you mean 'seeds'\? Valid keys: name,"),
    ("spec_wrong_type",
     prepare_spec(TABLE + "seeds: zero\n"),
     SpecError, r"spec\.yaml line 6: seeds: 'zero' is invalid: expected a non-empty list of integers >= 0"),
    ("spec_out_of_range_value",
     prepare_spec(TABLE.replace("model.drop_variant: mad", "model.drop_rate: 1.5")),
     SpecError, r"spec\.yaml line 5: arms\[1\]\.set\.model\.drop_rate: model\.drop_rate=1\.5 is invalid: "
                r"expected a number in \[0, 1\]"),
    ("spec_unknown_drop_variant",
     prepare_spec(TABLE.replace("mad}", "maad}")),
     SpecError, r"spec\.yaml line 5: arms\[1\]\.set\.model\.drop_variant: model\.drop_variant='maad' is invalid: "
                r"expected one of none, dropout, dropblock, spatial_dropout, mad"),
    ("spec_duplicate_label",
     prepare_spec(TABLE.replace("label: B", "label: A")),
     SpecError, r"spec\.yaml line 5: arms\[1\]\.label: label 'A' is used by two arms: labels must be unique"),
    ("spec_baseline_not_an_arm",
     prepare_spec(TABLE + "table: {baseline: C}\n"),
     SpecError, r"spec\.yaml line 6: table\.baseline: unknown arm label 'C'\. Valid: A, B"),
    ("spec_search_low_not_below_high",
     prepare_spec(SEARCH.replace("low: 1.0e-4", "low: 1.0e-1")),
     SpecError, r"spec\.yaml line 5: search\.space\.optim\.lr\.high: low=0\.1, high=0\.01 is invalid: "
                r"expected low < high"),
    ("spec_unknown_pruner_type",
     prepare_spec(SEARCH + "  pruner: {type: medain}\n"),
     SpecError, r"spec\.yaml line 7: search\.pruner(\.type)?: unknown pruner 'medain'\. Did you mean 'median'\? "
                r"Valid: median,"),
    ("spec_unknown_pruner_argument",
     prepare_spec(SEARCH + "  pruner: {type: median, n_startup_trial: 3}\n"),
     SpecError, r"spec\.yaml line 7: search\.pruner(\.n_startup_trial)?: pruner 'median' got unknown argument "
                r"'n_startup_trial'\. Did you mean 'n_startup_trials'\?"),
    ("spec_pruner_argument_out_of_range",
     prepare_spec(SEARCH + "  pruner: {type: median, n_startup_trials: -1}\n"),
     SpecError, r"spec\.yaml line 7: search\.pruner(\.n_startup_trials)?: pruner 'median', argument "
                r"'n_startup_trials': .*-1"),
    ("spec_yaml_syntax_error",
     prepare_spec("name: bad\narms: [{label: A\n"),
     SpecError, r"spec\.yaml line 3, column 1: YAML syntax error: while parsing a flow mapping .*"
                r"\(the construct opened on line 2\)"),
    ("spec_empty_file",
     prepare_spec(""),
     SpecError, r"^{tmp}/spec\.yaml: the file is empty: expected a sweep spec"),
    ("spec_duplicate_yaml_key",
     prepare_spec(TABLE + "profile: quick\n"),
     SpecError, r"spec\.yaml line 6: profile: key 'profile' is written twice \(lines 2 and 6\); "
                r"YAML would keep only the last: remove one"),
    ("spec_reserved_key_seed_in_base",
     prepare_spec(TABLE + "base: {seed: 3}\n"),
     SpecError, r"spec\.yaml line 6: base\.seed: seed cannot be set here: the seed of a cell comes from the "
                r"spec's `seeds` list \(or --seeds\)"),
    ("spec_label_template_with_attribute_access",
     prepare_spec("name: bad\nprofile: smoke\ngrid: {model.depth: [1, 2]}\nlabel: '{model.depth.real}'\n"),
     SpecError, r"spec\.yaml line 4: label: '\{model\.depth\.real\}': field \{model\.depth\.real\} is not a grid "
                r"key \(no attribute or index access, no positional fields\)\. Valid fields: \{model\.depth\}"),
    ("spec_file_missing",
     lambda tmp: prepare(str(tmp / "nosuch.yaml"), options(tmp)),
     SpecError, r"^{tmp}/nosuch\.yaml: no such file$"),
    ("spec_file_with_a_mistyped_suffix",   # "unknown sweep 'mine.ymal'", though the file was there
     lambda tmp: ((tmp / "mine.ymal").write_text(TABLE), prepare("mine.ymal", options(tmp))),
     SpecError, r"^unknown sweep 'mine\.ymal'\. Valid: components, .* \(or give the path to a \.yaml spec file\)\. "
                r"mine\.ymal is a file here, but a spec file is named \*\.yaml or \*\.yml \(lower case\), which tells "
                r"it from a sweep's name: rename it mine\.yaml\.$"),
    ("spec_file_named_without_its_suffix_or_with_a_typo_in_it",
     lambda tmp: ((tmp / "mine.yaml").write_text(TABLE), prepare("mine.ymal", options(tmp))),
     SpecError, r"^unknown sweep 'mine\.ymal'\. Valid: .*\. Is it the spec file mine\.yaml\?$"),
    ("spec_unknown_shipped_name",
     lambda tmp: prepare("mad_vs_dropot", options(tmp)),
     SpecError, r"unknown sweep 'mad_vs_dropot'\. Did you mean 'mad_vs_dropout'\? Valid: components, depth,"),

    # profiles and --set over a profile
    ("profile_unknown",
     prepare_table(profile="nosuch"),
     SpecError, r"^unknown profile 'nosuch'\. Valid: smoke, quick, paper$"),
    ("profile_override_conflicting_with_the_profile",
     prepare_table(overrides={"model.num_heads": 5}),
     SpecError, r"^--set model\.num_heads: model\.num_heads=5 is invalid: expected a divisor of "
                r"model\.embed_dim=32$"),
    ("set_image_size_the_stem_cannot_take",   # it failed in every trial, each retried: 6 tracebacks
     prepare_table(overrides={"model.image_size": 30}),
     SpecError, r"^--set model\.image_size: model\.image_size=30 is invalid: expected a multiple of 4, the "
                r"stride of model\.stem='small'$"),
    ("set_warmup_as_long_as_the_run",   # every epoch warm-up: trained at a fraction of optim.lr, no schedule
     prepare_table(overrides={"optim.warmup_epochs": 2}),
     SpecError, r"^--set optim\.warmup_epochs: optim\.warmup_epochs=2 is invalid: expected fewer than "
                r"optim\.epochs=2: with as many, every epoch is warm-up"),
    ("set_epoch_samples_with_the_shuffle_sampler",   # shuffle draws each image once an epoch: it was ignored
     prepare_table(overrides={"data.sampler": "shuffle", "data.epoch_samples": 100}),
     SpecError, r"^--set data\.epoch_samples: data\.epoch_samples=100 is set but data\.sampler='shuffle', which "
                r"draws each training image once an epoch: only the balanced sampler takes epoch_samples"),
    ("set_epoch_samples_no_cell_samples_balanced_with",   # sampler auto on the synthetic faces: shuffle
     prepare_table(overrides={"data.epoch_samples": 100}),
     SpecError, r"^--set data\.epoch_samples: data\.epoch_samples=100 is never read: data\.sampler auto samples "
                r"balanced on AffectNet only"),
    ("set_reserved_key_seed",
     prepare_table(overrides={"seed": 1}),
     SpecError, r"^--set seed: seed cannot be set here: the seed of a cell comes from the spec's `seeds` list"),
    ("set_cuda_device_without_gpus",
     run_cli_with_store("run", "{spec}", "--set", "device=cuda"),
     click.UsageError, r"device=cuda.*--gpus-per-trial"),
    ("gpus_per_trial_with_cpu_device",
     run_cli_with_store("run", "{spec}", "--set", "device=cpu", "--gpus-per-trial", "1"),
     click.UsageError, r"--gpus-per-trial 1\b.*device.*cpu"),

    # --data: DataOptionError naming the value and what would be right
    ("data_unknown_name",
     prepare_table(data=("rafbd=/tmp",)),
     DataOptionError, r"^--data 'rafbd=/tmp': unknown data set 'rafbd'\. Did you mean 'rafdb'\? "
                      r"Valid: synthetic, rafdb, ferplus, affectnet, fer2013, imagefolder$"),
    ("data_missing_folder",
     lambda tmp: prepare(write_spec(tmp, TABLE), options(tmp, data=(f"rafdb={tmp}/nosuch",))),
     DataOptionError, r"^--data 'rafdb={tmp}/nosuch': no such directory: {tmp}/nosuch \(expected the rafdb "
                      r"folder, e.g\. rafdb=/data/RAF-DB/basic\)$"),
    ("data_not_a_directory",
     prepare_data(lambda tmp: f"rafdb={plain_file(tmp)}"),
     DataOptionError, r"^--data 'rafdb={tmp}/afile': {tmp}/afile is not a directory: expected the folder that "
                      r"holds the rafdb data set$"),
    ("data_given_twice",
     lambda tmp: prepare(write_spec(tmp, TABLE), options(tmp, data=(f"rafdb={tmp}", f"rafdb={tmp}/"))),
     DataOptionError, r"--data 'rafdb={tmp}/': data set 'rafdb' is given twice \(also as 'rafdb={tmp}'\): "
                      r"give each data set once"),
    ("data_empty",   # `--data "$DATA"`, DATA unset: read as the working folder, "a path without a data set's name"
     prepare_table(data=("",)),
     DataOptionError, r"^--data '': it is empty: write NAME=PATH \(e\.g\. rafdb=/data/RAF-DB/basic\), or leave --data "
                      r"out for the synthetic faces$"),
    ("data_missing_path",
     run_cli("show", "{spec}", "--data", "rafdb"),
     click.BadParameter, r"^Invalid value for --data: --data 'rafdb': missing '=PATH' for rafdb: "
                         r"write --data rafdb=/data/RAF-DB/basic \(the folder"),
    ("data_rafdb_malformed_label_line",
     prepare_data(rafdb(["train_00001.jpg 5", "train_00002.jpg", "test_0001.jpg 2", "test_0002.jpg 7"])),
     DataOptionError, r"^--data 'rafdb={tmp}/RAF-DB': {tmp}/RAF-DB/EmoLabel/list_patition_label\.txt line 2: "
                      r"'train_00002\.jpg' is malformed: expected '<image name> <label>'"),
    ("data_rafdb_unknown_label",
     prepare_data(rafdb(["train_00001.jpg 5", "train_00002.jpg 1", "test_0001.jpg 9", "test_0002.jpg 7"])),
     DataOptionError, r"list_patition_label\.txt line 3: label '9' is unknown: expected an integer 1\.\.7 "
                      r"\(1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger, 7 Neutral\)"),
    ("data_rafdb_without_label_file",
     prepare_data(rafdb(None)),
     DataOptionError, r"RAF-DB label file not found under {tmp}/RAF-DB: expected "
                      r"EmoLabel/list_patition_label\.txt"),

    # data-set files
    ("data_ferplus_csv_short_pixel_row",
     prepare_data(ferplus_csv(short_row=True)),
     DataOptionError, r"^--data 'ferplus={tmp}/FERPlus': {tmp}/FERPlus/fer2013\.csv line 3: pixels has 47 "
                      r"values: expected 2304 \(a 48x48 grayscale image\)$"),
    ("data_affectnet_row_missing_a_column",
     prepare_data(affectnet([AFFECTNET_HEADER, "1/a.jpg,0,0,32,32,1;2"])),
     DataOptionError, r"{tmp}/AffectNet/Manually_Annotated_file_lists/training\.csv line 2: 6 fields: expected "
                      r"subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression"),
    ("data_affectnet_header_missing_the_expression_column",
     prepare_data(affectnet([AFFECTNET_HEADER.replace(",expression", ""), "1/a.jpg,0,0,32,32,1;2,0.5,0.2"])),
     DataOptionError, r"{tmp}/AffectNet/Manually_Annotated_file_lists/training\.csv line 1: header lacks "
                      r"column\(s\) expression"),

    # checkpoints
    ("state_truncated",
     load_state_of(_truncated_state),
     StateError, r"^checkpoint {tmp}/state\.pt cannot be read \(.+\); it is corrupt or not a transfer_core state$"),
    ("state_foreign_dict",
     load_state_of(_foreign_state),
     StateError, r"^checkpoint {tmp}/state\.pt is not a transfer_core state \(format 1\)"),
    ("state_missing_file",
     load_state_of(_nothing),
     StateError, r"^checkpoint {tmp}/state\.pt does not exist$"),
    ("ir50_foreign_key",
     load_ir50_of(_ir50_with_foreign_key),
     CheckpointError, r"^IR-50 checkpoint '{tmp}/ir50\.pth' does not fit the ir50 stem: "
                      r"unexpected keys: head\.fc\.weight$"),
    ("ir50_missing_file",
     load_ir50_of(_nothing),
     CheckpointError, r"^IR-50 checkpoint '{tmp}/ir50\.pth' does not exist or is not a file$"),
    ("ir50_not_a_state_dict",
     load_ir50_of(lambda path: torch.save([torch.zeros(2)], path)),
     CheckpointError, r"^IR-50 checkpoint '{tmp}/ir50\.pth' is not a state dict"),
    ("set_stem_checkpoint_missing_file",
     lambda tmp: prepare("mad_vs_dropout", options(tmp, profile="paper",
                                                   overrides={"model.stem_checkpoint": f"{tmp}/ms1m.pth"})),
     SpecError, r"model\.stem_checkpoint=.*{tmp}/ms1m\.pth.* does not exist: give the path of the face\.evoLVe"),
    ("set_stem_checkpoint_a_folder",   # "does not exist", of a folder that does
     lambda tmp: prepare("mad_vs_dropout", options(tmp, profile="paper", gpus_per_trial=0,
                                                   overrides={"model.stem_checkpoint": str(tmp), "device": "cpu"})),
     SpecError, r"^model\.stem_checkpoint='{tmp}' is a folder: give the path of the face\.evoLVe"),
    ("set_encoder_checkpoint_missing_file",
     lambda tmp: prepare("mad_vs_dropout", options(tmp, profile="paper",
                                                   overrides={"model.encoder_checkpoint": f"{tmp}/vit.pth"})),
     SpecError, r"model\.encoder_checkpoint=.*{tmp}/vit\.pth.* does not exist: give the path of timm's legacy ViT-S"),
    ("set_encoder_checkpoint_where_no_cell_has_an_encoder",   # the ViT weights were never loaded, without a word
     lambda tmp: prepare(write_spec(tmp, TABLE + "base: {model.encoder: false}\n"),
                         options(tmp, overrides={"model.encoder_checkpoint": f"{tmp}/vit.pth"})),
     SpecError, r"^--set model\.encoder_checkpoint: model\.encoder_checkpoint='{tmp}/vit\.pth' is never read: every "
                r"cell has model\.encoder=false, and only the encoder loads a ViT checkpoint"),
    ("search_drawing_a_depth_the_encoder_checkpoint_has_no_blocks_for",   # every trial drawing it failed
     prepare_search_with_vit("{model.depth: {type: int, low: 1, high: 3}}"),
     SpecError, r"^{tmp}/spec\.yaml line 5: search\.space\.model\.depth\.high: a sample can draw "
                r"model\.depth=3, and then model\.encoder_checkpoint: ViT checkpoint '{tmp}/vit\.pth' does not fit "
                r"the encoder: it has 2 blocks, the encoder 3 \(model\.depth\).*: remove that choice, or narrow the "
                r"range to the values the checkpoint fits$"),
    ("search_drawing_an_embed_dim_the_encoder_checkpoint_cannot_load_into",
     prepare_search_with_vit("{model.embed_dim: [32, 64]}"),
     SpecError, r"search\.space\.model\.embed_dim\.choices\[1\]: a sample can draw model\.embed_dim=64, and then "
                r"model\.encoder_checkpoint: .* shape mismatches: blocks\.0\.attn\.proj\.bias \(checkpoint \(32,\), "
                r"model \(64,\)\)"),
    ("set_encoder_checkpoint_of_another_network",   # read against each cell's network before Ray starts
     lambda tmp: (torch.save({"blocks.0.attn.qkv.weight": torch.zeros(6, 2)}, f"{tmp}/vit.pth"),
                  prepare("mad_vs_dropout", options(tmp, profile="paper",
                                                    overrides={"model.encoder_checkpoint": f"{tmp}/vit.pth"}))),
     SpecError, r"^model\.encoder_checkpoint: ViT checkpoint '{tmp}/vit\.pth' does not fit the encoder: "
                r"it has 1 block, the encoder 8 \(model\.depth\).*shape mismatches: blocks\.0\.attn\.qkv\.weight "
                r"\(checkpoint \(6, 2\), model \(2304, 768\)\)"),

    # CLI options
    ("cli_set_without_equals",
     run_cli_with_store("run", "{spec}", "--set", "optim.epochs"),
     click.BadParameter, r"^Invalid value for --set: 'optim\.epochs' is not KEY=VALUE \(e\.g\. optim\.epochs=3\)$"),
    ("cli_set_unknown_key",
     run_cli("show", "{spec}", "--set", "model.num_lanet=2"),
     click.UsageError, r"^--set model\.num_lanet: unknown key 'model\.num_lanet'\. Did you mean 'model\.num_lanets'\?"),
    ("seeds_zero",
     prepare_table(seeds=0),
     SweepError, r"^--seeds 0 is invalid: expected an integer >= 1$"),
    ("cpus_per_trial_zero",
     prepare_table(cpus_per_trial=0),
     SweepError, r"^--cpus-per-trial 0 is invalid: expected a number > 0$"),
    ("cpus_per_trial_infinite",   # refused only by the resource check, once the MLflow store was made
     prepare_table(cpus_per_trial=float("inf")),
     SweepError, r"^--cpus-per-trial inf is invalid: expected a finite number > 0 \(e\.g\. 2\)$"),
    ("gpus_per_trial_nan",   # passed every comparison: "1 CPU + nan GPU per trial", then "asks for nan GPU"
     prepare_table(gpus_per_trial=float("nan")),
     SweepError, r"^--gpus-per-trial nan is invalid: expected a fraction in \[0, 1\] or a whole number$"),
    ("cli_gpus_per_trial_fraction_above_one",
     run_cli_with_store("run", "{spec}", "--gpus-per-trial", "1.5"),
     click.BadParameter, r"^Invalid value for '?--gpus-per-trial'?: .*\b1\.5\b.*(a fraction in \[0, 1\] or a whole "
                         r"number|range)"),
    ("cli_max_concurrent_zero",
     run_cli_with_store("run", "{spec}", "--max-concurrent", "0"),
     click.BadParameter, r"^Invalid value for '?--max-concurrent'?: .*\b0\b.*>= ?1"),
    ("max_failures_negative",
     prepare_table(max_failures=-5),
     SweepError, r"^--max-failures -5 is invalid: expected an integer >= 0"),
    ("cli_unreachable_tracking_server",
     run_cli("run", "{spec}", "--tracking-uri", "http://127.0.0.1:9", "--storage", "{tmp}/ray_results"),
     click.ClickException, r"^MLflow tracking server http://127\.0\.0\.1:9 is unreachable \(.*\); start it "
                           r"\(mlflow server --host 127\.0\.0\.1 \.\.\.\) or pass another --tracking-uri$"),
    ("cli_data_image_unreadable_while_decoding",
     run_cli_on_data(rafdb(["train_00001.jpg 5", "train_00002.jpg 1", "test_0001.jpg 2", "test_0002.jpg 7"]),
                     lambda root: (root / "Image" / "aligned" / "train_00002_aligned.jpg").write_text("<html>404")),
     click.ClickException, r"^cannot decode image {tmp}/RAF-DB/Image/aligned/train_00002_aligned\.jpg \(listed in "
                           r"EmoLabel/list_patition_label\.txt line 2\): .*expected a readable image file"),
    ("tracking_uri_without_scheme",
     prepare_table(tracking_uri="mlflow.db"),
     TrackingError, r"^tracking URI 'mlflow\.db' is not supported: use sqlite:///PATH/mlflow\.db or "
                    r"http://HOST:PORT"),
    ("storage_a_regular_file",   # "is not writable (File exists)"
     lambda tmp: prepare(write_spec(tmp, TABLE), options(tmp, storage=str(plain_file(tmp)))),
     SweepError, r"^--storage {tmp}/afile is a file: give a folder for Tune's results and checkpoints"),
    ("storage_under_a_regular_file",
     lambda tmp: prepare(write_spec(tmp, TABLE), options(tmp, storage=f"{plain_file(tmp)}/results")),
     SweepError, r"^--storage {tmp}/afile/results is not writable \(Not a directory\): give a folder this user "
                 r"can write"),
]


@pytest.fixture
def no_ray(monkeypatch):
    """connect_ray and ray.init raise (and are recorded) for the whole test."""
    calls = []

    def refuse(name):
        def call(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called: a bad input reached the point where Ray starts")
        return call

    monkeypatch.setattr(sweeps.runner, "connect_ray", refuse("sweeps.runner.connect_ray"))
    monkeypatch.setattr(ray, "init", refuse("ray.init"))
    return calls


@pytest.mark.parametrize("call, expected, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_before_any_trial_with_a_message_naming_it(call, expected, pattern, tmp_path,
                                                                         monkeypatch, no_ray):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("TRANSFER_CACHE", str(tmp_path / "cache"))
    ray_was_up = ray.is_initialized()
    regex = pattern.replace("{tmp}", re.escape(str(tmp_path)))

    with pytest.raises(expected) as caught:
        call(tmp_path)

    # click: as printed after "Error: " (BadParameter adds "Invalid value for <option>: ")
    message = caught.value.format_message() if isinstance(caught.value, click.ClickException) else str(caught.value)
    assert re.search(regex, message), f"message {message!r} does not match {regex!r}"
    if expected is click.ClickException:  # a run-time failure, not a usage error
        assert not isinstance(caught.value, click.UsageError)
    assert no_ray == [] and ray.is_initialized() == ray_was_up


def test_a_search_is_read_against_the_encoder_checkpoint_at_the_values_it_draws_and_passes_where_they_fit(
        tmp_path, no_ray):
    # a table's cells were each read against their network; a search's drawn depths, dims and heads were not
    space = "{model.depth: {type: int, low: 1, high: 2}, model.num_heads: [2, 4, 8]}"
    prepared = prepare_search_with_vit(space)(tmp_path)
    assert prepared.plan.base_configs["synthetic"].model.encoder_checkpoint == f"{tmp_path}/vit.pth"


# --------------------------------------------------------------------------- data found wrong once decoded

def _prepared_on(tmp: Path, root: str):
    from search_spaces.data_option import DataChoice

    return dataclasses.replace(prepare_table()(tmp), data=(DataChoice("rafdb", "rafdb", root),))


def _decoded(train=(0, 1), val=(0, 1), test=(0, 1), classes=("anger", "happy")):
    """What check_data_of_cells reads of decoded data: the labels of each split and the class names."""
    from types import SimpleNamespace

    class Split(SimpleNamespace):
        def __len__(self):
            return len(self.labels)

    return SimpleNamespace(**{name: Split(labels=np.asarray(labels, dtype=np.int64))
                              for name, labels in (("train", train), ("val", val), ("test", test))},
                           class_names=tuple(classes))


def test_a_data_set_that_decodes_to_no_training_image_is_refused_before_ray_starts(tmp_path):
    # e.g. every AffectNet image an HTML error page: the readers skip unreadable images by design
    prepared = _prepared_on(tmp_path, "/data/AffectNet")
    with pytest.raises(SweepError, match=r"data set 'rafdb' at /data/AffectNet has no usable training image"):
        sweeps.sweep_data.check_data_of_cells(prepared, {"k": _decoded(train=())}, {"rafdb": ["k"]})


def test_the_data_line_and_record_say_where_the_test_split_came_from_when_not_test(tmp_path, caplog):
    # POSTER_V2's train/ + valid/: valid/ is the test split, which the [data] line did not say
    splits = _decoded()
    splits.dataset, splits.fingerprint, splits.info = "imagefolder", "fp", {
        "val_source": "carved from train", "test_source": "the valid/ folder (no test/)"}
    record = sweeps.sweep_data.data_record(_prepared_on(tmp_path, "/data/poster"), {"k": splits}, {"rafdb": ["k"]})
    assert record["rafdb"]["test_source"] == "the valid/ folder (no test/)"
    with caplog.at_level("INFO", logger="sweeps.data"):
        sweeps.sweep_data.log_data(record)
    assert "validation: carved from train; test: the valid/ folder (no test/)" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="sweeps.data"):   # "1 listed image(s)"
        sweeps.sweep_data.log_data({"rafdb": {**record["rafdb"], "skipped": 1}})
    assert "; 1 listed image missing or unreadable, skipped" in caplog.text


def test_the_data_record_keeps_what_the_reader_found_and_leaves_out_what_differs_between_runs(tmp_path):
    # which FERPlus layout was read, and the rows its vote rule dropped, were in no record of the runs
    splits = _decoded()
    splits.dataset, splits.fingerprint, splits.info = "ferplus", "fp", {
        "layout": "PNG folders + label.csv", "dropped_by_rule": {"train": 3}, "val_source": "official PublicTest",
        "cache_dir": "/home/me/.cache/x", "cache_hit": True}
    record = sweeps.sweep_data.data_record(_prepared_on(tmp_path, "/data/ferplus"), {"k": splits}, {"rafdb": ["k"]})
    assert record["rafdb"]["reader"] == {"layout": "PNG folders + label.csv", "dropped_by_rule": {"train": 3}}


def test_a_data_set_that_decodes_to_no_test_image_is_refused_rather_than_reported_as_zero_accuracy(tmp_path):
    # e.g. RAF-DB with only its train_*.jpg extracted: missing images are skipped, and an empty test split
    # would evaluate to 0 % in every table
    prepared = _prepared_on(tmp_path, "/data/RAF-DB/basic")
    with pytest.raises(SweepError, match=r"data set 'rafdb' at /data/RAF-DB/basic has no usable test image .*every "
                                         r"number of a table is measured on it"):
        sweeps.sweep_data.check_data_of_cells(prepared, {"k": _decoded(test=())}, {"rafdb": ["k"]})


def test_a_class_absent_from_val_or_test_is_warned_of_as_mean_class_accuracy_leaves_it_out(tmp_path, caplog):
    prepared = _prepared_on(tmp_path, "/data/RAF-DB/basic")
    with caplog.at_level("WARNING", logger="sweeps.sweep_data"):
        sweeps.sweep_data.check_data_of_cells(prepared, {"k": _decoded(classes=("anger", "happy", "sad"))},
                                          {"rafdb": ["k"]})
    assert ("data set 'rafdb' at /data/RAF-DB/basic: its test split has no image of class sad: mean class "
            "accuracy there averages over the other 2 classes") in caplog.text
    assert "its val split has no image of class sad" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="sweeps.sweep_data"):   # "the other 1 classes" read as a slip
        sweeps.sweep_data.check_data_of_cells(prepared, {"k": _decoded(test=(0, 0), classes=("anger", "happy"))},
                                              {"rafdb": ["k"]})
    assert "its test split has no image of class happy: mean class accuracy there averages over the one other class" \
        in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="sweeps.sweep_data"):
        sweeps.sweep_data.check_data_of_cells(prepared, {"k": _decoded(test=(0, 0), classes=("anger", "happy", "sad"))},
                                              {"rafdb": ["k"]})
    assert "no image of classes happy, sad: mean class accuracy there averages over the one other class" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="sweeps.sweep_data"):
        sweeps.sweep_data.check_data_of_cells(prepared, {"k": _decoded(val=(0, 0, 1, 1))}, {"rafdb": ["k"]})
    assert caplog.text == ""


def _child(run_id: str, fingerprint: str, cell: str = "c1"):
    from types import SimpleNamespace

    return SimpleNamespace(info=SimpleNamespace(run_id=run_id), data=SimpleNamespace(
        tags={"sweeps.data_fingerprint": fingerprint, "sweeps.data": "rafdb", "sweeps.cell_id": cell}))


def test_a_data_set_changed_since_runs_of_the_invocation_trained_on_it_is_refused_naming_fresh(tmp_path, caplog):
    # continuing would average cells trained on two versions of the data into one table
    from types import SimpleNamespace

    prepared = _prepared_on(tmp_path, "/data/RAF-DB/basic")
    parent = SimpleNamespace(info=SimpleNamespace(run_id="p0123"))
    children = [_child("r1", "d569920c0000aaaa")]
    check = sweeps.sweep_data.check_data_unchanged
    assert prepared.as_typed.endswith(".yaml"), "a spec file's command names its path: its name is no shipped sweep"
    check(prepared, parent, children, lambda child: "d569920c0000aaaa")   # unchanged: goes on
    check(prepared, parent, children, lambda child: None)                 # a cell this run does not plan
    check(prepared, parent, [], lambda child: "8707b1650000bbbb")         # nothing trained yet: goes on
    with pytest.raises(SweepError, match=r"the data set 'rafdb' at /data/RAF-DB/basic differs from the one run r1 "
                                         r"of invocation p0123 of 'bad' trained on \(fingerprint d569920c0000 then, "
                                         r"8707b1650000 now\).*`sweeps run " + re.escape(prepared.as_typed)
                                         + r" --fresh .*`.*--accept-changed-data"):
        check(prepared, parent, children, lambda child: "8707b1650000bbbb")
    accepting = dataclasses.replace(prepared, options=dataclasses.replace(prepared.options, accept_changed_data=True))
    with caplog.at_level("WARNING", logger="sweeps.sweep_data"):
        accepted = check(accepting, parent, children, lambda child: "8707b1650000bbbb")
    assert "going on as --accept-changed-data asks" in caplog.text
    assert accepted == {"rafdb": ["d569920c0000aaaa", "8707b1650000bbbb"]}, "recorded on the parent run"
    # a later change is added to what the parent recorded, in order, once each
    assert sweeps.sweep_data.merged_changes('{"rafdb": ["d569920c0000aaaa", "8707b1650000bbbb"]}',
                                         {"rafdb": ["8707b1650000bbbb", "c0ffee000000cccc"]}) == \
        {"rafdb": ["d569920c0000aaaa", "8707b1650000bbbb", "c0ffee000000cccc"]}


def test_data_json_entries_a_continuation_replaces_are_kept_once_each_and_found_by_fingerprint():
    # what differs is said against the data a run trained on: data.json holds the latest run's data alone
    earlier_entries, recorded_entry = sweeps.sweep_data.earlier_entries, sweeps.sweep_data.recorded_entry
    v1, v2, v3 = ({"fingerprint": fp, "images": {"train": n}} for fp, n in (("aaa", 10), ("bbb", 11), ("ccc", 12)))
    assert earlier_entries(None, {"rafdb": v1, "rafdb#k48": v1}, {"rafdb": v1, "rafdb#k48": v1}) is None, "same data"
    kept = earlier_entries(None, {"rafdb": v1, "rafdb#k48": v1}, {"rafdb": v2, "rafdb#k48": v1})
    assert kept == {"rafdb": [v1]}
    assert earlier_entries(kept, {"rafdb": v2}, {"rafdb": v2}) is None, "nothing to add: the file stays as it is"
    kept = earlier_entries(kept, {"rafdb": v2}, {"rafdb": v3})
    assert kept == {"rafdb": [v1, v2]}, "oldest first"
    assert earlier_entries(kept, {"rafdb": v1}, {"rafdb": v3}) is None, "kept once"
    assert earlier_entries(None, None, {"rafdb": v3}) is None, "no data.json (an invocation cut short before it)"
    assert recorded_entry(kept, "rafdb", "aaa") == v1 and recorded_entry(kept, "rafdb", "bbb") == v2
    assert recorded_entry(kept, "rafdb", "ccc") is None and recorded_entry(kept, "fer", "aaa") is None
    assert recorded_entry({"rafdb#k48": [v1]}, "rafdb", "aaa") == v1, "an arm's at another image size"


def test_data_json_and_data_earlier_json_are_left_as_they_are_where_the_store_could_not_read_them(
        store, monkeypatch, caplog):
    # the parent's data files are read as None where the store's artifacts do not answer (read_text_artifact): the
    # continuation then wrote data_earlier.json anew from nothing and data.json over the entries it could not keep
    from mlflow.tracking import MlflowClient

    from sweeps import runner, schema, tracking

    client = MlflowClient(store)
    parent = client.create_run(client.create_experiment("data-earlier")).info.run_id
    v0, v1, v2 = ({"fingerprint": fp, "images": {"train": n}} for fp, n in (("aaa", 10), ("bbb", 11), ("ccc", 12)))
    tracking.log_json_artifact(client, parent, schema.ARTIFACT_DATA_EARLIER, {"rafdb": [v0]})
    tracking.log_json_artifact(client, parent, schema.ARTIFACT_DATA, {"rafdb": v1})

    def files() -> tuple:
        return tuple(tracking.read_json_artifact(client, parent, name)
                     for name in (schema.ARTIFACT_DATA_EARLIER, schema.ARTIFACT_DATA))

    with monkeypatch.context() as m:
        m.setattr(tracking, "read_text_artifact", lambda *a, **k: None)   # as the store answers no read
        earlier, replaced = files()
        with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
            assert runner.record_earlier_data(client, parent, earlier, replaced, {"rafdb": v2}) is False
    assert "data_earlier.json and data.json of invocation" in caplog.text and "could not be read" in caplog.text
    assert files() == ({"rafdb": [v0]}, {"rafdb": v1})
    assert runner.record_earlier_data(client, parent, *files(), {"rafdb": v2}) is True   # read: kept, oldest first
    assert files()[0] == {"rafdb": [v0, v1]}
    fresh = client.create_run(client.get_run(parent).info.experiment_id).info.run_id   # none written yet: no files
    assert runner.record_earlier_data(client, fresh, None, None, {"rafdb": v2}) is True


def test_a_data_change_the_invocation_went_on_after_is_warned_of_once_not_at_each_rerun_or_continuation(
        tmp_path, caplog):
    # the finished invocation run again warned "differs from the one run ... its table is of the data as it was" at
    # each run, of a change accepted before (its table mixes both, and says so), and a continuation was refused again
    from types import SimpleNamespace

    prepared = _prepared_on(tmp_path, "/data/RAF-DB/basic")
    accepted_then = {"sweeps.data_changed": json.dumps({"rafdb": ["d569920c0000aaaa", "8707b1650000bbbb"]})}
    parent = SimpleNamespace(info=SimpleNamespace(run_id="p0123"), data=SimpleNamespace(tags=accepted_then))
    children = [_child("r1", "d569920c0000aaaa"), _child("r2", "8707b1650000bbbb", cell="c2")]
    check = sweeps.sweep_data.check_data_unchanged
    with caplog.at_level("WARNING", logger="sweeps.sweep_data"):
        assert check(prepared, parent, children, lambda child: "8707b1650000bbbb", finished=True) == {}
        assert check(prepared, parent, children, lambda child: "8707b1650000bbbb") == {}
    assert caplog.text == ""
    # a change since (a third version) is one still
    with pytest.raises(SweepError, match=r"differs from the one run r1 .*fingerprint d569920c0000 then, c0ffee000000 "):
        check(prepared, parent, children, lambda child: "c0ffee000000cccc")
    other = SimpleNamespace(info=parent.info, data=SimpleNamespace(tags={"sweeps.data_changed": json.dumps(
        {"fer": ["d569920c0000aaaa", "8707b1650000bbbb"]})}))   # accepted of another data set
    with pytest.raises(SweepError, match=r"differs from the one run r1"):
        check(prepared, other, children, lambda child: "8707b1650000bbbb")


def test_a_run_recorded_with_a_fingerprint_an_earlier_version_gave_the_same_data_is_no_change(tmp_path, caplog):
    # an image folder of integer TIFFs recorded before tiff_decoding was fingerprinted decodes as it did then
    from types import SimpleNamespace

    prepared = _prepared_on(tmp_path, "/data/RAF-DB/basic")
    parent = SimpleNamespace(info=SimpleNamespace(run_id="p0123"))
    children = [_child("r1", "d569920c0000aaaa")]
    check = sweeps.sweep_data.check_data_unchanged
    asked = []

    def alike(child):
        asked.append(child.info.run_id)
        return ("d569920c0000aaaa",)

    with caplog.at_level("WARNING", logger="sweeps.sweep_data"):
        assert check(prepared, parent, children, lambda child: "8707b1650000bbbb", alike_now=alike) == {}
        assert check(prepared, parent, children, lambda child: "8707b1650000bbbb", alike_now=alike, finished=True) == {}
    assert caplog.text == "" and asked == ["r1", "r1"]
    check(prepared, parent, children, lambda child: "d569920c0000aaaa", alike_now=alike)
    assert asked == ["r1", "r1"], "asked only of a fingerprint that differs (it reads the files' headers)"
    with pytest.raises(SweepError, match=r"differs from the one run r1"):   # float TIFFs: none alike
        check(prepared, parent, children, lambda child: "8707b1650000bbbb", alike_now=lambda child: ())


def test_a_changed_data_set_says_what_differs_from_what_the_invocation_recorded(tmp_path, caplog):
    # two fingerprints alone left the researcher to guess: an image added? relabelled? the tool reading it otherwise?
    from types import SimpleNamespace

    describe = sweeps.sweep_data.describe_data_change
    recorded = {"classes": ["a", "b"], "images": {"train": 3, "val": 1, "test": 2}, "skipped": 0,
                "class_counts": {"train": [2, 1], "val": [1, 0], "test": [1, 1]}}
    assert describe(recorded, {"classes": ["a", "b"], "images": 7, "class_counts": [4, 3]}) == "6 images then, 7 now"
    assert describe(recorded, {"classes": ["a", "b"], "images": 6, "class_counts": [3, 3]}) == \
        ("as many images, in other classes (a 4 -> 3, b 2 -> 3): images relabelled, or one removed from a class and "
         "another added to another")
    assert describe(recorded, {"classes": ["a", "b"], "images": 6, "class_counts": [4, 2]}) == \
        "the same classes and as many images: a label file or an image edited, replaced or touched (or the files copied anew)"
    assert describe(recorded, {"classes": ["a", "c"], "images": 6, "class_counts": [4, 2]}) == \
        "other classes (then: a, b; now: a, c)"
    assert describe(None, {"classes": ["a"], "images": 1, "class_counts": [1]}) == "", "nothing recorded: nothing said"
    # an image folder of classes 0..10 recorded before its folders were ordered by number (b4d600e): same images
    names = [str(k) for k in range(11)]
    numbered = {"classes": sorted(names), "images": {"train": 22, "val": 0, "test": 22}, "skipped": 0}
    said = describe(numbered, {"classes": names, "images": 44, "class_counts": [4] * 11})
    assert said == ("its classes are labelled in another order (label 0, 1, ... then: 0, 1, 10, 2, 3, 4, 5, 6, 7, 8, "
                    "9; now: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10): this version of the tool gives class folders named by "
                    "whole numbers the label of their number (folder 10 is class 10), earlier versions read them in "
                    "name order (0, 1, 10, 2, ...); the images are the same")
    # said in the refusal and in the warning of a finished invocation
    prepared = _prepared_on(tmp_path, "/data/RAF-DB/basic")
    parent = SimpleNamespace(info=SimpleNamespace(run_id="p0123"))
    children = [_child("r1", "d569920c0000aaaa")]
    check = sweeps.sweep_data.check_data_unchanged
    with pytest.raises(SweepError, match=r"\(fingerprint d569920c0000 then, 8707b1650000 now; what differs: 6 images "
                                         r"then, 7 now\): continuing would"):
        check(prepared, parent, children, lambda child: "8707b1650000bbbb", what_changed=lambda c: "6 images then, 7 now")
    with caplog.at_level("WARNING", logger="sweeps.sweep_data"):
        check(prepared, parent, children, lambda child: "8707b1650000bbbb", finished=True,
              what_changed=lambda c: "6 images then, 7 now")
    assert "8707b1650000 now; what differs: 6 images then, 7 now); every cell" in caplog.text


def test_what_differs_is_read_from_the_data_json_entry_of_the_runs_own_data_arms_at_another_size_included():
    # data.json names the data of an arm that decodes it otherwise "<name>#<key>": only "<name>" was read, so such
    # an arm's changed data was refused with two fingerprints and no "what differs"
    entry = sweeps.sweep_data.recorded_entry
    recorded = {"rafdb": {"fingerprint": "aaaa", "images": {}}, "rafdb#0123abcd": {"fingerprint": "bbbb", "images": {}},
                "fer": {"fingerprint": "cccc"}}
    assert entry(recorded, "rafdb", "aaaa") is recorded["rafdb"]
    assert entry(recorded, "rafdb", "bbbb") is recorded["rafdb#0123abcd"]
    assert entry(recorded, "rafdb", "cccc") is None, "another data set's"
    assert entry(recorded, "rafdb", "dddd") is None, "recorded since of other data (a continuation)"
    assert entry(["not", "a", "record"], "rafdb", "aaaa") is None and entry(recorded, "rafdb", None) is None


def test_what_differs_in_a_changed_data_set_failing_to_be_said_leaves_the_refusal_as_it_was(tmp_path):
    # it decorates the refusal: a folder unreadable since the fingerprint was taken, or a data.json edited by hand,
    # turned the refusal into a traceback
    from types import SimpleNamespace

    prepared = _prepared_on(tmp_path, "/data/RAF-DB/basic")
    parent = SimpleNamespace(info=SimpleNamespace(run_id="p0123"))

    def unreadable(child):
        raise PermissionError(13, "Permission denied", "/data/RAF-DB/basic/EmoLabel")

    with pytest.raises(SweepError, match=r"\(fingerprint d569920c0000 then, 8707b1650000 now\): continuing would"):
        sweeps.sweep_data.check_data_unchanged(prepared, parent, [_child("r1", "d569920c0000aaaa")],
                                               lambda child: "8707b1650000bbbb", what_changed=unreadable)
    edited = {"classes": ["a", "b"], "images": {"train": 3, "val": 1, "test": 2}, "skipped": 0,
              "class_counts": {"train": {"a": 2, "b": 1}, "val": [1, 0], "test": [1, 1]}}   # counts by name
    with pytest.raises(SweepError, match=r"8707b1650000 now\): continuing would"):
        sweeps.sweep_data.check_data_unchanged(
            prepared, parent, [_child("r1", "d569920c0000aaaa")], lambda child: "8707b1650000bbbb",
            what_changed=lambda child: sweeps.sweep_data.describe_data_change(
                edited, {"classes": ["a", "b"], "images": 6, "class_counts": [3, 3]}))


def test_a_changed_data_set_names_the_whole_command_that_starts_anew_on_it(tmp_path, caplog):
    # "`sweeps run NAME --fresh` with the same --profile, --data and --set" left the researcher to retype them
    # (and the store: without --tracking-uri it recorded into ./mlflow.db)
    from types import SimpleNamespace

    prepared = _prepared_on(tmp_path, "/data/RAF-DB/basic")
    prepared = dataclasses.replace(prepared, options=dataclasses.replace(
        prepared.options, profile="smoke", overrides={"optim.epochs": 3}))
    fresh = (f"`sweeps run {prepared.as_typed} --fresh --profile smoke --storage {tmp_path}/ray_results "
             f"--tracking-uri sqlite:///{tmp_path}/mlflow.db --data rafdb=/data/RAF-DB/basic --set optim.epochs=3`")
    parent = SimpleNamespace(info=SimpleNamespace(run_id="p0123"))
    children = [_child("r1", "d569920c0000aaaa")]
    check = sweeps.sweep_data.check_data_unchanged
    with pytest.raises(SweepError, match=f"Start a new invocation on the data as it is now with {re.escape(fresh)} "):
        check(prepared, parent, children, lambda child: "8707b1650000bbbb")
    with caplog.at_level("WARNING", logger="sweeps.sweep_data"):   # every cell finished: a warning
        assert check(prepared, parent, children, lambda child: "8707b1650000bbbb", finished=True) == {}
    assert f"its table is of the data as it was: {fresh} trains a new invocation on the data as it is now" in caplog.text


def test_no_validation_image_for_a_metric_measured_on_validation_is_refused(tmp_path):
    # a search optimises val_acc: Tune would fail inside its loop on every resume
    prepared = prepare_spec(SEARCH)(tmp_path)
    assert prepared.spec.metric.startswith("val_")
    with pytest.raises(SweepError, match=r"data set 'synthetic' has no validation image, and the sweep's metric "
                                         r"'val_acc' is measured on it"):
        sweeps.sweep_data.check_data_of_cells(prepared, {"k": _decoded(val=())},
                                          {"synthetic": ["k"]})


def test_a_data_set_without_validation_images_is_warned_of_its_selection_falling_back(tmp_path, caplog):
    prepared = _prepared_on(tmp_path, "/data/FER2013")
    with caplog.at_level("WARNING", logger="sweeps.sweep_data"):
        sweeps.sweep_data.check_data_of_cells(prepared, {"k": _decoded(val=())},
                                          {"rafdb": ["k"]})
    assert "has no validation image: its cells report the test accuracy of their last epoch" in caplog.text


@pytest.mark.parametrize("text, where", [
    (TABLE.replace("label: B", "label: MAD 🚀"), r"spec\.yaml line 5: arms\[1\]\.label: 'MAD 🚀': its '🚀' "
                                                 r"\(U\+1F680 ROCKET\)"),
    ("name: bad\nprofile: smoke\ngrid: {model.depth: [1, 2]}\nlabel: 'Tiefe★{model.depth} ✅'\n",
     r"spec\.yaml line 4: label: 'Tiefe★1 ✅': its '✅' \(U\+2705 WHITE HEAVY CHECK MARK\)"),
    (TABLE + "title: Стек\n", r"spec\.yaml line 6: title: 'Стек': its 'С' \(U\+0421 CYRILLIC CAPITAL LETTER ES\)"),
])
def test_a_label_or_title_pdflatex_does_not_set_is_warned_of_before_ray_starts_not_refused(text, where, tmp_path,
                                                                                            caplog):
    # the LaTeX table written after the last trial stopped a pdflatex paper at "Unicode character 🚀 (U+1F680)
    # not set up"; a Russian or Chinese paper sets its script with a font package or xelatex, so it runs
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
        prepare_spec(text)(tmp_path)
    assert re.search(where + r" is a character pdflatex does not set by itself .*The sweep's LaTeX table will show "
                             r"it as typed", caplog.text), caplog.text
