"""text: keywords in free text — case, distinct matches, exclusions, excerpts, missing fields."""

import pickle
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.core import MemoryStore, ScoringCore
from engine.rule_files.loader import compile_rule_text
from models.base import Verdict
from models.text import Text, TextParams
from tests.rulekit import event, rule, rule_text
from topics.codec import Event

HOTLINE = "events.hotline.ticket"
LIFE = {"id": "test.hotline.life", "source": HOTLINE, "kind": "text",
        "keywords": ["着火", "爆炸", "跳楼", "fire"], "exclude": ["没有着火", "跳楼价", "演习"],
        "severity": "red", "summary": "{ticket_id} mentions {matched}: {excerpt}"}


def text_model(**params):
    params.setdefault("keywords", ["着火", "爆炸", "fire"])
    return Text(TextParams(**params))


def read(m, text, field="text"):
    reading = m.score_one(None, Event("t", "k", 0.0, {} if text is None else {field: text}))
    return reading.verdict.value, reading.evidence


def ticket(ts, text, ticket_id="T1", **fields):
    fields.setdefault("status", "new")
    return event(HOTLINE, ts, ticket_id=ticket_id, category="其他", text=text, **fields)


def test_chinese_matches_as_written_and_evidence_lists_keywords_in_order_of_appearance():
    assert read(text_model(), "仓库爆炸了，随后着火") == ("breach", {
        "found": ["爆炸", "着火"], "matched": "爆炸、着火", "excerpt": "仓库爆炸了，随后着火"})


@pytest.mark.parametrize("text", ["fire in the hall", "FIRE!", "Fire", "Ｆｉｒｅ",
                                  "ＦＩＲＥ　ｉｎ　ｈａｌｌ"])
def test_latin_letters_match_in_any_case_and_width(text):
    verdict, evidence = read(text_model(), text)
    assert (verdict, evidence["found"]) == ("breach", ["fire"])


def test_other_latin_letters_fold_too_and_positions_stay_those_of_the_original():
    m = text_model(keywords=["café", "着火"])
    assert read(m, "CAFÉ")[1]["found"] == ["café"]
    # İ is the one letter whose lower case is two characters: it must not shift the excerpt.
    assert read(m, "İİİ着火")[1]["excerpt"] == "İİİ着火"


def test_full_width_keyword_matches_ascii_text():
    assert read(text_model(keywords=["ＳＯＳ"]), "sos 救命")[0] == "breach"


def test_no_keyword_clears_with_no_evidence():
    assert read(text_model(), "路灯不亮") == ("clear", {})


def test_missing_or_blank_text_says_nothing():
    m = text_model()
    assert read(m, None) == ("hold", {})
    assert read(m, "") == ("hold", {})
    assert read(m, "  \n ") == ("hold", {})


def test_another_field_can_be_watched():
    m = text_model(field="category")
    assert read(m, "火灾爆炸", field="category")[0] == "breach"
    assert read(m, "火灾爆炸", field="text") == ("hold", {})


def test_min_matches_counts_distinct_keywords_not_repeats():
    m = text_model(min_matches=2)
    assert read(m, "爆炸爆炸爆炸") == ("clear", {"found": ["爆炸"]})
    assert read(m, "爆炸后着火")[1]["found"] == ["爆炸", "着火"]


def test_overlapping_keywords_both_count():
    m = text_model(keywords=["起火", "火灾"], min_matches=2)
    assert read(m, "厂房起火灾情严重")[1]["found"] == ["起火", "火灾"]


def test_an_exclude_phrase_holding_a_keyword_cancels_only_that_mention():
    m = text_model(exclude=["没有着火"])
    assert read(m, "刚才闻到焦味，确认没有着火") == ("clear", {})
    assert read(m, "没有着火，但是仓库爆炸了") == ("breach", {
        "found": ["爆炸"], "matched": "爆炸", "excerpt": "没有着火，但是仓库爆炸了"})
    assert read(m, "没有着火。后来又着火了")[1]["found"] == ["着火"]


def test_an_exclude_phrase_without_a_keyword_vetoes_the_whole_text():
    m = text_model(exclude=["演习"])
    assert read(m, "消防演习：模拟着火和爆炸") == ("clear", {"excluded": "演习"})
    assert read(m, "演习") == ("clear", {})  # no keyword: the veto is not even looked at


def test_exclusions_match_case_insensitively_too():
    m = text_model(exclude=["Fire Drill"])
    assert read(m, "FIRE DRILL at noon")[0] == "clear"
    assert read(m, "fire drill, then a real fire")[1]["found"] == ["fire"]


def test_excerpt_is_cut_around_the_first_match_on_one_line():
    text = "一二三四五六七八九十" * 3 + "\n楼上\t着火了\n" + "甲乙丙丁戊己庚辛壬癸" * 3
    _, evidence = read(text_model(), text)
    # 20 characters either side of 着火 (the newline and tab count), whitespace made one space.
    assert evidence["excerpt"] == \
        "…五六七八九十一二三四五六七八九十 楼上 着火了 甲乙丙丁戊己庚辛壬癸甲乙丙丁戊己庚辛…"


@pytest.mark.parametrize(("params", "message"), [
    ({"keywords": []}, "at least 1 item"),
    ({"keywords": ["着火", " "]}, "must not be blank"),
    ({"keywords": ["Fire", "fire"]}, "listed twice (case aside): Fire, fire"),
    ({"keywords": ["着火"], "min_matches": 2}, "min_matches 2 is more than the 1 keywords"),
    ({"keywords": ["着火"], "min_matches": 0}, "greater than or equal to 1"),
    ({"keywords": ["着火"], "exclude": [""]}, "must not be blank"),
])
def test_bad_parameters_are_refused(params, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TextParams(**params)


def test_the_field_must_be_a_field_of_the_topic():
    _, errors = compile_rule_text(rule_text(**LIFE | {"field": "txt"}), Path("r.yaml"))
    assert any("unknown field 'txt'" in str(e) for e in errors), [str(e) for e in errors]


def test_describe_says_what_is_watched():
    assert rule(**LIFE).model.describe() == {
        "kind": "text", "field": "text", "keywords": ["着火", "爆炸", "跳楼", "fire"],
        "min_matches": 1, "exclude": ["没有着火", "跳楼价", "演习"]}


def test_through_the_core_one_alert_per_ticket_until_its_text_stops_matching():
    core = ScoringCore([rule(**LIFE)], MemoryStore())
    alerts = core.process([ticket(0, "3号楼着火了"), ticket(10, "商场喊跳楼价", "T2"),
                           ticket(20, "3号楼着火了", status="assigned"),
                           ticket(30, "", status="assigned"),
                           ticket(40, "消防演习着火", "T3")])
    assert [(a.key, a.state, a.last_ts, a.severity, a.summary) for a in alerts] == [
        ("T1", "firing", 0.0, "red", "T1 mentions 着火: 3号楼着火了")]
    assert alerts[0].evidence["condition"]["kind"] == "text"
    resolved = core.process([ticket(50, "已核实：是烧烤的烟，已处理", status="closed")])
    assert [(a.key, a.state, a.first_ts, a.last_ts) for a in resolved] == [
        ("T1", "resolved", 0.0, 50.0)]


def test_state_pickles_mid_stream_and_resumes_with_identical_alerts():
    stream = [ticket(0, "着火"), ticket(5, "路灯"), ticket(10, "爆炸了", "T2"),
              ticket(20, "跳楼", "T3"), ticket(30, "好了", "T2")]
    straight = ScoringCore([rule(**LIFE)], MemoryStore()).process(stream)
    store = MemoryStore()
    first = ScoringCore([rule(**LIFE)], store).process(stream[:3])
    restored = MemoryStore()
    restored.data = pickle.loads(pickle.dumps(store.data))
    resumed = first + ScoringCore([rule(**LIFE)], restored).process(stream[3:])
    assert [(a.alert_id, a.state, a.last_ts) for a in resumed] == \
        [(a.alert_id, a.state, a.last_ts) for a in straight]
    assert [(a.key, a.state) for a in straight] == [
        ("T1", "firing"), ("T1", "resolved"), ("T2", "firing"), ("T3", "firing"),
        ("T2", "resolved")]


def test_a_reading_leaves_no_state():
    m = text_model()
    assert m.new_state() is None
    assert m.score_one(None, Event("t", "k", 0.0, {"text": "着火"})).verdict is Verdict.BREACH
