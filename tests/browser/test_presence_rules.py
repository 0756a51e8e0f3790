"""The page's presence rules (frontend/presence.js), run in the browser with a fake clock.

presence.js is pure, like judge.js (tests/browser/test_region_judge.py): each test feeds it a GET
presence answer and frames at chosen instants and reads what the page would show.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def presence_page(browser: Any, stack: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(base_url=stack["frontDoorUrl"])
    page = context.new_page()
    page.goto("/presence.js")  # same origin as the page, no page script running
    yield page
    context.close()


@pytest.fixture
def play(presence_page: Any) -> Any:
    """play(body, arg): run `body` with `P` the presence module; its return value."""

    def play_(body: str, arg: Any = None) -> Any:
        return presence_page.evaluate(
            f"async (arg) => {{ const P = await import('/presence.js'); {body} }}", arg
        )

    return play_


def enter(user_id: str, name: str, count: int) -> dict[str, Any]:
    return {"type": "presence", "event": "enter", "user": {"id": user_id, "name": name}, "count": count}


def leave(user_id: str, name: str, count: int) -> dict[str, Any]:
    return {"type": "presence", "event": "leave", "user": {"id": user_id, "name": name}, "count": count}


ADA, BO, CY = ("g_ada", "Ada"), ("g_bo", "Bo"), ("g_cy", "Cy")


def test_the_constants_are_the_documented_ones(play: Any) -> None:
    assert play("return [P.MEMBERS_SHOWN, P.TYPING_SEND_INTERVAL_MS, P.TYPING_SHOWN_MS];") == [
        100,
        2000,
        3000,
    ]


def test_enter_and_leave_frames_are_idempotent_and_the_count_is_always_the_servers(play: Any) -> None:
    # given the answer "Ada and Bo", when frames come twice, and for users not listed
    shown = play(
        """const roster = new P.Roster();
        roster.reset({count: 2, members: [{id: 'g_ada', name: 'Ada'}, {id: 'g_bo', name: 'Bo'}]});
        const out = [];
        for (const frame of arg) {
          roster.apply(frame);
          out.push([roster.count, roster.members().map((m) => m.name)]);
        }
        return out;""",
        [
            enter(*CY, 3),
            enter(*CY, 3),
            enter(*ADA, 3),
            leave(*BO, 2),
            leave(*BO, 2),
            {"type": "presence", "event": "count", "count": 250},
        ],
    )
    # then an enter adds once, a leave removes once, and the count shown is each frame's
    assert shown == [
        [3, ["Ada", "Bo", "Cy"]],
        [3, ["Ada", "Bo", "Cy"]],
        [3, ["Ada", "Bo", "Cy"]],
        [2, ["Ada", "Cy"]],
        [2, ["Ada", "Cy"]],
        [250, ["Ada", "Cy"]],
    ]


def test_a_frame_that_crosses_the_get_is_kept(play: Any) -> None:
    # given a GET out; when Bo's enter (already in its answer) and Cy's (newer) come before it
    shown = play(
        """const roster = new P.Roster();
        roster.refreshing();
        roster.apply(arg[0]);
        roster.apply(arg[1]);
        roster.reset({count: 2, members: [{id: 'g_ada', name: 'Ada'}, {id: 'g_bo', name: 'Bo'}]});
        const afterCrossing = [roster.count, roster.members().map((m) => m.name)];
        roster.refreshing();
        roster.apply(arg[0]);
        const all = [{id: 'g_ada', name: 'Ada'}, {id: 'g_bo', name: 'Bo'}, {id: 'g_cy', name: 'Cy'}];
        roster.reset({count: 3, members: all});
        return [afterCrossing, [roster.count, roster.members().map((m) => m.name)]];""",
        [enter(*BO, 2), enter(*CY, 3)],
    )
    # then Cy is listed with the newer count; a frame the answer already holds changes nothing
    assert shown == [[3, ["Ada", "Bo", "Cy"]], [3, ["Ada", "Bo", "Cy"]]]


def test_members_are_sorted_by_name_then_id_and_at_most_100_are_listed(play: Any) -> None:
    # given 150 members in any order, two of them called "ada" and "Ada"
    shown = play(
        """const roster = new P.Roster();
        const members = [];
        for (let i = 149; i >= 0; i -= 1) {
          const n = String(i).padStart(3, '0');
          members.push({id: `g_${n}`, name: `user ${n}`});
        }
        members.push({id: 'g_2', name: 'Ada'}, {id: 'g_0', name: 'ada'}, {id: 'g_1', name: 'Ada'});
        roster.reset({count: 153, members});
        const listed = roster.members();
        return [roster.count, listed.length, listed.slice(0, 4).map((m) => `${m.name}/${m.id}`)];"""
    )
    # then the count is all of them, the list the first 100, by name (case aside), then id
    assert shown == [153, 100, ["ada/g_0", "Ada/g_1", "Ada/g_2", "user 000/g_000"]]


def test_who_is_typing_reads_as_a_sentence_and_each_entry_ends_3_s_after_its_last_frame(play: Any) -> None:
    # given Ada typing at 0 s and 2 s, Bo at 1 s and Cy at 1.5 s
    shown = play(
        """const typists = new P.Typists();
        typists.typed({id: 'g_ada', name: 'Ada'}, 0);
        const one = P.typingText(typists.names(500));
        typists.typed({id: 'g_bo', name: 'Bo'}, 1000);
        const two = P.typingText(typists.names(1200));
        typists.typed({id: 'g_cy', name: 'Cy'}, 1500);
        typists.typed({id: 'g_ada', name: 'Ada'}, 2000);
        const three = P.typingText(typists.names(2100));
        const later = P.typingText(typists.names(4200)); // Bo's ended at 4 s
        typists.clear('g_cy'); // Cy's message came
        const cleared = P.typingText(typists.names(4300));
        return [one, two, three, later, cleared, P.typingText(typists.names(5000))];"""
    )
    assert shown == [
        "Ada is typing…",
        "Ada and Bo are typing…",
        "3 people are typing…",
        "Ada and Cy are typing…",
        "Ada is typing…",
        "",
    ]


def test_a_typing_frame_goes_at_most_once_every_2_s(play: Any) -> None:
    # given a key pressed every 100 ms for 5 s
    sent = play(
        """let last = null;
        const sent = [];
        for (let now = 0; now <= 5000; now += 100) {
          if (P.typingDue(last, now)) { last = now; sent.push(now); }
        }
        return sent;"""
    )
    # then frames go at 0, 2 and 4 s only
    assert sent == [0, 2000, 4000]
