"""Privacy accounting: epsilon at the consortium's delta, per partner and per round, composed over a run.

What is modelled, and why it is sound. The protected unit is one partner's whole training set in a round (any
change to it, from one compound to all of them): the round's update is computed on the partner's whole training
fold for several epochs, with no random subsampling of partners or compounds that could be amplified from. Its
clipped update moves by at most 2 * clip_norm in L2 under any such change, so each round is a Gaussian mechanism
with sensitivity 2 * clip_norm on the released sum, noise std at least sigma * sqrt(s / t) per coordinate (s
survivors of whom the partner is one, t the threshold; noise_multiplier z = sigma / (2 * clip_norm)), and no
amplification. Rounds compose adaptively (the next round starts from the published trunk); rounds in which the
partner's update is not in the sum (it dropped out) cost it nothing. With c partners colluding with the aggregator,
their own noise can be subtracted: the honest noise is then (s - c) * sigma^2 / t, which `colluding` models.

The library is Google's `dp-accounting` (RDP accountant, Gaussian events, its own RDP-to-(epsilon, delta)
conversion); tests check it against the analytic Gaussian mechanism and the classic RDP conversion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from fedchem.algo.config import DPConfig


def round_noise_multiplier(dp: DPConfig, threshold: int, survivors: int, colluding: int = 0) -> float:
    """Effective z of one round for a partner in the sum: z * sqrt((survivors - colluding) / t); 0 if no honest
    noise is left."""
    honest = survivors - colluding
    return dp.noise_multiplier * math.sqrt(honest / threshold) if honest > 0 else 0.0


def epsilon(noise_multipliers: Sequence[float], delta: float) -> float:
    """epsilon at `delta` of the adaptive composition of Gaussian mechanisms (sensitivity 1, these noise stds);
    inf if any has no noise, 0 for none."""
    import dp_accounting
    from dp_accounting.rdp import rdp_privacy_accountant

    if not noise_multipliers:
        return 0.0
    if min(noise_multipliers) <= 0:
        return math.inf
    acc = rdp_privacy_accountant.RdpAccountant()
    for z in noise_multipliers:
        acc.compose(dp_accounting.GaussianDpEvent(float(z)))
    return float(acc.get_epsilon(delta))


@dataclass
class RoundBudget:
    round: int
    survivors: int
    in_sum: bool              # this partner's update was in the round's sum
    noise_multiplier: float   # effective z of the round (0 when not in the sum)
    epsilon_round: float      # the round alone
    epsilon_total: float      # composed over the run up to and including this round


@dataclass
class Budget:
    """A partner's privacy budget over a run."""

    partner: str
    delta: float
    epsilon: float
    colluding: int
    rounds: list[RoundBudget] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def partner_budget(dp: DPConfig, threshold: int, partner: str, rounds: Sequence[tuple[int, Sequence[str]]],
                   colluding: int = 0) -> Budget:
    """The budget of `partner` over completed rounds given as (round, survivors whose updates are in the sum)."""
    out, zs = [], []
    for rnd, survivors in rounds:
        in_sum = partner in survivors
        z = round_noise_multiplier(dp, threshold, len(survivors), colluding) if in_sum else 0.0
        if in_sum:
            zs.append(z)
        out.append(RoundBudget(int(rnd), len(survivors), in_sum, z, epsilon([z], dp.delta) if in_sum else 0.0,
                               epsilon(zs, dp.delta)))
    return Budget(partner, dp.delta, out[-1].epsilon_total if out else 0.0, colluding, out)


def planned_epsilon(dp: DPConfig, threshold: int, rounds: int, colluding: int = 0) -> float:
    """Epsilon after `rounds` rounds in the worst case the agreement allows (t survivors in every round)."""
    return epsilon([round_noise_multiplier(dp, threshold, threshold, colluding)] * rounds, dp.delta)
