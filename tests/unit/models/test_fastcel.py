"""The fast path for plain conditions gives CEL's answer, on random expressions and values."""

import random
from datetime import UTC, datetime, timedelta

import cel
import pytest

from models.expr import CEL_ERRORS, Expression
from models.fastcel import CelError, Unsure, compile_fast

WHEN = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
VALUES = [None, True, False, 0, 1, 80, -3, 0.0, 1.0, 79.9, 80.0, 80.5, "", "a", "highway",
          [1, 2.5], ["a", "b"], {"b": 1.5, "s": "a"}, {"s": None}, WHEN,
          WHEN + timedelta(hours=1)]
LEAVES = ["x", "y", "z", "1", "80", "80.0", "-2", "2.5", "0.5", "true", "false", "null", '"a"',
          "'highway'", "[1, 2.5]", '["a", "b"]', "L", "S", "x.b", "y.s", "z.b"]
OPS = ["==", "!=", "<", "<=", ">", ">=", "in", "+", "-", "*", "/"]


def expression(rng: random.Random, depth: int = 0, leaves: list[str] = LEAVES) -> str:
    roll = rng.random()
    if depth >= 3 or roll < 0.3:
        return rng.choice(leaves)

    def sub() -> str:
        return expression(rng, depth + 1, leaves)
    if roll < 0.55:
        return f"{sub()} {rng.choice(OPS)} {sub()}"
    if roll < 0.62:
        return f"!({sub()})"
    if roll < 0.7:
        conditional = f"{sub()} ? ({sub()}) : {sub()}"
        return rng.choice([conditional, f"({conditional})", f"[{conditional}, 1]"])
    if roll < 0.75:
        return f"double({sub()})"
    if roll < 0.8:
        return f"({sub()}).contains({sub()})"
    if roll < 0.87:
        # a macro: its variable is a leaf inside it, and may shadow a field
        bound = rng.choice(["w", "x"])
        inside = expression(rng, depth + 1, [*leaves, bound, bound, f"{bound}.s"])
        return f"{rng.choice(['L', 'S', 'x', 'y', '[1, 2.5]', '[]'])}.exists({bound}, {inside})"
    return f"({sub()}) {rng.choice(['&&', '||'])} ({sub()})"


def cel_answer(program, env):
    try:
        return ("ok", program.execute(env))
    except CEL_ERRORS:
        return ("error", None)


def test_fast_path_agrees_with_cel_on_random_expressions():
    rng = random.Random(20241125)
    constants = {"L": ["a", 1, 2.5], "S": ["a", "highway"]}
    compared = 0
    for _ in range(6000):
        source = expression(rng)
        try:
            program = cel.compile(source)
        except ValueError:
            continue
        fast = compile_fast(source, constants)
        if fast is None:
            continue
        for _ in range(5):
            data = {name: rng.choice(VALUES) for name in "xyz"}
            want = cel_answer(program, {**data, **constants})
            try:
                got = ("ok", fast(data))
            except CelError:
                got = ("error", None)
            except Unsure:
                continue
            assert got == want, (source, data)
            assert type(got[1]) is type(want[1]), (source, data)
            compared += 1
    assert compared > 5000


@pytest.mark.parametrize("source", [
    "size(x) > 1", "x ? size(y) : 2", "x.all(v, v > 1)", "exists(x, y)", "x.exists(1, y)",
    "x.double(y)", "int(x) > 1", "x.exists(v, v > 1, y)", "1 < x < 3", "x.size() > 1",
    "r\"a\" == x", "x == 'a\\n'", "[v for v in x] == y"])
def test_everything_else_is_left_to_cel(source):
    assert compile_fast(source, {}) is None


def test_expressions_use_the_fast_path_and_fall_back_per_value():
    e = Expression('speed_kmh > 80 && road_class == "highway"')
    assert e._fast is not None
    assert e.evaluate({"speed_kmh": 81.0, "road_class": "highway"}) is True
    assert e.evaluate({"speed_kmh": None, "road_class": "urban"}) is False  # absorbed
    assert e.evaluate({"speed_kmh": None, "road_class": "highway"}) is None  # CEL error
    listed = Expression("tags == x")
    assert listed.evaluate({"tags": [1], "x": [1]}) is True  # lists: CEL decides
    member = Expression('waybill.status == "started" && speed_kmh * 2.0 > 100.0')
    assert member._fast is not None
    assert member.evaluate({"waybill": {"status": "started"}, "speed_kmh": 60.0}) is True
    assert member.evaluate({"waybill": {}, "speed_kmh": 60.0}) is None  # no such key: CEL
    assert member.evaluate({"waybill": None, "speed_kmh": 60.0}) is None
    assert member.evaluate({"waybill": {"status": "started"}, "speed_kmh": 60}) is None  # int


@pytest.mark.parametrize("source", [
    'x in ["a", "highway"]', "x in S", 'x == "a"', 'x != "a"', "x > 80", "x <= 79.9",
    "x >= 1", 'x == "a" && y > 1', 'x in S || y < 1', "(x > 1) && (y == 'a')",
    'x == "highway" ? y <= 80 : (x == "a" ? y <= 60 : true)', "x ? y : 1 ? 2 : 3",
    "x > 1 || y ? [x ? 1 : y, 2] : x", "(x ? y : x) == y", "!(x) ? y.b : 1"])
def test_the_shapes_compiled_in_place_agree_with_cel_on_every_value(source):
    # field against a number or a string, field in strings, a && or || of two: the shapes
    # most rule conditions have, each with its own closure
    assert compared_with_cel(source, {"S": ["a", "highway"]}, VALUES) > 300


def compared_with_cel(source: str, constants: dict, values: list) -> int:
    """How many (x, y) of ``values`` the fast path answered, each as CEL does (asserted)."""
    program, fast = cel.compile(source), compile_fast(source, constants)
    assert fast is not None
    compared = 0
    for x in values:
        for y in values:
            want = cel_answer(program, {"x": x, "y": y, **constants})
            try:
                got = ("ok", fast({"x": x, "y": y}))
            except CelError:
                got = ("error", None)
            except Unsure:
                continue
            assert got == want, (source, x, y)
            compared += 1
    return compared


MACRO_VALUES = [*VALUES, ["highway", "a"], ["b"], [], [{"s": "a"}, {"s": "b"}], [{"s": None}],
                [{}], [0, "a", 2], [False, True], "way", "a highway", 2.0, 1 << 70]


@pytest.mark.parametrize("source", [
    "S.exists(w, x.contains(w))", "x.exists(w, w.s == 'a')", "x.exists(x, x == y)",
    "x.exists(w, w)", "x.exists(w, w > 1)", "double(x) >= 0.8 * double(y)",
    "L.exists(w, S.exists(v, w == v)) && x.contains(y)", "x == 'a' || S.exists(w, y.contains(w))"])
def test_the_macros_and_functions_compiled_agree_with_cel_on_every_value(source):
    # exists over a list (in order: true at the first true, an error at the first error),
    # contains of two strings, double of a number: the rest is left to CEL per value
    constants = {"S": ["a", "highway"], "L": ["a", 1, 2.5]}
    assert compared_with_cel(source, constants, MACRO_VALUES) > 20
