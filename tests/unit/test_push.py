"""The fan-out's own SigV4 signer signs exactly as botocore does (which AWS accepts)."""

from __future__ import annotations

from datetime import UTC, datetime

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from chat.push import SigV4Signer

MOMENT = datetime(2026, 11, 25, 23, 59, 58, tzinfo=UTC)


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEBYaD+session/token=="])
@pytest.mark.parametrize(
    "url",
    [
        "https://abc123.execute-api.eu-west-2.amazonaws.com/prod/@connections/L0SM9cOFvHcCIhw%3D",
        "http://127.0.0.1:8703/prod/@connections/Zx9%2Bab%2Fcd",
    ],
)
def test_a_signature_matches_botocores_for_the_same_request_and_moment(
    monkeypatch: pytest.MonkeyPatch, url: str, token: str | None
) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    body = '{"type":"message","text":"héllo <b>"}'.encode()
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: MOMENT.replace(tzinfo=None))
    reference = AWSRequest(method="POST", url=url, data=body)
    botocore.auth.SigV4Auth(credentials, "execute-api", "eu-west-2").add_auth(reference)

    ours = SigV4Signer(credentials, "eu-west-2", "execute-api", clock=lambda: MOMENT).headers(url, body)

    assert ours["Authorization"] == reference.headers["Authorization"]
    assert ours["x-amz-date"] == reference.headers["X-Amz-Date"]
    assert ours.get("x-amz-security-token") == reference.headers.get("X-Amz-Security-Token")


def test_the_signing_key_is_derived_again_on_a_new_day() -> None:
    days = iter([MOMENT, MOMENT.replace(day=26)])
    signer = SigV4Signer(Credentials("AKID", "secret"), "us-east-1", "execute-api", clock=lambda: next(days))
    first = signer.headers("https://x.example/prod/@connections/a", b"{}")["Authorization"]
    second = signer.headers("https://x.example/prod/@connections/a", b"{}")["Authorization"]
    assert "20261125/us-east-1" in first
    assert "20261126/us-east-1" in second
