"""The drill's presence check: after the restore, every region must list exactly the drill's
clients that hold a socket to the room, each once, and count them. Clients connect to two fake
regions that serve the room's presence from the sockets they hold; a region is then made to list a
ghost, leave a member out, list one twice, miscount, or not answer, and the check must say so."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from drill import presence, report
from drill.__main__ import Drill, parse_args
from drill.clients import SyntheticClient
from tests.drill.fake_regions import FakeRegions, FakeTarget, PresenceFaults, fake_regions

HOMES = ("us-east-1", "us-east-1", "eu-west-2")  # where each client connects
USERS = ["g_client-1", "g_client-2", "g_client-3"]  # the fake's user id is g_ and the name


@pytest.fixture
def regions() -> Iterator[FakeRegions]:
    with fake_regions() as fake:
        yield fake


def check(
    regions: FakeRegions,
    deadline: float,
    meanwhile: Callable[[], None] | None = None,
    after: float = 0.0,
) -> tuple[dict[str, Any], float]:
    """Three clients connected (two in us-east-1, one in eu-west-2), then the presence check with
    `deadline` seconds to go, `meanwhile` called `after` seconds into it. Its answer and how long
    it took."""

    async def scenario() -> tuple[dict[str, Any], float]:
        stop = asyncio.Event()
        clients = [
            SyntheticClient(
                name=f"client-{i + 1}",
                location=home,
                room="lobby",
                ws_url=regions.urls[home][0],
                http_url=regions.urls[home][1],
                rate=0.0,
                direct=dict(regions.urls),
            )
            for i, home in enumerate(HOMES)
        ]
        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.create_task(c.run(stop, session)) for c in clients]
            async with asyncio.timeout(10):
                while not all(c.in_room for c in clients) or len(regions.members) < len(clients):
                    await asyncio.sleep(0.05)
            assert sorted(c.user_id for c in clients) == USERS
            if meanwhile is not None:
                asyncio.get_running_loop().call_later(after, meanwhile)
            start = time.time()
            answer = await presence.compare(
                session,
                dict(regions.urls),
                "lobby",
                clients[0].token,
                clients,
                restored_at=start,
                deadline=start + deadline,
                interval=0.1,
            )
            took = time.time() - start
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return answer, took

    return asyncio.run(scenario())


def exact(listed: int = 3) -> dict[str, Any]:
    return {"count": 3, "listed": listed, "missing": [], "ghosts": [], "doubled": [], "exact": True}


@pytest.mark.timeout(30)
def test_given_every_region_lists_the_connected_clients_then_presence_is_equal_at_once(
    regions: FakeRegions,
) -> None:
    answer, took = check(regions, deadline=10.0)

    assert answer["equal"] is True
    assert answer["connected"] == 3
    assert answer["unread"] == []
    assert answer["regions"] == {"us-east-1": exact(), "eu-west-2": exact()}
    assert answer["seconds"] is not None
    assert answer["seconds"] < 2.0
    assert took < 2.0  # the deadline bounds the wait; it is not waited out


@pytest.mark.timeout(30)
def test_given_a_region_lists_a_ghost_then_presence_differs_and_names_it(regions: FakeRegions) -> None:
    regions.presence_faults["eu-west-2"] = PresenceFaults(ghosts={"g_gone"})

    answer, took = check(regions, deadline=1.0)

    assert answer["equal"] is False
    assert answer["seconds"] is None
    assert answer["regions"]["us-east-1"] == exact()
    assert answer["regions"]["eu-west-2"] == {
        **exact(listed=4),
        "ghosts": ["g_gone"],
        "exact": False,
    }
    assert 1.0 <= took < 3.0  # given up at the deadline, after reading again until then


@pytest.mark.timeout(30)
def test_given_a_region_leaves_a_connected_client_out_then_it_is_missing(regions: FakeRegions) -> None:
    regions.presence_faults["us-east-1"] = PresenceFaults(hidden={"g_client-3"})

    answer, _ = check(regions, deadline=1.0)

    assert answer["equal"] is False
    assert answer["regions"]["us-east-1"] == {
        **exact(listed=2),
        "missing": ["g_client-3"],
        "exact": False,
    }
    assert answer["regions"]["eu-west-2"] == exact()


@pytest.mark.timeout(30)
def test_given_a_region_lists_a_client_twice_then_it_is_doubled(regions: FakeRegions) -> None:
    regions.presence_faults["eu-west-2"] = PresenceFaults(doubled={"g_client-1"})

    answer, _ = check(regions, deadline=1.0)

    assert answer["equal"] is False
    assert answer["regions"]["eu-west-2"] == {
        **exact(listed=4),
        "doubled": ["g_client-1"],
        "exact": False,
    }


@pytest.mark.timeout(30)
def test_given_a_region_lists_the_right_members_with_a_wrong_count_then_presence_differs(
    regions: FakeRegions,
) -> None:
    regions.presence_faults["us-east-1"] = PresenceFaults(miscount=1)

    answer, _ = check(regions, deadline=1.0)

    assert answer["equal"] is False
    assert answer["regions"]["us-east-1"] == {**exact(), "count": 4, "exact": False}


@pytest.mark.timeout(30)
def test_given_a_region_does_not_answer_then_it_is_unread_and_presence_is_not_equal(
    regions: FakeRegions,
) -> None:
    regions.presence_faults["eu-west-2"] = PresenceFaults(fails=True)

    answer, _ = check(regions, deadline=1.0)

    assert answer["equal"] is False
    assert answer["unread"] == ["eu-west-2"]
    assert answer["regions"] == {"us-east-1": exact()}


@pytest.mark.timeout(30)
def test_given_a_ghost_that_goes_after_a_second_then_presence_is_equal_when_it_has_gone(
    regions: FakeRegions,
) -> None:
    """As a failed region's users go within the contract's minute: the check reads again until
    they have, and says when."""
    regions.presence_faults["us-east-1"] = PresenceFaults(ghosts={"g_gone"})

    answer, took = check(
        regions, deadline=10.0, meanwhile=regions.presence_faults["us-east-1"].ghosts.clear, after=1.0
    )

    assert answer["equal"] is True
    assert answer["regions"] == {"us-east-1": exact(), "eu-west-2": exact()}
    assert answer["first_read_seconds"] < 0.5
    assert 1.0 <= answer["seconds"] < 3.0
    assert took < 3.0


@pytest.mark.timeout(60)
def test_a_drill_whose_region_keeps_a_ghost_after_the_restore_fails_and_says_so(
    regions: FakeRegions, tmp_path: Path
) -> None:
    regions.presence_faults["eu-west-2"] = PresenceFaults(ghosts={"g_gone"})
    args = parse_args(
        [
            *("--region", "us-east-1", "--mode", "invert", "--hold", "0.5", "--warmup", "0.5"),
            *("--cooldown", "0.2", "--clients", "2", "--rate", "2", "--listeners", "1"),
            *("--probe-interval", "0.1", "--settle", "3", "--output", str(tmp_path / "report.json")),
        ]
    )
    result = asyncio.run(Drill(args, FakeTarget(regions, name="steady"), presence_deadline=1.0).run())

    assert result["lost"] == 0  # only presence is wrong
    assert result["histories"]["equal"] is True
    assert result["verdict"] == "FAIL"
    assert result["failures"] == [
        "the regions' presence is not the 3 connected clients after the restore: eu-west-2 ghosts 1"
    ]
    checked = result["presence"]
    assert (checked["equal"], checked["connected"], checked["seconds"]) == (False, 3, None)
    assert checked["regions"]["eu-west-2"]["ghosts"] == ["g_gone"]
    assert checked["regions"]["us-east-1"]["exact"] is True
    assert {c["name"]: c["user"] for c in result["clients"]} == {
        "sender-1": "g_sender-1",
        "sender-2": "g_sender-2",
        "listener-1": "g_listener-1",
    }
    assert any(e["event"] == "presence" for e in result["timeline"])
    printed = report.summary(result)
    assert "  presence                  DIFFER from the 3 connected clients: eu-west-2 ghosts 1" in printed
    assert "why it failed: the regions' presence is not the 3 connected clients" in printed


def test_the_printed_report_says_when_presence_became_equal_or_that_it_was_not_checked() -> None:
    checked = {
        "equal": True,
        "connected": 10,
        "seconds": 41.3,
        "first_read_seconds": 40.9,
        "unread": [],
        "regions": {},
    }
    assert report._presence_line(checked) == (
        "  presence                  equal: every region lists the 10 connected clients, each once, "
        "41.3 s after the restore (first read 40.9 s after the restore)"
    )
    assert report._presence_line(None) == "  presence                  not checked"
