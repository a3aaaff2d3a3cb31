"""The Substra functions of a federated run: their inputs, outputs and what each output holds.

One table used three ways: the task scripts read their identifiers from it, the orchestrator registers functions
from it, and the privacy checker decides from each output's *content* who may read it (DESIGN.md section 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Content(str, Enum):
    """What an output holds, which fixes who may read it."""

    PRIVATE = "private"            # heads, optimiser and selection state, metrics, predictions, secrets, logs: owner only
    MASKED_UPDATE = "masked"       # a masked (or, test-only, plain) trunk update: the aggregator only
    RELEASED_SHARES = "released"   # decrypted secret shares for unmasking: the aggregator only
    TRUNK = "trunk"                # the global trunk: every partner and the aggregator
    PUBLIC_KEYS = "public_keys"    # public keys: every organisation
    SEALED_SHARES = "sealed"       # secret shares encrypted to each recipient: every partner
    RECEIPT = "receipt"            # signed "this partner submitted round r" / "these survived" (no data): everyone
    SUMMARY = "summary"            # one headline figure a partner opted to publish (a public Substra performance)


@dataclass(frozen=True)
class Input:
    identifier: str
    kind: str  # "model", "data_manager", "data_sample"
    multiple: bool = False
    optional: bool = False


@dataclass(frozen=True)
class Output:
    identifier: str    # never a substring of another output's of the same function (Substra's local lookup matches
                       # identifiers by substring: "predictions" would also find "validation_predictions")
    content: Content
    kind: str = "model"  # Substra asset kind; "performance" outputs must be public


@dataclass(frozen=True)
class FunctionDef:
    name: str          # Substra function name and registered python function name
    module: str        # module that registers it (imported by the task script)
    role: str          # "partner" or "aggregator": where its tasks may run
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    description: str

    def output(self, identifier: str) -> Output:
        return next(o for o in self.outputs if o.identifier == identifier)


OPENER = Input("opener", "data_manager")
DATASAMPLES = Input("datasamples", "data_sample", multiple=True)

FUNCTIONS: dict[str, FunctionDef] = {f.name: f for f in [
    FunctionDef(
        "keygen", "fedchem.algo.functions.keys", "partner",
        inputs=(OPENER, DATASAMPLES, Input("trunk", "model")),
        outputs=(Output("public_keys", Content.PUBLIC_KEYS), Output("secret_keys", Content.PRIVATE)),
        description="Per-round X25519 key pairs and self-mask seeds for one partner; publishes the public keys.",
    ),
    FunctionDef(
        "deal_shares", "fedchem.algo.functions.keys", "partner",
        inputs=(OPENER, DATASAMPLES, Input("trunk", "model"), Input("secret_keys", "model"),
                Input("public_keys", "model", multiple=True)),
        outputs=(Output("sealed_shares", Content.SEALED_SHARES),),
        description="t-of-n shares of this partner's per-round secrets, each encrypted to its recipient.",
    ),
    FunctionDef(
        "init_trunk", "fedchem.algo.functions.aggregate", "aggregator",
        inputs=(OPENER, DATASAMPLES),
        outputs=(Output("trunk", Content.TRUNK),),
        description="Publishes the starting trunk of this plan (the seed's initial trunk, or a resumed one).",
    ),
    FunctionDef(
        "train", "fedchem.algo.functions.train", "partner",
        inputs=(OPENER, DATASAMPLES, Input("trunk", "model"), Input("head", "model", optional=True),
                Input("optimizer", "model", optional=True), Input("selection", "model", optional=True),
                Input("secret_keys", "model", optional=True),
                Input("public_keys", "model", multiple=True, optional=True)),
        outputs=(Output("head", Content.PRIVATE), Output("masked_update", Content.MASKED_UPDATE),
                 Output("receipt", Content.RECEIPT), Output("log", Content.PRIVATE),
                 Output("optimizer", Content.PRIVATE), Output("selection", Content.PRIVATE)),
        description="Local training of trunk + own head for one round; uploads only the masked trunk update; keeps "
                    "its optimiser state and its choice of best round (on its validation fold) private.",
    ),
    FunctionDef(
        "confirm_survivors", "fedchem.algo.functions.keys", "partner",
        inputs=(OPENER, DATASAMPLES, Input("public_keys", "model", multiple=True),
                Input("receipt", "model", multiple=True)),
        outputs=(Output("confirmation", Content.RECEIPT),),
        description="Consistency step: signs the one survivor set of a round, from the survivors' signed receipts.",
    ),
    FunctionDef(
        "release_shares", "fedchem.algo.functions.keys", "partner",
        inputs=(OPENER, DATASAMPLES, Input("secret_keys", "model"), Input("public_keys", "model", multiple=True),
                Input("sealed_shares", "model", multiple=True),
                Input("confirmation", "model", multiple=True, optional=True),
                Input("receipt", "model", multiple=True, optional=True)),
        outputs=(Output("released_shares", Content.RELEASED_SHARES),),
        description="Decrypts the shares the aggregator needs: self-mask seeds of survivors, pair keys of dropouts "
                    "(for confirmed survivors, or for the whole roster from all its receipts).",
    ),
    FunctionDef(
        "aggregate", "fedchem.algo.functions.aggregate", "aggregator",
        inputs=(Input("trunk", "model"), Input("public_keys", "model", multiple=True, optional=True),
                Input("masked_update", "model", multiple=True),
                Input("released_shares", "model", multiple=True, optional=True)),
        outputs=(Output("trunk", Content.TRUNK),),
        description="Sums the masked updates (masks cancel), decodes the weighted mean, applies it to the trunk.",
    ),
    FunctionDef(
        "evaluate", "fedchem.algo.functions.train", "partner",
        inputs=(OPENER, DATASAMPLES, Input("trunk", "model"), Input("head", "model", optional=True),
                Input("optimizer", "model", optional=True), Input("selection", "model", optional=True)),
        outputs=(Output("metrics", Content.PRIVATE), Output("predictions", Content.PRIVATE),
                 Output("chosen_validation", Content.PRIVATE), Output("last_test", Content.PRIVATE),
                 Output("finetuned", Content.PRIVATE)),
        description="Per-task metrics and predictions of the partner's chosen rounds (and of the last round), "
                    "private to the partner.",
    ),
    FunctionDef(
        "publish_summary", "fedchem.algo.functions.summary", "partner",
        inputs=(OPENER, DATASAMPLES, Input("metrics", "model")),
        outputs=(Output("summary", Content.SUMMARY, kind="performance"),),
        description="Only if the consortium opts in: one headline test figure of this partner, public, for the web UI.",
    ),
]}
