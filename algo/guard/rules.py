"""The rules a partner's Substra functions enforce on its own node, from its own agreement and its own state only.

Each refusal is a ProtocolError whose message names the rule ("refused by <partner> [rule: ...]") and is also
appended to the node's private refusal log. Nothing here believes the plan's wiring or the trunk's metadata beyond
what it checks: the settings used are the agreement's, the round range and roster are those this partner recorded
at its own key setup, and the public keys are those it pinned when it dealt its shares.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from fedchem.algo.guard.agreement import Agreement, load_agreement
from fedchem.algo.guard.signing import new_signing_key, sign, verify
from fedchem.algo.guard.state import NodeState
from fedchem.algo.secagg.bundles import PublicBundle
from fedchem.opener.errors import ProtocolError

# A test-only opt-in, written by a test into the partner's own node folder. The agreement cannot carry it (its
# SecAggConfig refuses `enabled: false`), no CLI command writes it, and without it every plain update is refused.
PLAIN_OPT_IN = "TEST-ONLY-accept-plain-updates"
RECEIPT_FORMAT = "fedchem-receipt/2"
CONFIRM_FORMAT = "fedchem-survivors/1"


def bundle_digest(bundle: PublicBundle) -> str:
    """SHA-256 of a public bundle's canonical JSON (what a partner pins at key setup)."""
    return hashlib.sha256(json.dumps(bundle.to_dict(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class PartnerGuard:
    """One partner-side task's view of its node: its agreement, its state, and the refusals it raises."""

    def __init__(self, me: str, node_dir: Path | None, function: str):
        self.me, self.function = me, function
        self.where = f"{function} task of partner {me}"
        self.node_dir = Path(node_dir) if node_dir is not None else None
        self.agreement: Agreement = load_agreement(self.node_dir, self.where)
        self.state = NodeState(self.node_dir)
        if me not in self.agreement.partners:
            raise self.refuse("own agreement", f"partner {me} is not in its own agreement's roster")

    # -- refusals ---------------------------------------------------------------------------------------------
    def refuse(self, rule: str, what: str, fix: str = "") -> ProtocolError:
        """Log the refusal privately and return the error to raise (the task fails, no output is written)."""
        err = ProtocolError(f"refused by {self.me} [rule: {rule}]: {what}", self.where,
                            fix or "this partner runs only plans of the agreement it signed, once per round")
        self.state.log_refusal(f"{self.function}: [rule: {rule}] {what}")
        return err

    @property
    def fingerprint(self) -> str:
        return self.agreement.fingerprint_hex

    @property
    def plain_opted_in(self) -> bool:
        return (self.node_dir / PLAIN_OPT_IN).is_file()

    # -- the plan's claims, checked against the agreement --------------------------------------------------------
    def check_meta(self, meta: Mapping) -> bool:
        """Check the trunk metadata's agreement fingerprint and security switch; returns True for a plain
        (test-only) run, which only a partner that opted in itself accepts."""
        if meta.get("agreement") != self.fingerprint:
            raise self.refuse("own agreement", f"the plan carries agreement fingerprint {str(meta.get('agreement'))[:16]}"
                                               f"..., this partner signed {self.fingerprint[:16]}...")
        secure = (meta.get("settings") or {}).get("secure", True)
        if secure is not True:
            if not self.plain_opted_in:
                raise self.refuse("secure aggregation is mandatory",
                                  "the plan's metadata switches secure aggregation off; this partner's agreement "
                                  "has it on and the partner did not opt in to plain updates")
            return True
        return False

    def check_plan_range(self, meta: Mapping) -> tuple[int, int, list[str]]:
        """(first round, last round, roster) of a plan at key setup, within the agreement."""
        first, last, roster = meta.get("first_round"), meta.get("last_round"), meta.get("roster")
        if not (isinstance(first, int) and isinstance(last, int) and 1 <= first <= last <= self.agreement.rounds):
            raise self.refuse("round range", f"rounds {first}..{last} are outside the agreed 1..{self.agreement.rounds}")
        if not isinstance(roster, list) or sorted(roster) != sorted(self.agreement.partners):
            raise self.refuse("roster", "the key-setup roster is not the agreed roster")
        return first, last, sorted(roster)

    def plan_record(self, plan_id: str) -> dict:
        rec = self.state.plan(plan_id)
        if rec is None:
            raise self.refuse("own key setup", f"this partner ran no key setup for plan {plan_id}")
        if rec.get("agreement") != self.fingerprint:
            raise self.refuse("own agreement", "the plan was set up under another agreement")
        return rec

    def check_round(self, rec: dict, round_: object) -> int:
        if not (isinstance(round_, int) and rec["first_round"] <= round_ <= rec["last_round"]):
            raise self.refuse("round range", f"round {round_} is not among the plan's rounds "
                                             f"{rec['first_round']}..{rec['last_round']} this partner set up")
        return round_

    def pinned_publics(self, rec: dict, publics: Mapping[str, PublicBundle]) -> None:
        """Every public bundle given is the one this partner pinned when it dealt its shares."""
        pinned = rec.get("publics")
        if pinned is None:
            raise self.refuse("own key setup", "this partner has not dealt its shares for this plan")
        for party, bundle in publics.items():
            if pinned.get(party) != bundle_digest(bundle):
                raise self.refuse("pinned public keys", f"the public keys given for {party} are not those of the "
                                                        "key setup")

    # -- key setup -----------------------------------------------------------------------------------------------
    def record_keygen(self, plan_id: str, first: int, last: int, roster: list[str]) -> bytes:
        """Once per plan: record the key setup, return the new signing key's public half (private one stays here)."""
        if self.state.plan(plan_id) is not None:
            raise self.refuse("one key setup per plan", f"plan {plan_id} already has this partner's keys")
        sk, pk = new_signing_key()
        self.state.save_secret(self.state.signing_key_path(plan_id), sk)
        self.state.save_plan(plan_id, {"agreement": self.fingerprint, "first_round": first, "last_round": last,
                                       "roster": roster, "sign_pk": pk.hex()})
        return pk

    def record_own_public(self, plan_id: str, bundle: PublicBundle) -> None:
        rec = self.plan_record(plan_id)
        rec["own_public"] = bundle_digest(bundle)
        self.state.save_plan(plan_id, rec)

    def record_dealing(self, plan_id: str, publics: Mapping[str, PublicBundle]) -> dict:
        rec = self.plan_record(plan_id)
        if "publics" in rec:
            raise self.refuse("one dealing per plan", "this partner already dealt its shares for this plan")
        if sorted(publics) != rec["roster"]:
            raise self.refuse("roster", "shares would be dealt to another roster than the agreed one")
        if bundle_digest(publics[self.me]) != rec.get("own_public"):
            raise self.refuse("pinned public keys", "the public keys given as this partner's are not its own")
        for party, b in publics.items():
            if b.sign_pk is None:
                raise self.refuse("pinned public keys", f"the public keys of {party} carry no signing key")
        rec["publics"] = {p: bundle_digest(b) for p, b in publics.items()}
        rec["sign_pks"] = {p: b.sign_pk.hex() for p, b in publics.items()}
        self.state.save_plan(plan_id, rec)
        return rec

    # -- a round ---------------------------------------------------------------------------------------------------
    def record_masking(self, plan_id: str, round_: int, roster: Sequence[str]) -> dict:
        """Once per (plan, round), recorded before the masked update is written."""
        rec = self.plan_record(plan_id)
        self.check_round(rec, round_)
        roster = sorted(roster)
        if self.me not in roster or not set(roster) <= set(rec["roster"]):
            raise self.refuse("roster", "the round's roster is not part of the plan's agreed roster with this partner")
        if len(roster) < self.agreement.threshold:
            raise self.refuse("threshold", f"a roster of {len(roster)} is below the agreed threshold "
                                           f"{self.agreement.threshold}")
        rnd = self.state.round(plan_id, round_)
        if rnd.get("masked"):
            raise self.refuse("one masking per round", f"this partner already masked an update for round {round_} "
                                                       f"of plan {plan_id}; a second would reuse its masks")
        rnd["masked"] = {"roster": roster}
        self.state.save_round(plan_id, round_, rnd)
        return rec

    def _signing_key(self, plan_id: str) -> bytes:
        return self.state.signing_key_path(plan_id).read_bytes()

    def receipt(self, plan_id: str, round_: int, roster: Sequence[str]) -> dict:
        body = {"format": RECEIPT_FORMAT, "agreement": self.fingerprint, "plan_id": plan_id, "round": round_,
                "partner": self.me, "roster": sorted(roster)}
        return {**body, "signature": sign(self._signing_key(plan_id), "receipt", body)}

    def _signed_by(self, rec: dict, doc: Mapping, purpose: str, signer_field: str, fmt: str) -> str:
        """The signer of a receipt or confirmation, after checking its format, agreement and signature."""
        if not isinstance(doc, Mapping) or doc.get("format") != fmt:
            raise self.refuse("consistency", f"an input is not a {fmt} document")
        body = {k: v for k, v in doc.items() if k != "signature"}
        signer = doc.get(signer_field)
        pk = (rec.get("sign_pks") or {}).get(signer)
        if pk is None or not verify(bytes.fromhex(pk), purpose, body, doc.get("signature")):
            raise self.refuse("consistency", f"a {purpose} signature does not verify against the pinned key of "
                                             f"{signer!r}")
        if doc.get("agreement") != self.fingerprint:
            raise self.refuse("own agreement", f"a {purpose} was made under another agreement")
        return signer

    def plan_and_round(self, receipts: Sequence[object]) -> tuple[object, object]:
        """The one (plan id, round) a set of receipts names; refused when they name several, or none (each is
        checked again, signature included, by confirm and unanimous_release_plan)."""
        plans = {r.get("plan_id") if isinstance(r, Mapping) else None for r in receipts}
        rounds = {r.get("round") if isinstance(r, Mapping) else None for r in receipts}
        if len(plans) != 1 or len(rounds) != 1:
            raise self.refuse("consistency", "the receipts are not of one plan and round")
        return plans.pop(), rounds.pop()

    def _survivors_of(self, plan_id: str, round_: int, receipts: Sequence[Mapping]) -> tuple[dict, list[str]]:
        """(this partner's round record, the survivor set) from receipts verified against the pinned keys: each of
        this plan, round and the roster this partner masked with; its own among them; at least t of them."""
        rec = self.plan_record(plan_id)
        self.check_round(rec, round_)
        rnd = self.state.round(plan_id, round_)
        if not rnd.get("masked"):
            raise self.refuse("consistency", "this partner did not mask an update in this round, so it confirms "
                                             "no survivor set")
        roster = rnd["masked"]["roster"]
        survivors = set()
        for r in receipts:
            who = self._signed_by(rec, r, "receipt", "partner", RECEIPT_FORMAT)
            if (r.get("plan_id"), r.get("round"), r.get("roster")) != (plan_id, round_, roster):
                raise self.refuse("consistency", f"the receipt of {who} is not of this plan, round and roster")
            survivors.add(who)
        survivors = sorted(survivors)
        if self.me not in survivors:
            raise self.refuse("consistency", "this partner's own receipt is missing from the survivor set")
        if len(survivors) < self.agreement.threshold:
            raise self.refuse("threshold", f"{len(survivors)} survivors, below the agreed threshold "
                                           f"{self.agreement.threshold}")
        return rnd, survivors

    def _commit_survivors(self, plan_id: str, round_: int, rnd: dict, survivors: list[str]) -> None:
        """Record `survivors` as this partner's one survivor set of the round (before anything is signed or
        released: fail closed); another set than one recorded earlier is refused."""
        if rnd.get("confirmed") is not None and rnd["confirmed"] != survivors:
            raise self.refuse("one survivor set per round", f"this partner already confirmed another survivor set "
                                                            f"for round {round_}")
        rnd["confirmed"] = survivors
        self.state.save_round(plan_id, round_, rnd)

    def confirm(self, plan_id: str, round_: int, receipts: Sequence[Mapping]) -> dict:
        """Bonawitz's consistency step: sign the one survivor set of this round (from verified receipts)."""
        rnd, survivors = self._survivors_of(plan_id, round_, receipts)
        self._commit_survivors(plan_id, round_, rnd, survivors)
        body = {"format": CONFIRM_FORMAT, "agreement": self.fingerprint, "plan_id": plan_id, "round": round_,
                "survivors": survivors, "signer": self.me}
        return {**body, "signature": sign(self._signing_key(plan_id), "survivors", body)}

    def unanimous_release_plan(self, plan_id: str, receipts: Sequence[Mapping]) -> tuple[int, list[str], list[str]]:
        """(round, survivors, []) for a release without confirmations: only when the receipts hold a verified
        receipt from every partner this partner masked with, that whole roster then recorded as its one survivor
        set of the round (as confirm records it). Such a release opens self-mask shares only.

        Why this is as safe as t confirmations: what the aggregator must never get is t shares of a partner's
        self-mask seed and t of its mask key. Key shares are opened only for a set without that partner, and only
        by partners that confirmed that set, which t partners must have signed; a partner that released here has
        recorded the whole roster as its set and signs no other. So the partners opening either kind of share for
        one partner are disjoint, and t of each cannot exist when 2t > n + c (c colluding partners), the same
        counting as with the confirmation wave."""
        plan, round_ = self.plan_and_round(receipts)
        if plan != plan_id:
            raise self.refuse("consistency", "the receipts are of another plan than this partner's keys")
        rnd, survivors = self._survivors_of(plan_id, round_, receipts)
        missing = sorted(set(rnd["masked"]["roster"]) - set(survivors))
        if missing:
            raise self.refuse("consistency", f"a release without survivor-set confirmations needs the signed receipt "
                                             f"of every partner this one masked with; missing: {', '.join(missing)}")
        self._commit_survivors(plan_id, round_, rnd, survivors)
        return round_, survivors, []

    def release_plan(self, plan_id: str, confirmations: Sequence[Mapping]) -> tuple[int, list[str], list[str]]:
        """(round, survivors, dropped) this partner may release for: a set at least t partners signed, that this
        partner confirmed itself, and that contradicts none of its earlier releases of that round."""
        rec = self.plan_record(plan_id)
        if not confirmations:
            raise self.refuse("consistency", "no survivor-set confirmation was given")
        rounds = {c.get("round") if isinstance(c, Mapping) else None for c in confirmations}
        sets = {tuple(c.get("survivors") or ()) if isinstance(c, Mapping) else () for c in confirmations}
        if len(rounds) != 1 or len(sets) != 1 or any(c.get("plan_id") != plan_id for c in confirmations):
            raise self.refuse("consistency", "the confirmations are not of one plan, round and survivor set")
        round_ = self.check_round(rec, rounds.pop())
        survivors = list(sets.pop())
        signers = {self._signed_by(rec, c, "survivors", "signer", CONFIRM_FORMAT) for c in confirmations}
        if not signers <= set(survivors):
            raise self.refuse("consistency", "a confirmation is signed by a partner outside the survivor set")
        t = self.agreement.threshold
        if len(signers) < t:
            raise self.refuse("consistency", f"the survivor set is confirmed by {len(signers)} partners, fewer than "
                                             f"the agreed threshold {t}")
        if len(survivors) < t:
            raise self.refuse("threshold", f"{len(survivors)} survivors, below the agreed threshold {t}")
        rnd = self.state.round(plan_id, round_)
        if rnd.get("confirmed") != survivors:
            raise self.refuse("consistency", "this is not the survivor set this partner confirmed for the round")
        dropped = [p for p in rnd["masked"]["roster"] if p not in survivors]
        return round_, survivors, dropped

    def record_release(self, plan_id: str, round_: int, survivors: Sequence[str], dropped: Sequence[str]) -> None:
        """Never both shares of one party in one (plan, round), across requests and tasks; recorded before the
        released shares are written."""
        rnd = self.state.round(plan_id, round_)
        released = rnd.get("released") or {"b": [], "s": []}
        clash = (set(survivors) & set(released["s"])) | (set(dropped) & set(released["b"]))
        if clash:
            raise self.refuse("never both shares of one partner",
                              f"with this partner's earlier release for round {round_}, the request would reveal "
                              f"both the self-mask seed and the mask key of {sorted(clash)}")
        rnd["released"] = {"b": sorted(set(released["b"]) | set(survivors)),
                           "s": sorted(set(released["s"]) | set(dropped))}
        self.state.save_round(plan_id, round_, rnd)
