"""The drill's timeline picture: events at the same moment get labels side by side, not on top of
each other (detected and rerouted are often the same instant)."""

from __future__ import annotations

from drill.timeline import label_positions


def test_given_events_at_the_same_moment_then_their_labels_are_a_gap_apart() -> None:
    assert label_positions([3.0, 7.4, 7.4, 7.41, 18.0], gap=0.3) == [3.0, 7.4, 7.7, 8.0, 18.0]


def test_given_events_far_apart_then_each_label_stays_at_its_event() -> None:
    times = [0.0, 5.0, 10.0]
    assert label_positions(times, gap=0.3) == times
