"""Repeated warnings and errors: the first written, the rest counted and summed up once."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from engine.log_repeats import RepeatFilter, kind_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


@pytest.fixture
def setup() -> Iterator[tuple[logging.Logger, Kept, RepeatFilter, Clock]]:
    clock = Clock()
    handler = Kept()
    repeat_filter = RepeatFilter(handler, interval_s=30, clock=clock)
    handler.addFilter(repeat_filter)
    root = logging.getLogger("aiokafka")
    child = logging.getLogger("aiokafka.conn")  # the filter sees children on the handler
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        yield child, handler, repeat_filter, clock
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def connect_failed(log: logging.Logger, port: int) -> None:
    log.error("Unable connect to node with id %d: [Errno 111] Connect call failed "
              "('127.0.0.1', %d)", 1, port)


def test_the_text_without_what_varies_is_the_kind() -> None:
    assert kind_of("Connect call failed ('127.0.0.1', 52039) at 0x7fc01c8ce890") \
        == kind_of("Connect call failed ('10.0.0.7', 9092) at 0x7fc01c831f10")
    assert kind_of("Unable to update metadata") != kind_of("Failed fetch messages")


def test_repeats_within_the_interval_are_counted_and_summed_up_once(setup) -> None:
    log, handler, repeat_filter, clock = setup
    for i in range(500):
        connect_failed(log, 52039 + i % 3)
        log.error("Unable to update metadata from [1]")
        clock.now += 0.05  # 25 s in all
    assert handler.lines == [
        "ERROR aiokafka.conn: Unable connect to node with id 1: [Errno 111] Connect call "
        "failed ('127.0.0.1', 52039)",
        "ERROR aiokafka.conn: Unable to update metadata from [1]"]
    assert repeat_filter.flush() == 0  # the interval is not over
    clock.now += 6
    assert repeat_filter.flush() == 2
    assert handler.lines[2:] == [
        "ERROR aiokafka.conn: Unable connect to node with id 1: [Errno 111] Connect call "
        "failed ('127.0.0.1', 52039) (repeated 499 more times in the last 30 s)",
        "ERROR aiokafka.conn: Unable to update metadata from [1] (repeated 499 more times in "
        "the last 30 s)"]
    assert repeat_filter.flush() == 0  # said once


def test_a_repeat_after_the_interval_writes_the_count_then_itself(setup) -> None:
    log, handler, _, clock = setup

    def written() -> list[str]:
        return [line.split("failed ")[1] for line in handler.lines]

    connect_failed(log, 1)
    connect_failed(log, 2)
    clock.now += 30
    connect_failed(log, 3)
    connect_failed(log, 4)
    assert written() == ["('127.0.0.1', 1)",
                         "('127.0.0.1', 1) (repeated 1 more times in the last 30 s)",
                         "('127.0.0.1', 3)"]
    clock.now += 30
    connect_failed(log, 5)  # the count of the second interval comes first
    assert written()[3:] == ["('127.0.0.1', 3) (repeated 1 more times in the last 30 s)",
                             "('127.0.0.1', 5)"]


def test_a_kind_seen_once_is_forgotten_without_a_summary(setup) -> None:
    log, handler, repeat_filter, clock = setup
    connect_failed(log, 1)
    clock.now += 31
    assert repeat_filter.flush() == 0
    connect_failed(log, 2)
    assert len(handler.lines) == 2


def test_info_lines_and_other_loggers_pass_untouched(setup) -> None:
    log, handler, _, _ = setup
    other = logging.getLogger("elsewhere")
    other.addHandler(handler)
    try:
        for _ in range(3):
            log.info("Discovered coordinator 1 for group yujing")
            other.error("same again")
    finally:
        other.removeHandler(handler)
    assert len(handler.lines) == 6
