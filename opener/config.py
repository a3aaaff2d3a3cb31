"""Settings that shape a partner's prepared data: fingerprints and preparation rules.

These come from the consortium config (every partner must use the same ones, or trunk inputs would not line up);
the orchestrator parses YAML into them and passes them down.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FingerprintConfig(_Strict):
    """ECFP settings. `folded`: bits folded to `size`; `counts`: hashed counts, column = hash mod `size`."""

    kind: Literal["folded", "counts"] = "folded"
    radius: int = Field(2, ge=1, le=4)
    size: int = Field(32768, ge=64, le=2**26)
    use_chirality: bool = False
    scramble: bool = True  # keyed permutation of columns with the consortium secret

    @model_validator(mode="after")
    def _power_of_two(self):
        if self.size & (self.size - 1):
            raise ValueError(f"fingerprint size must be a power of two, got {self.size}")
        return self


class PreparationConfig(_Strict):
    """Rules applied on each partner's node before training (MELLODDY-TUNER-like defaults, scaled down)."""

    standardize: bool = True
    n_folds: int = Field(5, ge=3, le=10)
    # quorum: a classification task needs this many actives and inactives in every fold it is evaluated on
    min_actives_per_fold: int = Field(1, ge=0)
    min_inactives_per_fold: int = Field(1, ge=0)
    min_actives_total: int = Field(10, ge=1)
    min_inactives_total: int = Field(10, ge=1)
    # a regression task needs this many uncensored values in total
    min_regression_values: int = Field(30, ge=2)
    min_regression_values_per_fold: int = Field(1, ge=0)
    auxiliary_weight: float = Field(0.1, ge=0.0, le=1.0)
    # MELLODDY-TUNER's credibility_range: per assay type, log-scale values outside [min, max] are dropped before
    # aggregation (e.g. {OTHER: [3, 10], AUX_HTS: [-10, 10]} as in its example_parameters.json); empty: none
    credibility_range: dict[str, tuple[float, float]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ranges(self):
        for kind, (lo, hi) in self.credibility_range.items():
            if not lo <= hi:
                raise ValueError(f"credibility_range {kind}: min {lo} is above max {hi}")
        return self
