"""The consent policy file: the shipped default, the installation's override, and strict checking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from touchstream.projections.consent_policy_file import (CHANNELS, PURPOSES, ConsentPolicyError, load_opt_in,
                                                         parse_opt_in)
from touchstream.projections.customer_360 import Config

SCHEMAS = Path(__file__).parents[2] / "schemas"


def test_the_shipped_default_is_the_folds_default():
    assert load_opt_in() == load_opt_in(Path("/nonexistent")) == Config().opt_in == ()


def test_an_installation_file_overrides_the_default(tmp_path):
    (tmp_path / "consent.toml").write_text('format = 1\n[opt_in]\nmarketing = ["sms", "email"]\nresearch = true\n'
                                           'service = false\n')
    assert load_opt_in(tmp_path) == ("all:research", "email:marketing", "sms:marketing")


@pytest.mark.parametrize("doc, where", [
    ({"format": 2}, "format"),
    ({"format": 1, "opt_in": {"marketting": True}}, "opt_in.marketting"),
    ({"format": 1, "opt_in": {"marketing": ["email", "fax"]}}, "opt_in.marketing[1]"),
    ({"format": 1, "opt_in": {"marketing": "email"}}, "opt_in.marketing"),
    ({"format": 1, "opt_out": {}}, "unknown key.s. opt_out"),
])
def test_a_mistake_names_its_place(doc, where):
    with pytest.raises(ConsentPolicyError, match="^" + where.replace("[", r"\[").replace("]", r"\]")):
        parse_opt_in(doc)


def test_a_broken_file_names_the_file(tmp_path):
    (tmp_path / "consent.toml").write_text("format = 1\n[opt_in\n")
    with pytest.raises(ConsentPolicyError, match="consent.toml: not valid TOML"):
        load_opt_in(tmp_path)


def test_purposes_and_channels_are_the_schemas_symbols():
    consent = json.loads((SCHEMAS / "feedback" / "consent_given.v1.avsc").read_text())
    purpose = next(f for f in consent["fields"] if f["name"] == "purpose")
    channel = json.loads((SCHEMAS / "common" / "touchstream.common.Channel.avsc").read_text())
    assert PURPOSES == tuple(purpose["type"]["symbols"]) and CHANNELS == tuple(channel["symbols"])
