"""What routing between the regions rests on, for the local stack and the drill alike: where Route 53's
API lives, and the client locations that latency routing chooses between (their round trips to each
region)."""

from __future__ import annotations

from collections.abc import Iterable

ROUTE53_REGION = "us-east-1"  # Route 53 is a global service whose API lives in us-east-1

# Illustrative round-trip times (ms) from a client location to each region: what Route 53's
# latency records decide on. A region name as location means "a client next to that region".
# Five regions have a column (REGION_COLUMNS), so that ReplicaRegions can name any of them
# locally; a client is routed among the regions the stack runs only.
REGION_COLUMNS = ("us-east-1", "eu-west-2", "ap-northeast-1", "ap-southeast-2", "sa-east-1")
_ROUND_TRIPS = {  # location: round trip to each of REGION_COLUMNS
    "us-east-1": (5, 76, 150, 200, 115),
    "eu-west-2": (76, 5, 215, 265, 190),
    "ap-northeast-1": (150, 215, 5, 105, 255),
    "ap-southeast-2": (200, 265, 105, 5, 310),
    "sa-east-1": (115, 190, 255, 310, 5),
    "new-york": (8, 70, 160, 205, 120),
    "toronto": (18, 88, 155, 205, 130),
    "san-francisco": (62, 138, 105, 140, 170),
    "sao-paulo": (115, 190, 255, 310, 8),
    "london": (74, 4, 220, 265, 185),
    "paris": (80, 9, 225, 275, 190),
    "frankfurt": (88, 15, 230, 280, 200),
    "tokyo": (150, 215, 4, 110, 260),
    "sydney": (200, 265, 110, 4, 310),
}
LATENCY_MS: dict[str, dict[str, int]] = {
    location: dict(zip(REGION_COLUMNS, row, strict=True)) for location, row in _ROUND_TRIPS.items()
}
UNKNOWN_MS = 10_000  # a region this table has no column for


def nearest(location: str, regions: Iterable[str] | None = None) -> str:
    """Of `regions` (by default every region with a column here), the one with the shortest
    round trip from `location`; a region without a column is the farthest."""
    latency = LATENCY_MS[location]
    return min(latency if regions is None else regions, key=lambda region: latency.get(region, UNKNOWN_MS))


def places(regions: Iterable[str]) -> dict[str, str]:
    """Where a client of a stack running `regions` can be (every city, and the place next to each
    running region), each with the region it is nearest to."""
    running = list(regions)
    return {
        place: nearest(place, running)
        for place in LATENCY_MS
        if place in running or place not in REGION_COLUMNS
    }


def locations_near(regions: Iterable[str]) -> dict[str, str]:
    """For each region, the simulated city closest to it among those nearest to it (none for a
    region that no city is nearest to)."""
    running = list(regions)
    cities = [location for location in LATENCY_MS if location not in REGION_COLUMNS]
    near: dict[str, str] = {}
    for region in running:
        closest = [city for city in cities if nearest(city, running) == region]
        if closest:
            near[region] = min(closest, key=lambda city: LATENCY_MS[city][region])
    return near
