"""The worker's write-behind state store, without a broker: what each flush writes."""

import asyncio
import pickle
from typing import Any

from engine import metrics
from engine.worker.in_flight import InFlight
from engine.worker.state import TableStore


class Table:
    """What the store uses of a Faust table: its data."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def __iter__(self) -> Any:
        return iter(self.data)


class Writer:
    """Records the changelog records handed over, in order."""

    def __init__(self) -> None:
        self.records: list[tuple[str, Any]] = []

    def write(self, records: list[tuple[bytes, bytes | None]]) -> list[Any]:
        self.records += [(k.decode(), None if v is None else pickle.loads(v)) for k, v in records]
        return []


def store() -> tuple[TableStore, Writer]:
    writer = Writer()
    return TableStore(Table(), 4, InFlight(), writer), writer  # type: ignore[arg-type]


def test_a_commit_writes_the_keys_changed_before_it_in_chunks_scoring_in_between():
    state, writer = store()
    for key in ("A", "B", "C"):
        state.save("s", key, {"n": 1})  # type: ignore[dict-item]
    state.mark_for_commit()
    state.save("s", "D", {"n": 1})  # after the commit started: not its business

    async def commit_while_scoring() -> int:
        async def score() -> None:
            # runs while the commit yields between chunks
            await asyncio.sleep(0)
            for key in ("A", "B", "C"):
                state.save("s", key, {"n": 2})  # type: ignore[dict-item]

        writing = asyncio.ensure_future(state.flush_for_commit(slice_s=0, pause_s=0, group=1))
        await score()
        return await writing

    written = asyncio.run(commit_while_scoring())
    keys = [key for key, _ in writer.records]
    assert written == 3 and sorted(keys) == ["A", "B", "C"]
    first = keys[0]
    # the first chunk went before the scoring, the others after it, with their newer state
    assert {k: v["s"]["n"] for k, v in writer.records} == {
        k: 1 if k == first else 2 for k in ("A", "B", "C")}
    # the first key changed after its chunk, and D after the commit began: both left dirty
    assert state.flush() == 2
    assert sorted(key for key, _ in writer.records[3:]) == sorted([first, "D"])


def test_a_commit_pauses_long_enough_for_many_turns_of_the_event_loop():
    # Faust's fetch loop takes several turns of the event loop per message it hands on: a
    # pause of one turn between slices would move it one step per slice.
    state, writer = store()
    for i in range(10):
        state.save("s", f"K{i}", {"n": 1})  # type: ignore[dict-item]
    state.mark_for_commit()

    async def turns_during_the_first_pause() -> int:
        writing = asyncio.ensure_future(
            state.flush_for_commit(slice_s=0, pause_s=0.05, group=1))
        await asyncio.sleep(0)  # the commit writes its first slice, then pauses
        for _ in range(50):
            await asyncio.sleep(0)
        written_meanwhile = len(writer.records)
        await writing
        return written_meanwhile

    assert asyncio.run(turns_during_the_first_pause()) == 1
    assert sorted(key for key, _ in writer.records) == [f"K{i}" for i in range(10)]


def test_a_key_another_flush_wrote_is_not_written_again_by_the_commit():
    state, writer = store()
    state.save("s", "A", {"n": 1})  # type: ignore[dict-item]
    state.mark_for_commit()
    assert state.flush() == 1  # a revocation's flush, say
    assert asyncio.run(state.flush_for_commit()) == 0
    assert [key for key, _ in writer.records] == ["A"]


def test_a_deleted_key_becomes_a_tombstone():
    state, writer = store()
    state.save("s", "A", {"n": 1})  # type: ignore[dict-item]
    state.flush()
    state.delete("s", "A")
    assert state.flush() == 1
    assert writer.records[-1] == ("A", None) and state.table.data == {}


def test_a_state_record_that_cannot_be_read_starts_that_key_afresh(caplog):
    from engine.core import ScoringCore
    from tests.rulekit import FACILITY, rule, tank

    state, _ = store()
    state.table.data[b"T1"] = b"\x80\x05not a pickle"  # corrupted, or of another version
    state.table.data[b"T2"] = pickle.dumps({"s": {"n": 1}})
    before = metrics.sample_value("yujing_state_unreadable_total") or 0
    hot = rule(id="test.tank.hot", source=FACILITY, kind="threshold", condition="temp_c > 60")
    core = ScoringCore([hot], state)
    alerts = core.process([tank(0, "T1", temp_c=70), tank(0, "T2", temp_c=70)])
    assert sorted(a.key for a in alerts) == ["T1", "T2"]  # the key is scored, from nothing
    assert metrics.sample_value("yujing_state_unreadable_total") == before + 1
    assert "the state of key 'T1' could not be read" in caplog.text
    assert sorted({key for _, key, _ in state.entities()}) == ["T1", "T2"]
