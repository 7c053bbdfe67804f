"""CDS Hooks trust: the EHR's signed JWT bearer token on the ``/cds-services/`` routes.

As the CDS Hooks 2.0 specification asks, the EHR (CDS client) signs a short-lived JWT
per request with its private key. The service accepts it only when

* ``iss`` is one of the configured issuers (``serving.cds_hooks.issuers``: an allow-list,
  each with its JWKS, read from a file or given inline: no key is fetched at run time);
* the signature verifies with the issuer's key named by ``kid`` (asymmetric algorithms
  of ``algorithms`` only: never ``none`` or a shared secret);
* ``aud`` is this service's URL (``audience``), or the called service's URL under it;
* ``exp``, ``iat`` and ``jti`` are present, the token has not expired, and it lives at
  most ``max_token_lifetime_s``; a ``jti`` seen before (within its lifetime) is a replay.

PyJWT does the cryptography. The caller becomes ``Principal(user=<issuer name>,
role="ehr")`` for the audit trail.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from disease_pipeline.serving.auth import Denied, Principal

#: Prefix of the routes the EHR's JWT opens (discovery itself is public).
CDS_PREFIX = "/cds-services/"
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384"})


class CdsConfigError(ValueError):
    """The ``serving.cds_hooks`` settings are missing a field or have a bad value."""


@dataclass(frozen=True)
class Issuer:
    """One trusted EHR: its ``iss``, a name for the audit trail, and its keys."""

    iss: str
    name: str
    keys: jwt.PyJWKSet


@dataclass(frozen=True)
class CdsSettings:
    """Validated ``serving.cds_hooks`` settings."""

    audience: str
    issuers: dict[str, Issuer]
    algorithms: tuple[str, ...] = ("RS384", "ES384", "RS256", "ES256")
    max_token_lifetime_s: float = 300.0
    leeway_s: float = 30.0

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None, source: Any = None) -> CdsSettings:
        raw = raw or {}
        where = f"{source}: serving.cds_hooks"
        audience = str(raw.get("audience") or "").rstrip("/")
        if not audience.startswith(("http://", "https://")):
            raise CdsConfigError(f"{where}.audience must be this service's URL (http[s]://...)")
        algorithms = tuple(raw.get("algorithms") or cls.algorithms)
        weak = set(algorithms) - ASYMMETRIC
        if weak:
            raise CdsConfigError(f"{where}.algorithms: {sorted(weak)} are not asymmetric")
        issuers: dict[str, Issuer] = {}
        for index, entry in enumerate(raw.get("issuers") or []):
            here = f"{where}.issuers[{index}]"
            if not isinstance(entry, dict) or not entry.get("iss"):
                raise CdsConfigError(f"{here}.iss: required")
            if entry.get("jwks_file"):
                jwks = json.loads(Path(entry["jwks_file"]).read_text(encoding="utf-8"))
            elif isinstance(entry.get("jwks"), dict):
                jwks = entry["jwks"]
            else:
                raise CdsConfigError(f"{here}: give jwks_file or jwks (a JWK Set)")
            try:
                keys = jwt.PyJWKSet.from_dict(jwks)
            except jwt.PyJWTError as error:
                raise CdsConfigError(f"{here}: unusable JWK Set: {error}") from error
            iss = str(entry["iss"])
            issuers[iss] = Issuer(iss, str(entry.get("name") or iss), keys)
        return cls(
            audience=audience,
            issuers=issuers,
            algorithms=algorithms,
            max_token_lifetime_s=float(raw.get("max_token_lifetime_s", 300)),
            leeway_s=float(raw.get("leeway_s", 30)),
        )


class ReplayCache:
    """``jti`` values seen until their token expires (per worker process)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, key: str, expires: float, now: float) -> bool:
        with self._lock:
            for old in [k for k, t in self._seen.items() if t < now]:
                del self._seen[old]
            if key in self._seen:
                return False
            self._seen[key] = expires
            return True


class EhrTokenVerifier:
    """Checks the EHR JWT of a CDS Hooks request (see the module doc)."""

    def __init__(self, settings: CdsSettings) -> None:
        self.settings = settings
        self.replays = ReplayCache()

    def audiences(self, path: str) -> list[str]:
        """The accepted ``aud`` values of a request to ``path``."""
        base = self.settings.audience
        root = base.removesuffix("/cds-services")
        return list(dict.fromkeys([base, f"{root}{path}".rstrip("/"), f"{root}/cds-services"]))

    def verify(self, path: str, header: str | None, now: float | None = None):
        """``Principal`` of a valid token, else ``Denied`` (401) naming the problem."""
        if not header:
            return Denied(401, "missing bearer token: CDS Hooks calls need the EHR's JWT")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Denied(401, "malformed Authorization header: expected 'Bearer <JWT>'")
        token = token.strip()
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            head = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            return Denied(401, f"the bearer token is not a JWT: {error}")
        issuer = self.settings.issuers.get(str(unverified.get("iss")))
        if issuer is None:
            return Denied(401, f"JWT issuer {unverified.get('iss')!r} is not trusted")
        if head.get("alg") not in self.settings.algorithms:
            return Denied(401, f"JWT algorithm {head.get('alg')!r} is not accepted")
        try:
            key = issuer.keys[str(head.get("kid"))]
        except KeyError:
            return Denied(401, f"JWT kid {head.get('kid')!r} is not a key of {issuer.name}")
        now = time.time() if now is None else now
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=list(self.settings.algorithms),
                audience=self.audiences(path),
                issuer=issuer.iss,
                leeway=self.settings.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "jti"]},
            )
        except jwt.InvalidSignatureError:
            return Denied(401, "JWT signature does not verify with the issuer's key")
        except jwt.ExpiredSignatureError:
            return Denied(401, "JWT expired")
        except jwt.InvalidAudienceError:
            return Denied(401, f"JWT audience is not this service ({self.settings.audience})")
        except jwt.PyJWTError as error:
            return Denied(401, f"JWT refused: {error}")
        lifetime = float(claims["exp"]) - float(claims["iat"])
        if lifetime > self.settings.max_token_lifetime_s:
            return Denied(
                401,
                f"JWT lifetime {lifetime:.0f} s exceeds {self.settings.max_token_lifetime_s:.0f} s",
            )
        expires = float(claims["exp"]) + self.settings.leeway_s
        if not self.replays.first_use(f"{issuer.iss}|{claims['jti']}", expires, now):
            return Denied(401, "JWT already used (jti replay)")
        return Principal(user=issuer.name, role="ehr", token_hash=f"ehr:{issuer.iss}")
