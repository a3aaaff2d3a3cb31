"""The DP setting is part of the consortium config and of the agreement every partner signs; a ring bound too small
for the noise is refused when the config loads, saying which value to set."""

from __future__ import annotations

import pytest
import yaml

from fedchem.opener.errors import ConfigError
from fedchem.orchestrator.agreement import agreement_of
from fedchem.orchestrator.config import load_consortium


def _write(tmp_path, federation: dict):
    data = {"name": "c", "secret": {"env": "FEDCHEM_TEST_SECRET"}, "federation": federation,
            "partners": [{"name": n, "config": f"{n}.yaml"} for n in ("a", "b", "c")]}
    path = tmp_path / "consortium.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_dp_is_in_the_agreement_and_changes_its_fingerprint(tmp_path):
    dp = {"clip_norm": 1.0, "noise_multiplier": 0.5, "delta": 1e-6}
    with_dp = load_consortium(_write(tmp_path, {"differential_privacy": dp,
                                                "secure_aggregation": {"clip": 10.0}}))
    agreement = agreement_of(with_dp)
    assert agreement.differential_privacy.noise_multiplier == 0.5
    other = load_consortium(_write(tmp_path, {"differential_privacy": {**dp, "noise_multiplier": 0.4},
                                              "secure_aggregation": {"clip": 10.0}}))
    without = load_consortium(_write(tmp_path, {"secure_aggregation": {"clip": 10.0}}))
    fps = {agreement_of(c).fingerprint_hex for c in (with_dp, other, without)}
    assert len(fps) == 3 and agreement_of(without).differential_privacy is None


def test_a_ring_bound_too_small_for_the_noise_is_refused(tmp_path):
    # threshold 2 of 3: share std 0.5 * 2 / sqrt(2) = 0.707; needs clip >= 1 + 12 * 0.707 = 9.485
    path = _write(tmp_path, {"differential_privacy": {"clip_norm": 1.0, "noise_multiplier": 0.5},
                             "secure_aggregation": {"clip": 9.48}})
    with pytest.raises(ConfigError) as err:
        load_consortium(path)
    assert "federation" in err.value.where and "at least 9.486" in err.value.what
    load_consortium(_write(tmp_path, {"differential_privacy": {"clip_norm": 1.0, "noise_multiplier": 0.5},
                                      "secure_aggregation": {"clip": 9.486}}))


@pytest.mark.parametrize("bad", [{"clip_norm": 0, "noise_multiplier": 1}, {"clip_norm": 1, "noise_multiplier": -1},
                                 {"clip_norm": 1, "noise_multiplier": 1, "delta": 1.5}, {"noise_multiplier": 1}])
def test_bad_dp_settings_name_the_key(tmp_path, bad):
    with pytest.raises(ConfigError) as err:
        load_consortium(_write(tmp_path, {"differential_privacy": bad, "secure_aggregation": {"clip": 100.0}}))
    assert "differential_privacy" in err.value.where
