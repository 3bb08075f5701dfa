"""search_spaces.spec: every bad spec fails at load with a message naming file, line, key path, value
and what would be right. One rule per case."""

from __future__ import annotations

import re
import textwrap

import pytest

from search_spaces import SpecError, load

ARMS = "arms: [{label: A}, {label: B, set: {model.depth: 3}}]\n"

BAD_SPECS = {
    "unknown_top_level_key_suggests_the_close_one": (
        "name: s\nseeds: [0]\nseed: [1]\n" + ARMS,
        r"line 3: seed: unknown key 'seed'\. Did you mean 'seeds'\? Valid keys: name, title,"),
    "unknown_top_level_key_names_the_x_form_for_anchors": (   # a researcher's `common: &c {...}` for `<<: *c`
        "name: s\ncommon: &c {model.depth: 3}\n" + ARMS,
        r"line 2: common: unknown key 'common'\. Valid keys: name, .*, search \(or a key starting x-, e\.g\. "
        r"x-common: &common \{optim\.lr: 1\.0e-3\}, a place for YAML anchors to reuse with <<: \*common, otherwise "
        r"ignored\)"),
    "missing_name": (
        ARMS,
        r"spec\.yaml: missing key 'name'"),
    "name_with_a_slash": (
        "name: a/b\n" + ARMS,
        r"line 1: name: 'a/b' is invalid: expected letters, digits"),
    "unknown_config_key_in_base": (
        "name: s\nbase: {model.num_lanet: 2}\n" + ARMS,
        r"line 2: base\.model\.num_lanet: unknown key 'model\.num_lanet'\. Did you mean 'model\.num_lanets'\?"),
    "unknown_config_key_in_arm": (
        "name: s\narms:\n  - label: A\n    set: {optim.learning_rate: 0.1}\n",
        r"line 4: arms\[0\]\.set\.optim\.learning_rate: unknown key 'optim\.learning_rate'\. Valid keys: model\.stem"),
    "unknown_config_key_in_grid": (
        "name: s\ngrid: {model.depht: [1, 2]}\n",
        r"line 2: grid\.model\.depht: unknown key 'model\.depht'\. Did you mean 'model\.depth'\?"),
    "unknown_config_key_in_search_space": (
        "name: s\nkind: search\nsearch:\n  space:\n    optim.l: {type: float, low: 0.1, high: 0.2}\n",
        r"line 5: search\.space\.optim\.l: unknown key 'optim\.l'\. Did you mean 'optim\.lr'\?"),
    "unknown_arm_key": (
        "name: s\narms:\n  - {label: A, sett: {model.depth: 2}}\n",
        r"line 3: arms\[0\]\.sett: unknown key 'sett'\. Did you mean 'set'\? Valid keys: label, set"),
    "unknown_table_key": (
        "name: s\n" + ARMS + "table: {baseline: A, metric: [sel_test_acc]}\n",
        r"table\.metric: unknown key 'metric'\. Did you mean 'metrics'\? Valid keys: rows, columns, baseline"),
    "paper_figures_of_a_label_yaml_reads_as_a_number": (   # said "unknown arm label 2. Did you mean '2'?"
        "name: s\ngrid: {model.depth: [1, 2]}\nlabel: '{model.depth}'\ntable: {paper: {2: {rafdb: 90.91}}}\n",
        r"line 4: table\.paper\[2\]: 2 is an integer: expected a string \(quote it in YAML\)"),
    "paper_metric_without_paper_figures": (
        "name: s\n" + ARMS + "table: {paper_metric: best_test_acc}\n",
        r"table\.paper_metric: is given without paper figures: expected table\.paper"),
    "paper_metric_the_table_does_not_show": (
        "name: s\n" + ARMS + "table: {paper: {A: {rafdb: 90.91}}, paper_metric: best_test_acc}\n",
        r"table\.paper_metric: best_test_acc is not among the table's metrics \(sel_test_acc\), so the paper's "
        r"figures would have no column: add it, e\.g\. table\.metrics: \[sel_test_acc, best_test_acc\]"),
    "paper_metric_unknown": (
        "name: s\n" + ARMS + "table: {paper: {A: {rafdb: 90.91}}, paper_metric: best_test_accuracy}\n",
        r"table\.paper_metric: unknown table metric 'best_test_accuracy'\. Did you mean 'best_test_acc'\?"),
    "unknown_search_param_key": (
        "name: s\nkind: search\nsearch:\n  space:\n    optim.lr: {type: float, low: 0.1, high: 0.2, lg: true}\n",
        r"search\.space\.optim\.lr\.lg: unknown key 'lg'\. Did you mean 'log'\? Valid keys: type, low, high"),
    "wrong_type_of_config_value": (
        "name: s\nbase: {model.depth: deep}\n" + ARMS,
        r"line 2: base\.model\.depth: model\.depth='deep' is invalid: expected an integer"),
    "wrong_type_of_arms": (
        "name: s\narms: {label: A}\n",
        r"line 2: arms: \{'label': 'A'\} is invalid: expected a non-empty list of arms"),
    "yaml_boolean_given_to_a_string_field": (
        "name: s\nbase: {amp: off}\n" + ARMS,
        r"base\.amp: amp=False is a boolean: YAML reads an unquoted off, no or false as the boolean False: amp is one "
        r"of auto, bf16, off, quoted where YAML would read it otherwise\. Did you mean 'off' \(quoted: amp: \"off\"\)\?"),
    # `amp: on` and `null` got the bare "expected a string": what YAML made of the word, and the choices
    # a config key (or a list) as table.rows was "'model.depth' is invalid. Expected one of: arm": the one layout,
    # and how a two-key grid is shown
    "table_rows_by_a_grid_key_says_the_layout_and_how_a_grid_reads": (
        "name: s\ngrid: {model.depth: [1, 2], model.drop_rate: [0.1, 0.2]}\nlabel: 'd{model.depth}p{model.drop_rate}'\n"
        "table: {rows: [model.depth], columns: model.drop_rate}\n",
        r"line 4: table\.rows: \['model\.depth'\] is invalid: a table's rows are its arms \(a search's: its trials\) and "
        r"its columns its data sets \(rows: arm, columns: data, the only layout, which need not be given\); a grid "
        r"over several keys gives one row per point, named by its label template, e\.g\. label: "
        r"\"depth=\{model\.depth\} drop_rate=\{model\.drop_rate\}\"$"),
    # a spec of explicit arms was told of a grid's label template ("drop_variant={model.drop_variant}"), which no
    # arm's label fills in: its arms are its rows, each under its own label; a search's, its trials
    "table_rows_by_a_key_in_a_spec_of_arms_names_the_arms_labels_not_a_grid_template": (
        "name: s\narms: [{label: MAD}, {label: Dropout, set: {model.drop_variant: dropout}}]\n"
        "table: {rows: model.drop_variant}\n",
        r"line 3: table\.rows: 'model\.drop_variant' is invalid: a table's rows are its arms \(a search's: its "
        r"trials\) and its columns its data sets \(rows: arm, columns: data, the only layout, which need not be "
        r"given\); each arm is one row, named by its own label, e\.g\. \{label: \"drop_variant=dropout\", set: "
        r"\{model\.drop_variant: dropout\}\} \(a label template is a grid's: grid: gives one row per point of "
        r"several keys\)$"),
    "table_rows_refused_in_a_spec_of_arms_writes_a_list_value_as_yaml_not_a_python_tuple": (
        "name: s\narms: [{label: A, set: {optim.milestones: [3, 5]}}]\ntable: {columns: model.depth}\n",
        r"table\.columns: 'model\.depth' is invalid: .*e\.g\. \{label: \"milestones=\[3, 5\]\", "
        r"set: \{optim\.milestones: \[3, 5\]\}\}"),
    # its example, copied into the spec, was refused: `amp: off` unquoted is YAML's False, and a path is no label
    "table_rows_refused_in_a_spec_of_arms_quotes_a_string_yaml_reads_otherwise_and_labels_a_path_by_its_name": (
        'name: s\narms: [{label: A, set: {amp: "off", model.encoder_checkpoint: /w/vit.pth}}]\n'
        "table: {rows: model.depth}\n",
        r"table\.rows: 'model\.depth' is invalid: .*e\.g\. \{label: \"amp=off encoder_checkpoint=vit\.pth\", "
        r"set: \{amp: \"off\", model\.encoder_checkpoint: /w/vit\.pth\}\} \(a label"),
    "table_rows_by_a_key_in_a_search_names_its_trials_not_a_grid_template": (
        "name: s\nkind: search\nsearch:\n  num_samples: 2\n  space:\n"
        "    optim.lr: {type: float, low: 0.0001, high: 0.01, log: true}\ntable: {rows: [optim.lr]}\n",
        r"table\.rows: \['optim\.lr'\] is invalid: .*; a search gives one row per trial, named by the values it "
        r"drew$"),
    "table_rows_misspelled_is_named": (
        "name: s\ntable: {rows: arms}\n" + ARMS,
        r"table\.rows: 'arms' is invalid\. Did you mean 'arm'\? Expected one of: arm"),
    "yaml_on_given_to_a_key_of_choices": (
        "name: s\nbase: {amp: on}\n" + ARMS,
        r"base\.amp: amp=True is a boolean: YAML reads an unquoted on, yes or true as the boolean True: amp is one of "
        r"auto, bf16, off, quoted where YAML would read it otherwise$"),
    "yaml_null_given_to_a_key_of_choices": (
        "name: s\nbase: {amp: null}\n" + ARMS,
        r"base\.amp: amp=None is invalid: YAML reads an unquoted null, ~ or empty value as null, no value at all: amp "
        r"is one of auto, bf16, off"),
    "yaml_null_given_to_a_key_with_a_none_choice": (
        "name: s\narms:\n  - {label: A, set: {data.augment: }}\n",
        r"data\.augment=None is invalid: .*data\.augment is one of released, apvit, light, none, quoted where YAML "
        r"would read it otherwise\. Did you mean 'none'\?$"),
    "a_boolean_given_to_a_string_key_of_no_choices": (
        "name: s\nbase: {data.cache_dir: yes}\n" + ARMS,
        r"data\.cache_dir=True is a boolean: YAML reads off/on/yes/no/true/false as booleans; quote"),
    "out_of_range_config_value": (
        "name: s\narms:\n  - {label: A}\n  - label: B\n    set: {model.drop_rate: 1.5}\n",
        r"line 5: arms\[1\]\.set\.model\.drop_rate: model\.drop_rate=1\.5 is invalid: expected a number in \[0, 1\]"),
    "unknown_drop_variant_lists_the_valid_ones": (
        "name: s\narms:\n  - {label: A, set: {model.drop_variant: maad}}\n",
        r"arms\[0\]\.set\.model\.drop_variant: model\.drop_variant='maad' is invalid: "
        r"expected one of none, dropout, dropblock, spatial_dropout, mad"),
    "reserved_key_data_root": (
        "name: s\nbase: {data.root: /data}\n" + ARMS,
        r"base\.data\.root: data\.root cannot be set here: the data folder of a cell comes from --data"),
    "duplicate_labels": (
        "name: s\narms:\n  - {label: A, set: {model.depth: 1}}\n  - {label: A, set: {model.depth: 2}}\n",
        r"line 4: arms\[1\]\.label: label 'A' is used by two arms: labels must be unique"),
    "labels_that_differ_only_in_spaces": (   # LaTeX, Markdown and HTML print both "Spatial Dropout"
        "name: s\narms:\n  - {label: Spatial Dropout}\n  - {label: Spatial  Dropout, set: {model.depth: 3}}\n",
        r"line 4: arms\[1\]\.label: label 'Spatial  Dropout' differs from 'Spatial Dropout' only in its spaces"),
    "grid_template_giving_duplicate_labels": (
        "name: s\ngrid: {model.depth: [1, 2]}\nlabel: depth\n",
        r"line 3: label: label 'depth' is used by two arms"),
    "arms_giving_the_same_config": (
        "name: s\narms:\n  - {label: A, set: {model.depth: 3}}\n  - {label: B, set: {model.depth: 3}}\n",
        r"arms\[1\]\.set: arms 'A' and 'B' give the same configuration on profile 'quick'"),
    "baseline_not_an_arm": (
        "name: s\n" + ARMS + "table: {baseline: C}\n",
        r"table\.baseline: unknown arm label 'C'\..* Valid: A, B"),
    "table_metric_unknown": (
        "name: s\n" + ARMS + "table: {metrics: [sel_test_acc, test_accuracy]}\n",
        r"table\.metrics\[1\]: unknown metric 'test_accuracy'\..*Valid: best_val_acc, sel_test_acc"),
    "table_metric_not_an_accuracy": (   # an epoch count the table cannot show: refused before the sweep runs
        "name: s\n" + ARMS + "table: {metrics: [sel_test_acc, sel_epoch]}\n",
        r"table\.metrics\[1\]: unknown metric 'sel_epoch'\..*Valid: best_val_acc, sel_test_acc, sel_test_mca, "
        r"best_test_acc, best_test_mca, final_test_acc, best_val_mca, best_val_loss, best_train_acc, best_train_loss$"),
    "spec_metric_not_a_summary_metric_for_a_table": (
        "name: s\nmetric: val_acc\n" + ARMS,
        r"line 2: metric: unknown table metric 'val_acc'\..*Valid: best_val_acc"),
    "spec_metric_an_epoch_count_for_a_table": (   # the table fell back to sel_test_acc without a word
        "name: s\nmetric: sel_epoch\n" + ARMS,
        r"line 2: metric: sel_epoch is an epoch number, not a score a table can rank by: expected one of "
        r"best_val_acc, sel_test_acc, sel_test_mca, best_test_acc, best_test_mca, final_test_acc$"),
    "search_metric_a_record": (
        "name: s\nkind: search\nmetric: lr\nsearch:\n  space:\n    optim.lr: {type: float, low: 0.1, high: 0.2}\n",
        r"line 3: metric: lr is the learning rate, not a score a search can rank by: expected one of train_loss, "
        r"train_acc, val_loss, val_acc, val_mca, best_val_acc$"),
    "search_maximising_a_loss": (   # Optuna would have searched for the worst configuration
        "name: s\nkind: search\nmetric: val_loss\nmode: max\n"
        "search:\n  space:\n    optim.lr: {type: float, low: 0.1, high: 0.2}\n",
        r"line 4: mode: max for metric val_loss, which improves as it falls: expected mode: min \(or leave mode "
        r"out\)$"),
    "arms_and_grid_together": (
        "name: s\n" + ARMS + "grid: {model.depth: [1, 2]}\n",
        r"a table sweep needs exactly one of 'arms' \(an explicit list\) or 'grid' .*, not both"),
    "neither_arms_nor_grid": (
        "name: s\n",
        r"a table sweep needs exactly one of 'arms'"),
    "grid_values_not_a_list": (
        "name: s\ngrid: {model.depth: 2}\n",
        r"grid\.model\.depth: 2 is invalid: expected a non-empty list of values"),
    "label_template_with_attribute_access": (
        "name: s\ngrid: {model.depth: [1, 2]}\nlabel: \"{model.depth.real}\"\n",
        r"line 3: label: '\{model\.depth\.real\}': field \{model\.depth\.real\} is not a grid key "
        r"\(no attribute or index access, no positional fields\)\. Valid fields: \{model\.depth\}"),
    "label_template_with_index_access": (
        "name: s\ngrid: {model.depth: [1, 2]}\nlabel: \"{depth[0]}\"\n",
        r"field \{depth\[0\]\} is not a grid key"),
    "label_template_with_positional_field": (
        "name: s\ngrid: {model.depth: [1, 2]}\nlabel: \"d={}\"\n",
        r"'d=\{\}': field \{\} is not a grid key"),
    "label_template_unbalanced_brace": (
        "name: s\ngrid: {model.depth: [1, 2]}\nlabel: \"d={model.depth\"\n",
        r"label: 'd=\{model\.depth' is not a valid template"),
    "label_with_a_slash": (
        "name: s\narms: [{label: a/b}]\n",
        r"arms\[0\]\.label: 'a/b' is invalid: expected a non-empty one-line label without '/'"),
    "search_drawing_a_value_inside_its_range_that_makes_no_valid_config": (   # bounds 32, 64 pass; 33 fails
        "name: s\nkind: search\nsearch:\n  space:\n    model.embed_dim: {type: int, low: 32, high: 64}\n",
        r"line 5: search\.space\.model\.embed_dim: a sample can draw model\.embed_dim=33, and then "
        r"model\.num_heads=4 is invalid: expected a divisor of model\.embed_dim=33: every value a space can draw "
        r"must make a valid config"),
    "search_drawing_two_values_that_make_no_valid_config_together": (   # each is valid with the other's base
        "name: s\nkind: search\nsearch:\n  space:\n    model.embed_dim: [64, 96]\n    model.num_heads: [4, 64]\n",
        r"search\.space\.model\.embed_dim\.choices\[1\]: a sample can draw model\.embed_dim=96 with "
        r"model\.num_heads=64, and then model\.num_heads=64 is invalid"),
    "search_drawing_a_value_inside_a_range_too_long_to_check_every_value": (   # 961 values: only 64, 1024 were
        "name: s\nkind: search\nsearch:\n  space:\n    model.embed_dim: {type: int, low: 64, high: 1024}\n",
        r"line 5: search\.space\.model\.embed_dim: a sample can draw model\.embed_dim=65, and then "
        r"model\.num_heads=4 is invalid: expected a divisor of model\.embed_dim=65"),
    "search_drawing_two_values_of_a_range_too_long_to_pair_every_value": (   # 497 x 3 pairs: none were checked
        "name: s\nkind: search\nsearch:\n  space:\n    model.embed_dim: {type: int, low: 64, high: 2048, step: 4}\n"
        "    model.num_heads: [4, 8, 16]\n",
        r"line 5: search\.space\.model\.embed_dim: a sample can draw model\.embed_dim=68 with model\.num_heads=8, "
        r"and then model\.num_heads=8 is invalid"),
    "search_over_a_key_that_decides_the_decoded_data": (   # every sample trained on the base's data
        "name: s\nkind: search\nsearch:\n  space:\n    data.val_fraction: {type: float, low: 0.1, high: 0.3}\n",
        r"line 5: search\.space\.data\.val_fraction: data\.val_fraction decides the decoded data, which a sweep "
        r"decodes once before its trials start: a search cannot vary it\. Compare its values as a table's arms"),
    "search_over_the_number_of_classes": (   # every sample but the data set's own count failed at train time
        "name: s\nkind: search\nsearch:\n  space:\n    model.num_classes: [7, 8]\n",
        r"line 5: search\.space\.model\.num_classes: model\.num_classes is the number of classes of the data set "
        r"\(--data sets it; the synthetic faces have 7\): a search cannot vary it"),
    "search_over_the_image_size": (
        "name: s\nkind: search\nsearch:\n  space:\n    model.image_size: [32, 48]\n",
        r"search\.space\.model\.image_size: model\.image_size decides the decoded data"),
    "search_param_low_not_below_high": (
        "name: s\nkind: search\nsearch:\n  space:\n    model.drop_rate: {type: float, low: 0.5, high: 0.5}\n",
        r"search\.space\.model\.drop_rate\.high: low=0\.5, high=0\.5 is invalid: expected low < high"),
    "search_param_log_with_low_not_positive": (
        "name: s\nkind: search\nsearch:\n  space:\n    optim.lr: {type: float, low: 0.0, high: 0.1, log: true}\n",
        r"search\.space\.optim\.lr\.low: low=0\.0 is invalid with log: true: expected low > 0"),
    "search_param_step_not_dividing_the_range": (
        "name: s\nkind: search\nsearch:\n  space:\n    model.depth: {type: int, low: 1, high: 8, step: 2}\n",
        r"search\.space\.model\.depth\.step: 2 is invalid: high - low = 7 is not a multiple of it, so high=8 could "
        r"never be drawn"),
    "search_param_float_step_bounds_not_multiples_of_the_step": (   # Ray's tune.quniform refused it at run time
        "name: s\nkind: search\nsearch:\n  space:\n    model.drop_rate: {type: float, low: 0.05, high: 0.95, "
        "step: 0.3}\n",
        r"line 5: search\.space\.model\.drop_rate\.low: low=0\.05 is invalid with step 0\.3: Ray Tune's quantized "
        r"float \(tune\.quniform\) needs low and high to be multiples of the step, e\.g\. low: 0\.0"),
    "search_param_infinite_bound": (   # tune.loguniform refused it at run time; a uniform one drew lr = inf
        "name: s\nkind: search\nsearch:\n  space:\n    optim.lr: {type: float, low: 1.0e-5, high: .inf}\n",
        r"line 5: search\.space\.optim\.lr\.high: inf is invalid: expected a finite number"),
    "search_startup_trials_with_the_random_sampler": (   # Optuna's RandomSampler has none: ignored silently
        "name: s\nkind: search\nsearch:\n  space:\n    model.depth: [1, 2]\n  sampler: random\n"
        "  n_startup_trials: 5\n",
        r"line 7: search\.n_startup_trials: is for sampler tpe .*: remove it, or use sampler: tpe"),
    "search_startup_trials_with_the_qmc_sampler": (   # Optuna's QMCSampler has none either: ignored silently
        "name: s\nkind: search\nsearch:\n  space:\n    model.depth: [1, 2]\n  sampler: qmc\n"
        "  n_startup_trials: 5\n",
        r"line 7: search\.n_startup_trials: is for sampler tpe or gp .*; sampler qmc draws every trial from its "
        r"quasi-random sequence but the first, which it draws at random: remove it, or use sampler: tpe or gp$"),
    "search_unknown_sampler_names_every_sampler": (
        "name: s\nkind: search\nsearch:\n  space:\n    model.depth: [1, 2]\n  sampler: cmaes\n",
        r"line 6: search\.sampler: 'cmaes' is invalid\. Expected one of: tpe, random, gp, qmc$"),
    "search_param_empty_categorical": (
        "name: s\nkind: search\nsearch:\n  space:\n    model.num_lanets: {type: categorical, choices: []}\n",
        r"search\.space\.model\.num_lanets\.choices: \[\] is invalid: expected a non-empty list of choices"),
    "search_param_out_of_range_bound": (
        "name: s\nkind: search\nsearch:\n  space:\n    model.msad_rate: {type: float, low: 0.0, high: 1.5}\n",
        r"line 5: search\.space\.model\.msad_rate\.high: model\.msad_rate=1\.5 is invalid: expected a number in \[0, 1\]"),
    "search_param_type_not_fitting_the_field": (
        "name: s\nkind: search\nsearch:\n  space:\n    model.depth: {type: float, low: 1, high: 8}\n",
        r"search\.space\.model\.depth\.type: 'float' does not fit model\.depth, which is an integer: use type int or categorical"),
    "search_param_invalid_choice": (
        "name: s\nkind: search\nsearch:\n  space:\n    model.drop_variant: [mad, dropit]\n",
        r"search\.space\.model\.drop_variant\.choices\[1\]: model\.drop_variant='dropit' is invalid: expected one of"),
    "search_key_both_searched_and_in_base": (
        "name: s\nkind: search\nbase: {model.depth: 2}\nsearch:\n  space:\n    model.depth: [1, 2]\n",
        r"search\.space\.model\.depth: model\.depth is both searched and fixed in base"),
    "search_pruner_without_type": (
        "name: s\nkind: search\nsearch:\n  pruner: {n_warmup_steps: 2}\n  space:\n    model.depth: [1, 2]\n",
        r"search\.pruner: \{'n_warmup_steps': 2\} has no string 'type'"),
    "search_metric_measured_on_the_test_set": (
        "name: s\nkind: search\nmetric: test_acc\nsearch:\n  space:\n    model.depth: [1, 2]\n",
        r"line 3: metric: test_acc is measured on the test set: a search chooses its configurations \(and prunes\) "
        r"on validation, never on the test set\. Expected one of: train_loss, train_acc, val_loss, val_acc, val_mca, "),
    "search_metric_selected_on_the_test_set": (
        "name: s\nkind: search\nmetric: sel_test_acc\nsearch:\n  space:\n    model.depth: [1, 2]\n",
        r"line 3: metric: sel_test_acc is measured on the test set: a search chooses"),
    "search_with_arms": (
        "name: s\nkind: search\n" + ARMS + "search:\n  space:\n    model.depth: [1, 2]\n",
        r"arms: arms is only for kind: table; a search varies search\.space"),
    "search_with_several_seeds": (
        "name: s\nkind: search\nseeds: [0, 1]\nsearch:\n  space:\n    model.depth: [1, 2]\n",
        r"seeds: \[0, 1\] is invalid: a search trains each sample once: give one seed"),
    "seeds_a_single_integer": (
        "name: s\nseeds: 3\n" + ARMS,
        r"seeds: 3 is a single integer: expected a list, e.g\. \[0, 1, 2\] for 3 seeds or \[3\] for seed 3"),
    "seeds_a_single_large_integer": (   # its example list was all of its seeds: `seeds: 100000000`, ~6 GB printed
        "name: s\nseeds: 100000000\n" + ARMS,
        r"seeds: 100000000 is a single integer: expected a list, e\.g\. \[0, 1, \.\.\., 999\] for 1000 seeds \(a "
        r"sweep takes at most 1000 per arm\) or \[100000000\] for seed 100000000$"),
    "seeds_a_single_integer_of_many": (
        "name: s\nseeds: 20\n" + ARMS,
        r"seeds: 20 is a single integer: expected a list, e\.g\. \[0, 1, \.\.\., 19\] for 20 seeds or \[20\] for seed 20$"),
    "seeds_repeated": (
        "name: s\nseeds: [0, 0]\n" + ARMS,
        r"seeds: \[0, 0\] repeats a seed"),
    "more_seeds_than_a_sweep_takes": (   # every arm x data set x seed is a cell that trains
        "name: s\nseeds: [" + ", ".join(map(str, range(1001))) + "]\n" + ARMS,
        r"line 2: seeds: 1001 seeds is more than a sweep takes: give 1 to 1000 seeds per arm"),
    "seed_beyond_what_torch_takes": (   # refused by torch.manual_seed inside every trial, after Ray started
        "name: s\nseeds: [0, 18446744073709551616]\n" + ARMS,
        r"line 2: seeds\[1\]: 18446744073709551616 is invalid: expected an integer from 0 to "
        r"9223372036854775807 \(2\*\*63 - 1\)"),
    "unknown_kind": (
        "name: s\nkind: tabel\n" + ARMS,
        r"kind: 'tabel' is invalid\. Did you mean 'table'\? Expected one of: table, search"),
    "unknown_profile": (
        "name: s\nprofile: quik\n" + ARMS,
        r"profile: unknown profile 'quik'\. Did you mean 'quick'\? Valid: smoke, quick, paper"),
    "key_written_twice": (
        "name: s\nbase: {model.depth: 2}\nbase: {model.depth: 3}\n" + ARMS,
        r"line 3: base: key 'base' is written twice \(lines 2 and 3\); YAML would keep only the last"),
    "description_on_several_lines": (
        "name: s\ndescription: |\n  one\n  two\n" + ARMS,
        r"description: 'one\\ntwo'\.\.\. has several lines: expected one line"),
    "top_level_not_a_mapping": (
        "- name: s\n",
        r"spec\.yaml: \[\{'name': 's'\}\] is a list: expected a mapping"),
    "yaml_syntax_error_names_the_line": (
        "name: s\narms:\n  - {label: A\n",
        r"spec\.yaml line 4, column 1: YAML syntax error: .*expected ',' or '\}'"),
    "indented_with_a_tab_says_indent_with_spaces": (   # PyYAML: "found character '\t' that cannot start any token"
        "name: s\nbase:\n\tmodel.depth: 2\n" + ARMS,
        r"spec\.yaml line 3, column 1: YAML syntax error: indented with a tab: YAML indents with spaces only; "
        r"indent with spaces"),
    "a_tab_after_a_colon_says_write_spaces": (
        "name:\ts\n" + ARMS,
        r"spec\.yaml line 1, column 6: YAML syntax error: a tab where YAML expects a space \(after a colon or a '-', "
        r"before a comment, in an unquoted value\): write spaces"),
    "python_tag_is_refused": (
        "name: !!python/object/apply:os.system [echo hi]\n" + ARMS,
        r"spec\.yaml line 1, column 7: YAML syntax error: could not determine a constructor"),
    "empty_file": (
        "# nothing here\n",
        r"spec\.yaml: the file is empty: expected a sweep spec"),
}


@pytest.mark.parametrize("text, message", BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_load_rejects_bad_spec_with_pinned_message(tmp_path, text, message):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message) as info:
        load(path)
    assert str(path) in str(info.value)


def test_load_unknown_sweep_name_lists_the_shipped_names():
    with pytest.raises(SpecError, match=r"unknown sweep 'mad_vs_dropot'\. Did you mean 'mad_vs_dropout'\? "
                                        r"Valid: components, depth, .*tune \(or give the path to a \.yaml"):
        load("mad_vs_dropot")


def test_load_missing_file_names_the_path(tmp_path):
    with pytest.raises(SpecError, match=re.escape(f"{tmp_path / 'nope.yaml'}: no such file")):
        load(tmp_path / "nope.yaml")


def test_load_shipped_spec_must_be_named_as_its_file(monkeypatch, tmp_path):
    from search_spaces import spec as spec_module

    (tmp_path / "renamed.yaml").write_text("name: other\narms: [{label: A}]\n")
    monkeypatch.setattr(spec_module, "_package_files", lambda: {"renamed": tmp_path / "renamed.yaml"})
    with pytest.raises(SpecError, match=r"name: 'other' differs from the file name: a shipped spec must be "
                                        r"named 'renamed'"):
        load("renamed")


def test_spec_error_carries_source_key_path_and_line(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent("""\
        name: s
        arms:
          - label: A
            set: {model.drop_rate: 2}
    """))
    with pytest.raises(SpecError) as info:
        load(path)
    assert (info.value.source, info.value.key_path, info.value.line) == (str(path), "arms[0].set.model.drop_rate", 4)


def test_the_table_rows_refusals_arm_example_is_a_spec_that_loads(tmp_path):
    # copied as it is printed, the example arm is read back with the very values the spec's arm set
    bad = tmp_path / "bad.yaml"
    bad.write_text('name: s\narms: [{label: A}, {label: B, set: {compile: "off", optim.lr: 0.00001}}]\n'
                   "table: {rows: model.depth}\n")
    with pytest.raises(SpecError) as info:
        load(bad)
    example = re.search(r"e\.g\. (\{label: .*\}\}) \(a label", str(info.value)).group(1)
    good = tmp_path / "good.yaml"
    good.write_text(f"name: s\narms: [{{label: A}}, {example}]\n")
    arm = load(good).arms[1]
    assert dict(arm.overrides) == {"compile": "off", "optim.lr": 0.00001}, example
