"""Each text rule on its own: what it drops, what it rewrites, what it counts."""

from __future__ import annotations

import dataclasses

import pytest

from filters import reasons
from filters.chain import TextChain, filter_captions
from filters.config import TextRulesConfig
from filters.rules import build_rules


def run(captions, **overrides):
    cfg = dataclasses.replace(TextRulesConfig(), **overrides)
    samples, chain = filter_captions(captions, cfg)
    return samples, chain


def test_normalisation_cleans_and_counts():
    s, chain = run(["<div>小猫&amp;小狗</div>\u200b\u3000 https://a.example.com/x?y=1 ＡＢＣ"])
    assert s[0].text == "小猫&小狗 ABC"
    assert s[0].reason is None
    assert chain.counts[reasons.URL_REMOVED] == 1 and chain.counts[reasons.NORMALIZED] == 1


def test_email_domain_is_not_taken_for_a_url():
    s, _ = run(["联系 li.ming@example.com 获取高清原图"])
    assert s[0].text == "联系 <邮箱> 获取高清原图"


def test_traditional_is_converted_and_recorded():
    s, chain = run(["夜市裡的臭豆腐攤"])
    assert s[0].text == "夜市里的臭豆腐摊"
    assert chain.counts[reasons.CONVERTED] == 1


def test_boilerplate_only_dropped_and_segments_cut():
    s, _ = run(["查看源网页", "晚霞 | 查看源网页", "高清风景图片"])
    assert s[0].reason == reasons.BOILERPLATE
    assert (s[1].reason, s[1].text) == (None, "晚霞")
    # A short generic phrase is not cut off a real caption.
    assert (s[2].reason, s[2].text) == (None, "高清风景图片")


def test_user_boilerplate_and_sensitive_lists(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("# mine\n违禁词语\n", encoding="utf-8")
    s, _ = run(["这里有违 禁 詞 语出售", "代开发票", "今日特价水果"], sensitive_words_file=str(words),
               boilerplate_extra=["今日特价水果"])
    assert s[0].reason == reasons.SENSITIVE and s[0].detail == "违禁词语"
    assert s[1].reason is None  # the bundled list was replaced by the user's file
    assert s[2].reason == reasons.BOILERPLATE


def test_language_by_script_and_model():
    s, chain = run(["一只猫坐在窗台上晒太阳", "猫の写真がかわいいです", "서울의 밤 야경", "Nice view", "东京駅"])
    assert [x.reason for x in s] == [None, reasons.NO_CHINESE, reasons.NO_CHINESE, reasons.NO_CHINESE,
                                     reasons.NO_CHINESE]
    assert s[1].detail == "ja" and s[2].detail == "ko" and s[3].detail == "latin"
    # Pure Han text never asks the model (it misjudges short Chinese captions).
    assert chain.rule("language").model_calls <= 1


def test_length_bounds_in_chars_and_words():
    long_words = "、".join(["苹果", "香蕉", "橘子", "葡萄", "西瓜", "桃子", "草莓", "菠萝", "芒果", "樱桃",
                           "柠檬", "石榴", "荔枝", "龙眼", "柚子"])
    s, chain = run(["猫", "小猫", long_words], max_words=10)
    assert s[0].reason == reasons.TOO_SHORT
    assert s[1].reason is None
    assert s[2].reason == reasons.TOO_LONG and s[2].detail.endswith("words")
    assert chain.rule("length").segmented == 1  # only where the character bounds could not decide


def test_frequency_is_counted_over_the_whole_list():
    caps = ["海边的日落"] * 4 + ["海边 的 日落！"] + ["山里的日出"] * 3
    s, chain = run(caps, max_occurrences=4)
    assert [x.reason for x in s[:5]] == [reasons.TOO_FREQUENT] * 5
    assert all(x.reason is None for x in s[5:])
    assert chain.counts[reasons.TOO_FREQUENT] == 5


def test_privacy_masks_and_redacts_original_forms():
    s, chain = run(["記者王曉明攝 電話13800138000", "身份證 11010119900307123X"])
    assert s[0].text == "记者<人名>摄 电话<电话>"
    original = chain.output_original(s[0])
    assert "王曉明" not in original and "13800138000" not in original and original.startswith("記者")
    assert s[1].text == "身份证 <身份证号>"
    assert chain.counts[reasons.MASKED_NAME] == 1 and chain.counts[reasons.MASKED_PHONE] == 1


def test_name_lookalikes_are_not_masked():
    caps = ["熊猫在吃竹子", "华为手机", "张家界风景", "宫保鸡丁", "雷峰塔", "沙滩椅", "金毛犬"]
    s, chain = run(caps)
    assert [x.text for x in s] == caps


def test_rejected_rows_are_cleaned_and_masked_too():
    s, chain = run(["记者王小明报道 代开发票"])
    assert s[0].reason == reasons.SENSITIVE
    assert "王小明" not in s[0].text and "王小明" not in chain.output_original(s[0])


def test_missing_and_non_text_captions_are_counted():
    chain = TextChain(TextRulesConfig())
    a, b = chain.process(None), chain.process(12345)
    assert a.reason == b.reason == reasons.NO_CAPTION
    assert chain.counts[reasons.NO_CAPTION] == 2


def test_a_rule_that_raises_sets_the_row_aside():
    chain = TextChain(TextRulesConfig())

    def broken(_s):
        raise RuntimeError("boom")

    broken.name, broken.always = "broken", False
    chain.rules.insert(3, broken)
    s = chain.process("一只可爱的小猫")
    t = chain.process("另一只小狗")
    assert s.reason == t.reason == reasons.ERROR and "broken" in s.detail
    assert chain.counts[reasons.ERROR] == 2


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="unknown text rule"):
        build_rules(dataclasses.replace(TextRulesConfig(), rules=["normalize", "nonsense"]))
    assert TextRulesConfig(rules=["nonsense"]).problems()
