"""The pipeline hands a burst of records to the sinks a slice per turn."""

from __future__ import annotations

from typing import Any

from pbxwatch.pipeline import Pipeline


class _Burst:
    """An engine whose tick makes ``now`` records: 0, 1, ... now-1."""

    def tick(self, now: float) -> list[int]:
        return list(range(int(now)))


def _pipeline(got: list[Any], turns: list[Any]) -> Pipeline:
    return Pipeline(_Burst(), [got.append], schedule=turns.append, slice_records=10)  # type: ignore[arg-type]


def test_a_few_records_go_straight_to_the_sinks() -> None:
    got: list[Any] = []
    turns: list[Any] = []
    pipeline = _pipeline(got, turns)
    pipeline.tick(3)
    assert got == [0, 1, 2]
    assert not pipeline.behind
    assert turns == []


def test_a_burst_is_handed_over_a_slice_per_turn_in_order() -> None:
    got: list[Any] = []
    turns: list[Any] = []
    pipeline = _pipeline(got, turns)
    pipeline.tick(25)
    assert got == list(range(10))
    assert pipeline.behind
    pipeline.tick(3)  # records made meanwhile wait behind the burst
    assert got == list(range(10))
    assert len(turns) == 1
    turns.pop()()
    assert got == list(range(20))
    turns.pop()()
    assert got == [*range(25), 0, 1, 2]
    assert not pipeline.behind
    assert turns == []


def test_without_a_scheduler_everything_goes_at_once() -> None:
    got: list[Any] = []
    pipeline = Pipeline(_Burst(), [got.append], slice_records=10)  # type: ignore[arg-type]
    pipeline.tick(25)
    assert got == list(range(25))


def test_catch_up_all_empties_the_queue() -> None:
    got: list[Any] = []
    turns: list[Any] = []
    pipeline = _pipeline(got, turns)
    pipeline.tick(25)
    pipeline.catch_up_all()
    assert got == list(range(25))
    assert not pipeline.behind


def test_live_a_failing_sink_does_not_stop_the_others_or_the_queue() -> None:
    got: list[Any] = []
    turns: list[Any] = []

    def broken(rec: Any) -> None:
        raise ValueError(rec)

    pipeline = Pipeline(_Burst(), [broken, got.append], schedule=turns.append,  # type: ignore[arg-type]
                        slice_records=10)  # fmt: skip
    pipeline.tick(15)
    turns.pop()()
    assert got == list(range(15))
    assert not pipeline.behind
    assert pipeline.sink_errors == 15
