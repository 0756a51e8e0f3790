"""What routing between the regions rests on, for the local stack and the drill alike: where Route 53's
API lives, and the client locations that latency routing chooses between (their round trips to each
region)."""

from __future__ import annotations

ROUTE53_REGION = "us-east-1"  # Route 53 is a global service whose API lives in us-east-1

# Illustrative round-trip times (ms) from a client location to each region: what Route 53's
# latency records decide on. A region name as location means "a client next to that region".
LATENCY_MS: dict[str, dict[str, int]] = {
    "us-east-1": {"us-east-1": 5, "eu-west-2": 76},
    "eu-west-2": {"us-east-1": 76, "eu-west-2": 5},
    "new-york": {"us-east-1": 8, "eu-west-2": 70},
    "toronto": {"us-east-1": 18, "eu-west-2": 88},
    "san-francisco": {"us-east-1": 62, "eu-west-2": 138},
    "sao-paulo": {"us-east-1": 115, "eu-west-2": 190},
    "london": {"us-east-1": 74, "eu-west-2": 4},
    "paris": {"us-east-1": 80, "eu-west-2": 9},
    "frankfurt": {"us-east-1": 88, "eu-west-2": 15},
    "tokyo": {"us-east-1": 150, "eu-west-2": 215},
}


def nearest(location: str) -> str:
    """The region with the shortest round trip from `location`."""
    latency = LATENCY_MS[location]
    return min(latency, key=latency.__getitem__)
