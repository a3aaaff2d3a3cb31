"""Which consortium secret a prepared dataset was made with, told by keyed fingerprints (never by the secret).

`fedchem prepare` writes two fingerprints into the manifest, each an HMAC-SHA256 under a key derived from the
consortium secret, so equal fingerprints mean the same secret and nothing about the secret can be read from them:
  scramble: HMAC(scramble key, "fedchem-scramble-check/v1" NUL size) -- the column permutation (key and size)
            (None when the consortium does not scramble)
  folds:    HMAC(secret, "fedchem-fold-key-check/v1") -- the key of the scaffold-fold hash
`run`, `predict` and `report` compare a partner's manifest with the consortium (and with the partner's own name)
and refuse a mismatch: a partner prepared with another secret would train on columns and folds that mean
something else, and `predict` would print silently wrong probabilities.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from fedchem.opener import scramble
from fedchem.opener.config import FingerprintConfig
from fedchem.opener.errors import ConfigError

MANIFEST_KEY = "secret_fingerprints"


def secret_fingerprints(secret: bytes, fingerprint: FingerprintConfig) -> dict[str, str | None]:
    """The consortium's fingerprints for these settings (what a correctly prepared manifest holds)."""
    key = hmac.new(secret, scramble.DOMAIN, hashlib.sha256).digest()
    scr = (hmac.new(key, b"fedchem-scramble-check/v1\x00" + str(fingerprint.size).encode(), hashlib.sha256).hexdigest()
           if fingerprint.scramble else None)
    folds = hmac.new(secret, b"fedchem-fold-key-check/v1", hashlib.sha256).hexdigest()
    return {"scramble": scr, "folds": folds}


def check_manifest(manifest: dict, partner: str, expected: dict[str, str | None], where: Path | str,
                   against: str = "the consortium's secret") -> None:
    """Refuse a prepared manifest that names another partner, or whose fingerprints differ from `expected`."""
    where = str(where)
    named = manifest.get("partner")
    if named != partner:
        raise ConfigError(f"the prepared dataset was made for partner '{named}', not '{partner}'", where=where,
                          fix=f"point partner '{partner}' at its own prepared_dir, or re-run `fedchem prepare` with "
                              "its own partner config")
    got = manifest.get(MANIFEST_KEY)
    if not isinstance(got, dict):
        raise ConfigError(f"the prepared dataset of partner '{partner}' carries no secret fingerprints (made by an "
                          "older fedchem)", where=where,
                          fix="re-run `fedchem prepare` for it with the consortium config")
    for kind, what in (("scramble", "column scrambling"), ("folds", "fold assignment")):
        if got.get(kind) != expected.get(kind):
            raise ConfigError(f"partner '{partner}' was prepared with another consortium secret than "
                              f"{against} (its {what} differs)", where=where,
                              fix="use the consortium secret the consortium agreed on: check the consortium "
                                  "config's `secret` (env/file), then re-run `fedchem prepare` for that partner "
                                  "or use the right consortium config")


def check_recorded(recorded: dict, expected: dict[str, str | None], where: Path | str) -> None:
    """Refuse a consortium secret other than the one a run recorded (its ledger's fingerprints)."""
    if not recorded:
        raise ConfigError("the run records no consortium secret fingerprints (made by an older fedchem), so the "
                          "secret cannot be checked", where=str(where), fix="re-run it with this fedchem version")
    if any(recorded.get(k) != expected.get(k) for k in ("scramble", "folds")):
        raise ConfigError("this consortium secret is not the one the run was trained with: the model would see "
                          "other columns and print wrong predictions", where=str(where),
                          fix="use the consortium config (and its secret env/file) the run was started with")
