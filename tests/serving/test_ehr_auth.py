"""The EHR's JWT on the CDS Hooks routes: accepted only when signed by a configured
issuer's key, for this service, short-lived, unexpired and used once."""

from __future__ import annotations

import time

import jwt
import pytest

from disease_pipeline.serving.auth import Denied, Principal
from disease_pipeline.serving.ehr_auth import CdsConfigError, CdsSettings, EhrTokenVerifier
from tests.serving.ehr import SigningEhr, cds_settings

AUDIENCE = "https://dp.test.invalid/cds-services"
PATH = "/cds-services/disease-pipeline-differential"


@pytest.fixture(scope="module")
def ehr() -> SigningEhr:
    return SigningEhr()


@pytest.fixture
def verifier(ehr, tmp_path) -> EhrTokenVerifier:
    settings = CdsSettings.from_dict(cds_settings(ehr, ehr.write_jwks(tmp_path), AUDIENCE))
    return EhrTokenVerifier(settings)


def check(verifier: EhrTokenVerifier, token: str) -> Principal | Denied:
    return verifier.verify(PATH, f"Bearer {token}")


def test_a_valid_token_names_the_ehr(verifier, ehr):
    principal = check(verifier, ehr.token(AUDIENCE))
    assert isinstance(principal, Principal)
    assert (principal.user, principal.role) == ("test_ehr", "ehr")


def test_the_called_service_url_is_an_accepted_audience(verifier, ehr):
    assert isinstance(check(verifier, ehr.token(f"https://dp.test.invalid{PATH}")), Principal)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda ehr: SigningEhr(kid=ehr.kid).token(AUDIENCE), "signature does not verify"),
        (lambda ehr: ehr.token("https://elsewhere.test.invalid/cds-services"), "audience"),
        (lambda ehr: ehr.token(AUDIENCE, now=time.time() - 900), "expired"),
        (lambda ehr: ehr.token(AUDIENCE, lifetime_s=3600), "lifetime"),
        (lambda ehr: SigningEhr(iss="https://rogue.test.invalid").token(AUDIENCE), "not trusted"),
        (lambda ehr: ehr.token(AUDIENCE, jti=None), "jti"),
        (lambda ehr: ehr.token(AUDIENCE, exp=None), "exp"),
        (lambda ehr: SigningEhr(kid="other-kid").token(AUDIENCE), "kid"),
        (
            lambda ehr: jwt.encode(
                {
                    "iss": ehr.iss,
                    "aud": AUDIENCE,
                    "exp": time.time() + 60,
                    "iat": time.time(),
                    "jti": "x",
                },
                "a-shared-secret-of-at-least-32-bytes!!",
                algorithm="HS256",
                headers={"kid": ehr.kid},
            ),
            "algorithm",
        ),
        (lambda ehr: "not.a.jwt", "not a JWT"),
    ],
)
def test_bad_tokens_are_refused_with_the_reason(verifier, ehr, make, problem):
    denied = check(verifier, make(ehr))
    assert isinstance(denied, Denied) and denied.status == 401
    assert problem in denied.message


def test_a_token_is_used_once(verifier, ehr):
    token = ehr.token(AUDIENCE)
    assert isinstance(check(verifier, token), Principal)
    replay = check(verifier, token)
    assert isinstance(replay, Denied) and "replay" in replay.message


def test_missing_or_malformed_header(verifier):
    assert verifier.verify(PATH, None).status == 401
    assert verifier.verify(PATH, "Basic abc").status == 401


def test_settings_refuse_shared_secrets_and_missing_keys(ehr, tmp_path):
    good = cds_settings(ehr, ehr.write_jwks(tmp_path), AUDIENCE)
    with pytest.raises(CdsConfigError, match="asymmetric"):
        CdsSettings.from_dict({**good, "algorithms": ["HS256"]})
    with pytest.raises(CdsConfigError, match="jwks"):
        CdsSettings.from_dict({**good, "issuers": [{"iss": ehr.iss}]})
    with pytest.raises(CdsConfigError, match="audience"):
        CdsSettings.from_dict({**good, "audience": "dp.local"})
