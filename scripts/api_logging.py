"""API Gateway's CloudWatch Logs role: an account setting of each region, set by `make deploy`.

A WebSocket stage logs to CloudWatch only once the account's API Gateway settings in its region name
a role that API Gateway may assume; the stack cannot set it safely itself. The setting is one per
account and region, shared by every API there: a stack that sets it replaces whatever role the
account had, and one created in the same stack as its role races IAM's propagation ("The role ARN
does not have required permissions"), which fails the stack's first create. So, before the stacks:

- a region whose account setting already names a role that exists keeps it (other APIs log with it);
- otherwise the one role of this deployment, `resilient-chat-apigateway-logs` (created once, reused
  by every later deploy and both regions), is set, retried while IAM propagates the new role.

`make delete` leaves both (docs/deploy.md says why).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from scripts.aws import AwsError

ROLE_NAME = "resilient-chat-apigateway-logs"
# IAM is eventually consistent: a new role may be refused for a while. Minutes, not seconds, of patience.
PATIENCE_SECONDS = 180.0
RETRY_SECONDS = 10.0


class AccountLogging(Protocol):
    def api_log_role(self, region: str) -> str | None:
        """The role ARN the region's API Gateway account settings name (GetAccount), if any."""

    def role_arn(self, name: str) -> str | None:
        """The ARN of the IAM role of this name, or None when there is none."""

    def create_api_log_role(self, name: str) -> str:
        """A role API Gateway may assume, with AmazonAPIGatewayPushToCloudWatchLogs; its ARN."""

    def set_api_log_role(self, region: str, arn: str) -> bool:
        """UpdateAccount; False while IAM has not propagated the role to API Gateway yet."""


def ensure_api_log_role(
    cloud: AccountLogging,
    regions: tuple[str, ...],
    wait: Callable[[float], None] = time.sleep,
    out: Callable[[str], None] = print,
) -> None:
    ours: str | None = None
    for region in regions:
        current = cloud.api_log_role(region)
        if current and cloud.role_arn(current.rsplit("/", 1)[-1]):
            out(f"== API Gateway in {region} already logs to CloudWatch with {current}: kept")
            continue
        if ours is None:
            ours = cloud.role_arn(ROLE_NAME) or cloud.create_api_log_role(ROLE_NAME)
        out(f"== API Gateway in {region} (an account setting): CloudWatch Logs role {ours}")
        waited = 0.0
        while not cloud.set_api_log_role(region, ours):
            if waited >= PATIENCE_SECONDS:
                raise AwsError(
                    f"API Gateway in {region} still refuses role {ours} after {waited:.0f} s "
                    "(IAM has not propagated it): run make deploy again"
                )
            wait(RETRY_SECONDS)
            waited += RETRY_SECONDS
