"""Settings that libraries read from the environment, set for one call and put back."""

from __future__ import annotations

import os

import pytest

from sweeps.envvars import temporarily_set


def test_a_variable_is_set_inside_and_unset_again_after(monkeypatch):
    monkeypatch.delenv("SWEEPS_TEST_SETTING", raising=False)
    with temporarily_set("SWEEPS_TEST_SETTING", "0"):
        assert os.environ["SWEEPS_TEST_SETTING"] == "0"
    assert "SWEEPS_TEST_SETTING" not in os.environ


def test_the_users_value_is_back_after_the_call_even_when_it_raises(monkeypatch):
    monkeypatch.setenv("SWEEPS_TEST_SETTING", "7")
    with pytest.raises(RuntimeError), temporarily_set("SWEEPS_TEST_SETTING", "0"):
        raise RuntimeError
    assert os.environ["SWEEPS_TEST_SETTING"] == "7"


def test_only_that_variable_is_touched(monkeypatch):
    # the whole environment rewritten on exit (mock.patch.dict) would lose what was set meanwhile
    monkeypatch.delenv("SWEEPS_TEST_OTHER", raising=False)
    with temporarily_set("SWEEPS_TEST_SETTING", "1"):
        os.environ["SWEEPS_TEST_OTHER"] = "set inside"
    assert os.environ.pop("SWEEPS_TEST_OTHER") == "set inside"
