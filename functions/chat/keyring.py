"""The session signing keys, read from this region's replica of the Secrets Manager secret and
cached per container. Re-read every few minutes so that a rotation lands everywhere; if a re-read
fails, the keys already read keep verifying (they were valid a moment ago) rather than failing
every sign-in while Secrets Manager is unreachable."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from chat.aws_errors import AWS_ERRORS, error_code
from chat.errors import StoreError
from chat.observability import logger
from chat.sessions import SigningKeys

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

REFRESH_SECONDS = 300.0


class SecretsManagerKeySource:
    def __init__(
        self,
        client: SecretsManagerClient,
        secret_id: str,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._secret_id = secret_id
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._keys: SigningKeys | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def signing_keys(self) -> SigningKeys:
        with self._lock:
            now = self._clock()
            if self._keys is not None and now - self._read_at < self._refresh_seconds:
                return self._keys
            try:
                secret = self._client.get_secret_value(SecretId=self._secret_id)["SecretString"]
                keys = SigningKeys.from_secret(secret)
            except (*AWS_ERRORS, KeyError, ValueError) as error:
                code = error_code(error)
                if self._keys is None:
                    raise StoreError("GetSecretValue", code) from error
                logger.warning("cannot re-read the session keys; keeping the cached ones", error=code)
                keys = self._keys
            self._keys, self._read_at = keys, now
            return keys
