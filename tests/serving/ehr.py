"""An EHR for the CDS Hooks tests: a key pair made here, its JWK Set, and the JWTs it
signs (``iss``, ``aud``, ``exp``, ``iat``, ``jti``, as CDS Hooks 2.0 asks)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://ehr.test.invalid"


@dataclass
class SigningEhr:
    """An EHR whose private key never leaves the test."""

    iss: str = ISSUER
    kid: str = "ehr-key-1"

    def __post_init__(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set the service is configured with."""
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "RS384", "use": "sig"}]}

    def write_jwks(self, folder: Path) -> Path:
        path = folder / "ehr_jwks.json"
        path.write_text(json.dumps(self.jwks()), encoding="utf-8")
        return path

    def token(self, aud: str, lifetime_s: float = 120, now: float | None = None, **claims) -> str:
        """A signed JWT for ``aud`` (``claims`` override or add claims)."""
        now = time.time() if now is None else now
        payload = {
            "iss": self.iss,
            "sub": "ehr-client",
            "aud": aud,
            "iat": int(now),
            "exp": int(now + lifetime_s),
            "jti": uuid.uuid4().hex,
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, self.private_key, algorithm="RS384", headers={"kid": self.kid})


def cds_settings(ehr: SigningEhr, jwks_file: Path, audience: str) -> dict[str, Any]:
    """The ``serving.cds_hooks`` mapping trusting ``ehr``."""
    return {
        "audience": audience,
        "issuers": [{"iss": ehr.iss, "name": "test_ehr", "jwks_file": str(jwks_file)}],
        "algorithms": ["RS384", "ES384"],
        "max_token_lifetime_s": 300,
        "leeway_s": 5,
    }
