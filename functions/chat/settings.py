"""Settings, read from the environment once per container (template.yaml sets them)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from chat.rate_policy import RatePolicy


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
    fanout_page_posts: int = 1000  # posts per fan-out invocation at most (docs/architecture.md)
    fanout_page_queue_url: str | None = None  # only the fan-out functions queue pages
    session_secret_id: str | None = None  # the Secrets Manager secret holding the session keys
    session_ttl_seconds: int = 3600
    max_session_age_seconds: int = 86400  # from sign-in, across renewals
    guest_sign_in: bool = True
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_max_token_age_seconds: int = 600  # an ID token older than this (from its iat) is refused
    messages_per_second: float = 5.0
    message_burst: int = 10
    max_connections_per_user: int = 5
    guest_sign_ins_per_minute: float = 10.0  # per source address, in each region
    guest_sign_in_burst: int = 20
    guest_messages_per_second_per_room: float = 20.0  # all of a room's guests together, per region
    guest_room_burst: int = 40

    # The rate policies, worked out once per container (settings are read once).
    @functools.cached_property
    def message_rate(self) -> RatePolicy:
        """Each user's messages, WebSocket and HTTP together."""
        return RatePolicy.of(self.messages_per_second, per_ms=1000, burst=self.message_burst)

    @functools.cached_property
    def guest_sign_in_rate(self) -> RatePolicy:
        """New guest sessions per source address."""
        return RatePolicy.of(self.guest_sign_ins_per_minute, per_ms=60_000, burst=self.guest_sign_in_burst)

    @functools.cached_property
    def guest_room_rate(self) -> RatePolicy:
        """All of a room's guests' messages together."""
        return RatePolicy.of(
            self.guest_messages_per_second_per_room, per_ms=1000, burst=self.guest_room_burst
        )

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
            fanout_page_posts=int(env.get("FANOUT_PAGE_POSTS", cls.fanout_page_posts)),
            fanout_page_queue_url=env.get("FANOUT_PAGE_QUEUE_URL") or None,
            session_secret_id=env.get("SESSION_SECRET_ID") or None,
            session_ttl_seconds=int(env.get("SESSION_TTL_SECONDS", cls.session_ttl_seconds)),
            max_session_age_seconds=int(env.get("MAX_SESSION_AGE_SECONDS", cls.max_session_age_seconds)),
            guest_sign_in=env.get("GUEST_SIGN_IN", "true").lower() == "true",
            oidc_issuer=env.get("OIDC_ISSUER") or None,
            oidc_audience=env.get("OIDC_AUDIENCE") or None,
            oidc_max_token_age_seconds=int(
                env.get("OIDC_MAX_TOKEN_AGE_SECONDS", cls.oidc_max_token_age_seconds)
            ),
            messages_per_second=float(env.get("MESSAGES_PER_SECOND", cls.messages_per_second)),
            message_burst=int(env.get("MESSAGE_BURST", cls.message_burst)),
            max_connections_per_user=int(env.get("MAX_CONNECTIONS_PER_USER", cls.max_connections_per_user)),
            guest_sign_ins_per_minute=float(
                env.get("GUEST_SIGN_INS_PER_MINUTE", cls.guest_sign_ins_per_minute)
            ),
            guest_sign_in_burst=int(env.get("GUEST_SIGN_IN_BURST", cls.guest_sign_in_burst)),
            guest_messages_per_second_per_room=float(
                env.get("GUEST_MESSAGES_PER_SECOND_PER_ROOM", cls.guest_messages_per_second_per_room)
            ),
            guest_room_burst=int(env.get("GUEST_ROOM_BURST", cls.guest_room_burst)),
        )


@functools.cache
def get_settings() -> Settings:
    return Settings.from_env()
