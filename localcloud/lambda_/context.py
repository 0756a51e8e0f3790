"""The `context` a Python handler is given, as the Lambda runtime makes it."""

from __future__ import annotations

import time
import uuid

ACCOUNT_ID = "123456789012"  # the account the local stack plays (in every ARN it makes)


class LambdaContext:
    """What the Lambda runtime hands a Python handler as `context`."""

    def __init__(self, function_name: str, region: str, memory_mb: int, timeout_s: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
