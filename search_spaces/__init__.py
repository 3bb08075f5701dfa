"""WHAT a sweep varies: YAML sweep specs shipped as package data, compute profiles, and the loader
that turns a spec + a profile + data options into a plan of cells, validating everything first.

    from search_spaces import load, load_profile, parse_data_options, expand
    spec = load("mad_vs_dropout")                     # a shipped name, or a path to your own YAML
    plan = expand(spec, load_profile(spec.profile), parse_data_options(["rafdb=/data/RAF-DB/basic"]))
    for cell in plan.cells: ...                       # arm x data x seed, each with its TrialConfig

Imports transfer_core and yaml only (never ray, mlflow, click or sweeps).
"""

from search_spaces.data_option import DataChoice, DataOptionError, parse_data_options
from search_spaces.plan import Cell, Plan, expand
from search_spaces.profiles import Profile, list_profiles, load_profile
from search_spaces.spec import (Arm, SearchConfig, SearchParam, SpecError, SweepSpec, TableLayout, list_sweeps,
                                load, load_text)

__all__ = ["SpecError", "SweepSpec", "Arm", "TableLayout", "SearchParam", "SearchConfig", "load", "load_text",
           "list_sweeps", "Profile", "load_profile", "list_profiles", "DataChoice", "DataOptionError",
           "parse_data_options", "Cell", "Plan", "expand"]
