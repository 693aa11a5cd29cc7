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


def test_chinese_punctuation_survives_normalisation():
    """NFKC folds letters, digits and compatibility forms, never Chinese full-width punctuation;
    ASCII punctuation between Chinese characters becomes full-width."""
    s, _ = run(["露营，天气很好！（摄于黄山）", "露营,天气很好", "ＡＢＣ１２３：测试…", "Hello, world: 1:2",
                "价格: 100元", "秋天的树叶(摄于黄山)"])
    assert [x.text for x in s] == ["露营，天气很好！（摄于黄山）", "露营，天气很好", "ABC123：测试…",
                                   "Hello, world: 1:2", "价格: 100元", "秋天的树叶（摄于黄山）"]


def test_email_domain_is_not_taken_for_a_url():
    s, _ = run(["联系 li.ming@example.com 订购手工月饼"])
    assert s[0].text == "联系 <邮箱> 订购手工月饼"


def test_traditional_is_converted_and_recorded():
    s, chain = run(["夜市裡的臭豆腐攤"])
    assert s[0].text == "夜市里的臭豆腐摊"
    assert chain.counts[reasons.CONVERTED] == 1


def test_boilerplate_families_not_a_list():
    """Generic image words, attributions, page chrome and file names combine freely: a caption made
    only of them is boilerplate, one that merely contains them keeps its content."""
    drop = ["高清大图", "原图", "图片详情", "更多图片", "图片来自网络，侵删", "【高清组图】", "第3张",
            "点击查看大图 1/12", "IMG_2041.JPG", "DSC01234", "微信图片_20230101123456", "在这里插入图片描述",
            "本图仅供参考，以实物为准", "圖片來源於網絡，如有侵權請聯繫刪除"]
    keep = {"高清大图：黄山云海日出": "黄山云海日出", "高清风景图片": "高清风景图片",
            "上海外滩的夜景（组图）": "上海外滩的夜景", "黄山日出.jpg": "黄山日出", "有图有真相": "有图有真相",
            "来源：新华社": "来源：新华社", "风景 图片": "风景 图片"}
    s, _ = run(drop + list(keep))
    assert [x.reason for x in s[:len(drop)]] == [reasons.BOILERPLATE] * len(drop)
    assert [(x.reason, x.text) for x in s[len(drop):]] == [(None, v) for v in keep.values()]


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


def test_kana_or_hangul_in_words_is_never_chinese():
    """Kanji-heavy Japanese with a little kana is Japanese; kana in kaomoji do not count; a lone
    の counts as Chinese only beside a character only Chinese writes."""
    caps = ["奈良公園の鹿", "京都嵐山の竹林", "新宿御苑の桜満開", "北海道の雪景色", "韩国明星 이민호",
            "好可爱ヽ(●´∀`●)ﾉ", "开心(￣▽￣)ノ", "(´ㅂ`)好累", "可爱の猫咪", "治愈系の风景", "今日の穿搭"]
    s, _ = run(caps)
    assert [x.reason for x in s] == [reasons.NO_CHINESE] * 5 + [None] * 5 + [reasons.NO_CHINESE]
    assert [x.detail for x in s[:5]] == ["ja", "ja", "ja", "ja", "ko"]


def test_length_bounds_in_chars_and_words():
    long_words = "、".join(["苹果", "香蕉", "橘子", "葡萄", "西瓜", "桃子", "草莓", "菠萝", "芒果", "樱桃",
                           "柠檬", "石榴", "荔枝", "龙眼", "柚子"])
    s, chain = run(["猫", "小猫", long_words], max_words=10)
    assert s[0].reason == reasons.TOO_SHORT
    assert s[1].reason is None
    assert s[2].reason == reasons.TOO_LONG and s[2].detail.endswith("words")
    assert chain.rule("length").segmented == 1  # only where the character bounds could not decide


def test_length_dictionary_bound_decides_like_the_hmm_count():
    """The dictionary-only word count bounds jieba's HMM count from above: deciding on it first
    gives the verdicts of the HMM count itself."""
    from filters.rules.length import Length
    rule = Length(dataclasses.replace(TextRulesConfig(), max_words=12))
    caps = ["王小明李小红张大伟赵小兰在北京天安门广场和故宫博物院门口合影留念然后去吃烤鸭",
            "最大的耳朵夺得节目,狂热的指数升温力学,平安的太监搜索股份,完美的人数表现理论",
            "欧阳娜娜司马伟秀英诸葛明轩上官婉儿公孙胜慕容复令狐冲独孤求败东方不败西门吹雪",
            "春眠不觉晓处处闻啼鸟夜来风雨声花落知多少", "一只可爱的小猫在阳光下睡觉"]
    for c in caps:
        hmm, plain = rule.chinese_words(c), rule.chinese_words(c, hmm=False)
        assert hmm <= plain
        s, _ = run([c], max_words=12)
        assert (s[0].reason == reasons.TOO_LONG) == (hmm > 12), c


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
    caps = ["熊猫在吃竹子", "华为手机", "张家界风景", "宫保鸡丁", "雷峰塔", "沙滩椅", "金毛犬",
            # words jieba's dictionary tags as person names
            "胡同里的四合院", "金色的麦田", "雷雨天气的街道", "白杨树下的长椅", "黄金周旅游攻略",
            # a surname standing alone as a function or measure word
            "向东出发", "一张美丽的照片", "于是我们出发了",
            # credit words beside a place, brand or thing
            "黄山拍摄的云海", "华为手机拍摄的夜景", "熊猫宝宝分享竹子", "高清摄影作品", "西门子冰箱"]
    s, chain = run(caps, max_occurrences=100)
    assert [x.text for x in s] == caps


def test_the_whole_name_is_masked_never_a_part():
    """Names seen leaking on the demo web: a surname, then one to three given-name characters
    that jieba cuts apart ('李强' + '娜', '张秀' + '英军') or glues to a credit ('王洋摄')."""
    caps = {
        "作者李强娜": "作者<人名>",
        "摄影师李强娜拍摄的海边日落": "摄影师<人名>拍摄的海边日落",
        "秋天的树叶（司马伟秀英摄）": "秋天的树叶（<人名>摄）",
        "秋天的树叶（张秀英军摄）": "秋天的树叶（<人名>摄）",
        "雪山风景（黄洋摄）": "雪山风景（<人名>摄）",
        "雪山风景（黄洋 摄）": "雪山风景（<人名> 摄）",
        "爱新觉罗溥仪的照片，摄影：爱新觉罗秀英": "<人名>的照片，摄影：<人名>",
        "欧阳涛磊分享：城市夜景": "<人名>分享：城市夜景",
        "周艳丽分享：雪山风景": "<人名>分享：雪山风景",
        "摄影师刘军拍摄的城市夜景": "摄影师<人名>拍摄的城市夜景",
        "记者王小明明天报道": "记者<人名>明天报道",
        "李娜新歌发布": "<人名>新歌发布",
        "王俊凯演唱会门票": "<人名>演唱会门票",
        "邓超和孙俪的合影": "<人名>和<人名>的合影",
    }
    s, chain = run(list(caps))
    assert [x.text for x in s] == list(caps.values())
    for x in s:
        original = chain.output_original(x)
        assert all(hidden not in original for hidden, _ in x.masked), original


@pytest.mark.parametrize("template,longest", [
    ("摄影师{name}拍摄的{cap}", 3), ("{cap}，作者{name}", 3), ("{name}分享：{cap}", 3), ("{cap}（{name}摄）", 3),
    ("记者{name}报道", 3), ("记者{name}在{cap}", 2), ("{name}在{cap}", 1)])
def test_names_are_masked_whole(template, longest):
    """Every surname (compound ones too) with given names from common given-name characters:
    the whole name is masked, up to three given characters where a credit or a title with the
    caption's edge closes it, two beside a title, one with no title at all."""
    surnames = ["张", "王", "李", "刘", "陈", "杨", "赵", "黄", "周", "吴", "欧阳", "司马", "诸葛", "上官"]
    given = ["伟", "芳", "娜", "秀英", "敏", "静", "强", "磊", "洋", "涛", "明"]
    parts = [g for g in given + [a + b for a in given for b in given][::5] if len(g) <= longest]
    names = [s + g for s in surnames for g in parts]
    if longest == 1:
        # Without a title, a name the dictionary knows as another word stays ('黄洋', a place).
        from filters.jieba_runtime import dictionary, get_jieba
        get_jieba()
        freq, tags = dictionary()
        names = [n for n in names if not freq.get(n) or tags.get(n, "").startswith("nr")]
    caps = [template.format(name=n, cap="海边的日落") for n in names]
    samples, _ = run(caps, max_occurrences=len(caps))
    expected = template.format(name="<人名>", cap="海边的日落")  # full-width punctuation stays
    leaks = [(c, x.text) for c, x in zip(caps, samples) if x.text != expected]
    assert not leaks, leaks[:10]


def test_the_gate_never_hides_a_name_the_tagger_finds():
    """The cheap gate may only skip captions in which the tagger would find no name."""
    import json
    from pathlib import Path

    from filters.names import NameTagger
    rows = [json.loads(line) for line in (Path(__file__).parent / "data" / "labelled_captions.jsonl")
            .read_text(encoding="utf-8").splitlines() if line.strip()]
    chain = TextChain(TextRulesConfig())
    tagger = NameTagger(TextRulesConfig())
    texts = [chain.process(r["caption"]).text for r in rows]
    texts += [t.replace("<人名>", n) for t in texts if "<人名>" in t for n in ("欧阳娜娜", "王小明", "李强娜")]
    missed = [t for t in texts if tagger.tag(t) and not tagger.may_hold_name(t)]
    assert not missed
    assert sum(map(tagger.may_hold_name, texts)) < len(texts) / 2  # and it does skip most captions


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
    from filters.rules import problems
    assert problems(TextRulesConfig(rules=["nonsense"])) and not TextRulesConfig(rules=["nonsense"]).problems()


def test_config_imports_no_rule():
    """The registry validates rule names; the config only holds them (no import circle)."""
    import ast
    import filters.config
    tree = ast.parse(open(filters.config.__file__, encoding="utf-8").read())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and m.startswith("filters") for m in imported), imported


def test_well_known_people_masked_and_name_like_things_not():
    """Known people from the names resource are masked wherever they stand as words; brands,
    companies, places, dishes and breeds that look like names are not."""
    names = {"袁隆平在稻田里查看水稻长势": "<人名>在稻田里查看水稻长势",
             "鲁迅故居门前的石板路": "<人名>故居门前的石板路",
             "徐志摩再别康桥手稿": "<人名>再别康桥手稿",
             "林黛玉葬花图": "<人名>葬花图",
             "姚明和刘翔同台领奖": "<人名>和<人名>同台领奖",
             "主演：杨幂 赵又廷": "主演：<人名> <人名>"}
    things = ["樂高積木拼装城堡", "华坚鞋业的生产车间", "金毛犬在草地上奔跑", "宫保鸡丁的家常做法",
              "望子成龙的家长们", "车水马龙的街道", "驻韩美军基地", "景山万春亭前的游客"]
    s, _ = run(list(names) + things)
    assert [x.text for x in s[:len(names)]] == list(names.values())
    assert not any("<人名>" in x.text for x in s[len(names):]), [x.text for x in s[len(names):]]


def test_page_chrome_sentences_are_boilerplate_or_cut():
    """Calls to scan, follow or download and copyright or reprint notices are boilerplate when they
    open a caption (whatever follows), cut when they follow punctuation, and left alone where the
    words merely occur (a question, a scanning microscope, a shop that takes orders by scan)."""
    drop = ["扫码关注我们的公众号，每天更新壁纸", "免责声明：图片仅供展示，不构成推荐",
            "版权归摄影师本人所有，转载请联系授权", "长按识别二维码下载客户端", "更多精彩，欢迎关注官方微博"]
    keep = {"秋日银杏大道。转载请注明出处": "秋日银杏大道", "公众号运营海报设计": "公众号运营海报设计",
            "扫描电子显微镜下的花粉": "扫描电子显微镜下的花粉", "官方最新声明：景区恢复开放": "官方最新声明：景区恢复开放",
            "微信扫码点餐的小店": "微信扫码点餐的小店"}
    s, _ = run(drop + list(keep))
    assert [x.reason for x in s[:len(drop)]] == [reasons.BOILERPLATE] * len(drop)
    assert [(x.reason, x.text) for x in s[len(drop):]] == [(None, v) for v in keep.values()]


def test_transliterated_names_need_a_person_word_beside_them():
    """Name parts such as 凯西, 保罗, 特朗普 (also company or place syllables) are masked beside a title,
    a person verb, a '·' or another name, and a name masked once is masked wherever it repeats;
    without such context, or inside a place or a game, they stay."""
    masked = {"美国总统特朗普访华": "美国总统<人名>访华", "保罗·沃克的遗作": "<人名>·<人名>的遗作",
              "哈登和库里表示会夺冠": "<人名>和<人名>表示会夺冠", "教练凯西表示满意": "教练<人名>表示满意",
              "姚明说，姚明的球衣": "<人名>说，<人名>的球衣", "王建国：家乡的秋天": "<人名>：家乡的秋天"}
    kept = ["特斯拉新车发布", "罗斯福路夜景", "俄罗斯方块游戏截图", "陆委会：两岸交流", "这款阿斯顿马丁颜值爆棚"]
    s, _ = run(list(masked) + kept)
    assert [x.text for x in s[:len(masked)]] == list(masked.values())
    assert [x.text for x in s[len(masked):]] == kept
