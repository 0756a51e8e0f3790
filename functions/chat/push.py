"""The API Gateway management API adapter: posts frames to WebSocket connections.

A fan-out posts once per recipient, so the CPU of one post is the fan-out's cost. boto3 spends
about 1.8 ms on a `post_to_connection` (request serialisation, event hooks, response parsing) and
botocore's signer alone 0.5 ms (it derives the signing key anew for every request), where the post
needs one SigV4 signature and one HTTP request. So this adapter signs with the day's signing key
kept (tests/unit/test_push.py checks each signature against botocore's) and the function's own,
refreshing credentials, and sends through one urllib3 pool sized for the fan-out's threads.
bench/fanout.py measures it.

Outcomes: 200 delivered; 410 gone (the connection must be removed); 429 and 5xx retried with
jittered exponential backoff, as botocore's standard mode would; anything else failed and logged.
A pusher bound to an invocation (`until`) starts no attempt once its time to post is up, and
answers OUT_OF_TIME instead: the fan-out hands that connection back to the page queue.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import math
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import urllib3

from chat.observability import logger
from chat.ports import Delivery

if TYPE_CHECKING:
    from botocore.credentials import Credentials

RETRIABLE = {429, 500, 502, 503, 504}

CONNECT_SECONDS = 2.0
READ_SECONDS = 5.0
# The longest one attempt takes: urllib3's `total` caps connect plus read.
ATTEMPT_SECONDS = CONNECT_SECONDS + READ_SECONDS
# How long before the invocation's end the fan-out stops starting posts. When the time to post
# runs out, the attempts already started still run: each ends within ATTEMPT_SECONDS (no retry
# starts after it: `until`). After them the invocation settles (410s deleted, interleaved with
# the posts, so few are left) and sends the connections it did not post back to the page queue
# (one SendMessageBatch per 10 pages: tens of milliseconds in a healthy region), for which 1 s
# is kept. 8 s of the worker's 15 s timeout leaves it 7 s to start posts, seven times what a
# page of 1,000 posts takes (docs/performance.md), and the stream handler 52 s of its 60 s. A
# smaller margin bets that no post in flight is slow, and losing that bet is what this margin
# exists to prevent: an invocation past its timeout is retried whole, posting again to
# everyone it reached. If SQS itself is slower than 1 s the invocation can still time out.
POSTING_MARGIN_SECONDS = ATTEMPT_SECONDS + 1.0


def _unbounded() -> float:
    return math.inf


def _now() -> datetime:
    return datetime.now(UTC)


class SigV4Signer:
    """AWS Signature Version 4 for `POST` requests with a body and no query string, as botocore
    signs them for execute-api: host and x-amz-date (and the session token) signed, the path
    URI-encoded twice. The signing key depends only on the secret, the day, the region and the
    service, so it is derived once a day rather than for every post."""

    def __init__(
        self, credentials: Credentials, region: str, service: str, clock: Callable[[], datetime] = _now
    ) -> None:
        self._credentials = credentials
        self._region = region
        self._service = service
        self._clock = clock
        self._keys: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def _signing_key(self, secret: str, day: str) -> bytes:
        with self._lock:
            key = self._keys.get((secret, day))
            if key is None:
                key = f"AWS4{secret}".encode()
                for part in (day, self._region, self._service, "aws4_request"):
                    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
                self._keys = {(secret, day): key}  # keep only today's
            return key

    def headers(self, url: str, body: bytes) -> dict[str, str]:
        frozen = self._credentials.get_frozen_credentials()  # refreshes temporary credentials
        parts = urlsplit(url)
        stamp = self._clock().strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        headers = {"host": parts.netloc, "x-amz-date": stamp}
        if frozen.token:
            headers["x-amz-security-token"] = frozen.token
        names = sorted(headers)
        signed = ";".join(names)
        canonical = "\n".join(
            [
                "POST",
                quote(parts.path, safe="/~"),
                "",
                *(f"{n}:{headers[n]}" for n in names),
                "",
                signed,
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{day}/{self._region}/{self._service}/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = self._signing_key(frozen.secret_key or "", day)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        return headers


class ManagementApiPusher:
    def __init__(
        self,
        endpoint: str,
        *,
        region: str,
        credentials: Credentials,
        pool_size: int,
        attempts: int = 4,
        base_delay: float = 0.05,
    ) -> None:
        self._base = endpoint.rstrip("/")
        self._signer = SigV4Signer(credentials, region, "execute-api")
        self._pool = urllib3.PoolManager(
            maxsize=pool_size,
            retries=False,
            timeout=urllib3.Timeout(connect=CONNECT_SECONDS, read=READ_SECONDS, total=ATTEMPT_SECONDS),
        )
        self._attempts = attempts
        self._base_delay = base_delay
        self._time_left: Callable[[], float] = _unbounded

    def until(self, time_left: Callable[[], float]) -> ManagementApiPusher:
        """This pusher for one invocation: no attempt starts once `time_left()` (seconds) is at
        or under 0. It shares the connection pool and the signer with this one."""
        bounded = copy.copy(self)
        bounded._time_left = time_left
        return bounded

    def push(self, connection_id: str, data: bytes) -> Delivery:
        url = f"{self._base}/@connections/{quote(connection_id, safe='')}"
        problem = "no attempt"
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(random.uniform(0, self._base_delay * 2**attempt))  # noqa: S311 - jitter
            if self._time_left() <= 0:
                return Delivery.OUT_OF_TIME  # not a failure: the fan-out hands it back
            headers = self._signer.headers(url, data)  # per attempt: the time is part of the signature
            try:
                status = self._pool.request("POST", url, body=data, headers=headers).status
            except urllib3.exceptions.HTTPError as error:
                problem = type(error).__name__
                continue
            if status == 200:
                return Delivery.DELIVERED
            if status == 410:
                return Delivery.GONE
            problem = f"HTTP {status}"
            if status not in RETRIABLE:
                break
        logger.warning("post to connection failed", connection_id=connection_id, error=problem)
        return Delivery.FAILED
