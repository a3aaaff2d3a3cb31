"""Each partner's differential-privacy budget of a run (fedchem.algo.dp.accounting).

`fedchem status` (the operator's view) reads the DP settings from the run's public settings (`settings.json`).
A partner's report reads them from the partner's own round logs instead: what its own train task applied, from
its own agreement, whatever the operator's files say. The ledger says which partners' updates were in each
completed round's sum (a partner's own logs say in which rounds it trained).
"""

from __future__ import annotations

from fedchem.algo.config import DPConfig
from fedchem.algo.dp import accounting
from fedchem.algo.secagg.keysetup import threshold_for


def dp_of(settings: dict) -> DPConfig | None:
    dp = (settings or {}).get("differential_privacy")
    return DPConfig(**dp) if dp else None


def run_budgets(settings: dict, partners: list[str], rounds: list[tuple[int, list[str]]],
                colluding: int = 0) -> dict[str, accounting.Budget] | None:
    """partner -> its budget over the completed rounds (round, survivors); None when the run has no DP."""
    dp = dp_of(settings)
    if dp is None:
        return None
    t = threshold_for((settings.get("secure_aggregation") or {}).get("threshold"), len(partners))
    return {p: accounting.partner_budget(dp, t, p, rounds, colluding) for p in partners}


def ledger_rounds(ledger) -> list[tuple[int, list[str]]]:
    return [(r.round, list(r.survivors)) for r in ledger.rounds]


def summary_line(settings: dict, ledger) -> str | None:
    """One line for `fedchem status`: epsilon at delta per partner, or None without DP."""
    budgets = run_budgets(settings, list(ledger.partners), ledger_rounds(ledger))
    if budgets is None:
        return None
    dp = dp_of(settings)
    t = threshold_for((settings.get("secure_aggregation") or {}).get("threshold"), len(ledger.partners))
    planned = accounting.planned_epsilon(dp, t, int(ledger.rounds_planned))
    eps = ", ".join(f"{p} {b.epsilon:.3g}" for p, b in budgets.items())
    return (f"differential privacy: epsilon at delta {dp.delta:g} so far: {eps} (all {ledger.rounds_planned} "
            f"rounds, worst case: {planned:.3g}); clip_norm {dp.clip_norm:g}, noise_multiplier "
            f"{dp.noise_multiplier:g}")


def dp_from_logs(round_logs: list[dict]) -> tuple[DPConfig, int] | None:
    """(DP settings, threshold) a partner's own train tasks applied, from its latest round log with DP; None if none."""
    last = next((log["dp"] for log in reversed(round_logs) if isinstance(log.get("dp"), dict)), None)
    if last is None:
        return None
    dp = DPConfig(clip_norm=last["clip_norm"], noise_multiplier=last["noise_multiplier"], delta=last["delta"])
    return dp, int(last["threshold"])


def partner_budget_from_logs(partner: str, round_logs: list[dict], ledger,
                             colluding: int = 0) -> accounting.Budget | None:
    """This partner's budget from what its own train tasks logged (clip, noise share, threshold, delta); None when
    its logs show no DP. A round counts when the partner trained in it and the ledger lists it as a survivor."""
    found = dp_from_logs(round_logs)
    if found is None:
        return None
    dp, t = found
    trained = {int(log["round"]) for log in round_logs if isinstance(log.get("dp"), dict) and "round" in log}
    rounds = [(r, s if r in trained else [p for p in s if p != partner]) for r, s in ledger_rounds(ledger)]
    return accounting.partner_budget(dp, t, partner, rounds, colluding)
