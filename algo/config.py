"""Model, training and secure-aggregation settings shared by every partner of a consortium."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """SparseChem-class trunk: sparse input layer then dense hidden layers; heads are per partner."""

    hidden_sizes: tuple[int, ...] = (512,)
    activation: Literal["relu", "tanh"] = "relu"
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    input_transform: Literal["none", "binarize", "log1p"] = "binarize"


class TrainingConfig(_Strict):
    """Local training schedule; in a federated run `epochs_per_round` replaces `epochs`."""

    epochs: int = Field(20, ge=1)
    epochs_per_round: float = Field(1.0, gt=0)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    lr_steps: tuple[int, ...] = ()  # epochs at which the learning rate is multiplied by lr_gamma
    lr_gamma: float = Field(0.3, gt=0, le=1)
    early_stopping_patience: int = Field(5, ge=0)  # 0: no early stopping
    finetune_epochs: int = Field(0, ge=0)  # federated, then this many epochs alone on the partner's own folds (0: off)
    validation_fold: int = Field(0, ge=0)
    test_fold: int = Field(1, ge=0)
    seed: int = 0
    # the input layer's Adam state: "full" (Adam: two moments per weight, 3x the layer's memory with the weights)
    # or "rowwise" (one second moment per row, for huge input layers: 2x; not the same optimiser, algo/adam.py)
    input_optimizer_state: Literal["full", "rowwise"] = "full"


class SecAggConfig(_Strict):
    """Secure aggregation (Bonawitz et al. 2017): ring size, clipping bound, share threshold. Always on: no config a
    partner signs can switch it off (a plain mode exists for tests only, opted in on the partner's own node)."""

    enabled: bool = True
    ring_bits: Literal[32, 64] = 64
    clip: float = Field(1.0, gt=0)  # each coordinate of a weighted update is clipped to [-clip, clip]
    threshold: int | None = Field(None, ge=2)  # t of t-of-n; default: majority of the partners
    max_weight: float = Field(1.0, gt=0)  # a partner's weight lies in (0, max_weight]; bounds the fixed-point encoding
    # the stream cipher whose keystreams are the masks (secagg.masking says why AES-128-CTR); chacha20 for hardware
    # without AES instructions. Every partner and the aggregator must use the same: it is part of the agreement.
    mask_cipher: Literal["aes-128-ctr", "chacha20"] = "aes-128-ctr"

    @field_validator("enabled")
    @classmethod
    def _always_on(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError("secure aggregation cannot be switched off: every trunk update leaves a partner "
                             "masked (remove `enabled: false`)")
        return value


class DPConfig(_Strict):
    """Distributed differential privacy on the trunk update (opt-in, part of the agreement every partner signs).

    Each partner clips its round's trunk update to L2 norm `clip_norm` and adds Gaussian noise of variance
    sigma^2 / t (t = the agreed secure-aggregation threshold), so that any t or more survivors' sum carries noise of
    variance >= sigma^2 per coordinate, with sigma = noise_multiplier * sensitivity and sensitivity = 2 * clip_norm
    (any change to one partner's data moves its clipped update by at most 2 * clip_norm). With DP on every partner
    weighs 1 (the aggregate is the unweighted mean), so the sum of weights reveals only the survivor count.
    """

    clip_norm: float = Field(gt=0)  # L2 bound of one partner's trunk update in one round
    noise_multiplier: float = Field(gt=0)  # sigma of the noise in the sum, in units of the sensitivity 2*clip_norm
    delta: float = Field(1e-6, gt=0, lt=1)  # the consortium's delta; epsilon is reported at it

    @property
    def sensitivity(self) -> float:
        return 2.0 * self.clip_norm

    @property
    def sigma(self) -> float:
        """Standard deviation of the noise each coordinate of the sum of t survivors carries (at least)."""
        return self.noise_multiplier * self.sensitivity
