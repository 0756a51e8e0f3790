"""Settings, read from the environment once per container (template.yaml sets them)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass


class MissingSetting(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    region: str
    messages_table: str
    connections_table: str
    management_endpoint: str | None = None  # only the fan-out posts to @connections
    message_ttl_days: int = 30
    connection_ttl_seconds: int = 7500  # just over API Gateway's 2-hour connection limit
    max_clock_skew_seconds: int = 300
    fanout_concurrency: int = 64

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env

        def required(name: str) -> str:
            value = env.get(name)
            if not value:
                raise MissingSetting(f"environment variable {name} is not set")
            return value

        return cls(
            region=env.get("AWS_REGION") or required("AWS_DEFAULT_REGION"),
            messages_table=required("MESSAGES_TABLE"),
            connections_table=required("CONNECTIONS_TABLE"),
            management_endpoint=env.get("WEBSOCKET_MANAGEMENT_ENDPOINT") or None,
            message_ttl_days=int(env.get("MESSAGE_TTL_DAYS", cls.message_ttl_days)),
            connection_ttl_seconds=int(env.get("CONNECTION_TTL_SECONDS", cls.connection_ttl_seconds)),
            max_clock_skew_seconds=int(env.get("MAX_CLOCK_SKEW_SECONDS", cls.max_clock_skew_seconds)),
            fanout_concurrency=int(env.get("FANOUT_CONCURRENCY", cls.fanout_concurrency)),
        )


@functools.cache
def get_settings() -> Settings:
    return Settings.from_env()
