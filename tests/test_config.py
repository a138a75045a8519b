"""The sectioned configuration: flat names, both config.json layouts, generated flags."""

import dataclasses

import pytest

from neurosim.cli import build_parser, config_flags
from neurosim.config import FIELD_SECTIONS, SECTIONS, RunConfig, flag_of, section_fields


def test_flat_names_route_into_sections():
    cfg = RunConfig.for_rule("dfa", epochs=1, hidden=[32], neuron="lif", beta=0.9)
    assert (cfg.training.epochs, cfg.network.hidden, cfg.network.neuron, cfg.lif.beta) == (1, [32], "lif", 0.9)
    assert cfg.training.lr == 0.0002  # the rule's LIF default
    with pytest.raises(ValueError, match="unknown config keys: \\['lr_typo'\\]"):
        RunConfig(lr_typo=1.0)


def test_field_names_are_unique_across_sections():
    names = [f.name for _, f in section_fields()]
    assert len(names) == len(set(names)) == len(FIELD_SECTIONS)
    assert not set(names) & {"rule", "preset", *SECTIONS}


def test_config_json_layouts_round_trip():
    cfg = RunConfig(rule="pfa", lr=0.02, hidden=[16, 8], workers=0, input_baseline=0.2)
    nested = cfg.to_dict()
    assert nested["training"]["lr"] == 0.02 and nested["streaming"]["workers"] == 0
    assert RunConfig.from_dict(nested) == cfg
    assert RunConfig.from_dict(cfg.flat()) == cfg  # run folders written before the sections
    assert RunConfig.from_dict({**nested, "lr": 0.5}).training.lr == 0.5  # flat names win
    with pytest.raises(ValueError, match="unknown config keys"):
        RunConfig.from_dict({**nested, "training": {"learning_rate": 1.0}})


def test_sections_are_copied_not_shared():
    cfg = RunConfig(hidden=[8])
    other = dataclasses.replace(cfg, freeze_hidden=True)
    assert other.training.freeze_hidden and not cfg.training.freeze_hidden
    other.network.hidden.append(4)
    assert cfg.network.hidden == [8]


def test_rule_spec_gives_pepita_wm_its_sign_in_the_library():
    assert RunConfig(rule="pepita-wm").pepita.modulation_sign == -1.0
    assert RunConfig(rule="pepita").pepita.modulation_sign == 1.0
    assert RunConfig(rule="pepita-wm", modulation_sign=1.0).pepita.modulation_sign == 1.0


def test_every_field_has_a_flag_or_a_reason():
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    flags = {s for action in train._actions for s in action.option_strings}
    for _, f in section_fields():
        assert flag_of(f) in flags or f.metadata["no_flag"], f.name
    args = parser.parse_args(["train", "--arch", "2x16", "--f-scale", "0.1", "--no-bias", "--normalize"])
    assert config_flags(args) == {"arch": "fc", "hidden": [16, 16], "f_scale": 0.1, "bias": False,
                                  "normalize_activations": True}
