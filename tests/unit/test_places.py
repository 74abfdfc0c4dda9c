"""Towns (镇街) in the reference data, and the town an alert gets from its grid."""

from pathlib import Path

import pytest

from engine.core import MemoryStore, ScoringCore
from engine.rule_files.loader import load_rules
from models.places import TOWN_KIND, town_of_grid
from models.refdata import ModelEnv, ReferenceData
from simulator.city import DISTRICTS
from simulator.run import reference_city
from tests.rulekit import FACILITY, drive, rule, tank

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.mark.slow
def test_every_grid_of_the_simulated_city_belongs_to_one_town_of_its_district():
    city = reference_city(RULES)
    towns = dict(city.zones(TOWN_KIND))
    listed = [g for town in towns.values() for g in town["grids"]]
    assert sorted(listed) == sorted(city.grids)  # each grid exactly once
    for grid in city.grids:
        town_id = city.town_of(grid)
        assert town_id is not None and town_id.startswith(f"{city.district_of(grid)}.")
        assert towns[town_id]["district"] == city.district_of(grid)
    for district in DISTRICTS:
        assert 2 <= sum(t["district"] == district for t in towns.values()) <= 4


def test_a_town_s_grid_is_found_and_the_index_follows_a_changed_table():
    ref = ReferenceData()
    assert town_of_grid(ref, "G0101") is None
    ref.put("reference.zones", "xihu.xixi", {"name": "西溪街道", "kind": "town",
                                             "district": "xihu", "grids": ["G0101"]})
    assert town_of_grid(ref, "G0101").town_id == "xihu.xixi"
    ref.put("reference.zones", "xihu.xixi", None)
    assert town_of_grid(ref, "G0101") is None


def test_an_alert_with_a_known_grid_carries_its_town_and_district():
    level = rule(id="test.tank.level_high", source=FACILITY, kind="threshold",
                 condition="level_pct >= 90", severity="yellow", summary="tank {tank_id}")
    env = load_rules([RULES / "reference"]).env
    core = ScoringCore([level.with_env(ModelEnv(reference=env.reference))], MemoryStore())
    (in_town,) = drive(core, [tank(0, level_pct=91, grid_id="G0512")])
    assert (in_town.grid_id, in_town.town, in_town.district) == (
        "G0512", "xiaoshan.guali", "xiaoshan")
    (unknown,) = drive(core, [tank(10, tank_id="T2", level_pct=91, grid_id="G9999")])
    assert (unknown.town, unknown.district) == (None, None)


@pytest.mark.slow
def test_an_alert_on_a_tanker_s_position_carries_the_town_it_is_in():
    from pathlib import Path

    from engine.rule_files.loader import load_rules
    from models.places import place_of

    repo = Path(__file__).resolve().parents[2]
    reference = load_rules([repo / "rules"]).env.reference
    # No grid (vehicle telemetry): the town whose polygon holds the position, in its district.
    town = place_of(reference, {"lat": 30.27, "lon": 120.16, "vehicle_id": "V1"})
    assert town is not None and town.district is not None
    gridded = place_of(reference, {"grid_id": "G0000", "lat": 30.39, "lon": 120.44})
    assert gridded is not None and gridded.town_id == "xihu.lingyin"  # the grid wins
    assert place_of(reference, {"lat": 10.0, "lon": 10.0}) is None  # outside the city
