"""Name tagger rules added with the larger names resource: each case a rule, each rule with a look-
alike it must leave alone."""

from __future__ import annotations

import pytest

from filters.chain import filter_captions
from filters.config import TextRulesConfig


def texts(captions):
    samples, _chain = filter_captions(captions, TextRulesConfig())
    return [s.text for s in samples]


@pytest.mark.parametrize("caption,expected", [
    # two well-known names side by side: the word across their seam ('德安', a county) is no evidence
    ("NBA老将排名，韦德安东尼未入前十", "NBA老将排名，<人名><人名>未入前十"),
    # a surname and two characters standing alone make a name where a surname and one say nothing
    ("关菊英50岁和同性富婆相恋结婚", "<人名>50岁和同性富婆相恋结婚"),
    # a rare surname before a common one that starts a longer name ends the word before it
    ("从相爱到相杀 币安赵长鹏回应红杉诉讼一案", "从相爱到相杀 币安<人名>回应红杉诉讼一案"),
    # between a title and a credit, any single character belongs to the name
    ("本报记者 谭兴孚 摄", "本报记者 <人名> 摄"),
    # a name joined after a title and a conjunction, and wherever it repeats
    ("哈里王子和梅根真心相爱，哪怕梅根离过婚", "<人名>王子和<人名>真心相爱，哪怕<人名>离过婚"),
    # a transliterated part before a person predicate
    ("罗斯下赛季还能出现在NBA赛场上吗", "<人名>下赛季还能出现在NBA赛场上吗"),
    # a long transliterated name from the person list stands alone
    ("贝卢斯科尼的新闻发布会", "<人名>的新闻发布会"),
    # a person both a list of public figures and a name dictionary hold, though jieba files the
    # same characters as an ordinary word or no surname of the table opens it
    ("陆游的《示儿》写于临终前", "<人名>的《示儿》写于临终前"),
    ("那英登上春晚舞台", "<人名>登上春晚舞台"),
    # names listed with 、 and closed by a plural pronoun
    ("秋菊、冬梅她们在院子里", "<人名>、<人名>她们在院子里"),
    # a surname standing alone and a word of a given name's kind before a person verb
    ("李一桐晒出新剧照", "<人名>晒出新剧照"),
    # a transliterated part, an adverb or question word, then a person verb; 听 is a person verb
    ("赛前，孔蒂也表示球队已准备好", "赛前，<人名>也表示球队已准备好"),
    ("库里听到消息后很激动", "<人名>听到消息后很激动"),
    # a dictionary person word ending on a transliteration syllable before a person verb
    ("范佩西表示愿意回到球队", "<人名>表示愿意回到球队"),
    # a name with transliteration syllables running on after it is masked whole, never by half
    ("古力娜扎出席品牌活动", "<人名>出席品牌活动"),
    ("埃及法老图坦卡蒙的黄金面具", "埃及法老<人名>的黄金面具"),
    # CC-CEDICT persons (filters/data/cedict_persons.txt)
    # a dated CC-CEDICT person another source holds too, though jieba files it as a noun
    ("屈原投江的地方", "<人名>投江的地方"),
    # a dated CC-CEDICT person that jieba tags nr: masked standing alone, before an ordinary verb
    ("特朗普为什么敢这样做", "<人名>为什么敢这样做"),
    # a CC-CEDICT given name standing alone, an ordinary word after it
    ("谁才是杰克真爱", "谁才是<人名>真爱"),
    ("杰克说他会来", "<人名>说他会来"),
    # ... and still a name part beside a title
    ("凯瑟琳王妃出席活动", "<人名>王妃出席活动"),
])
def test_names_found(caption, expected):
    assert texts([caption]) == [expected]


@pytest.mark.parametrize("caption", [
    "这款阿斯顿马丁颜值爆棚",           # two name syllable runs that make a brand
    "迪士尼乐园的烟花表演",             # a brand in the list of transliterated names
    "伦敦市长官邸的夜景",               # a place in that list, before a title word
    "张掖七彩丹霞地貌",                 # a place in the person list
    "记者站摄影作品展",                 # a title, then no name before the credit
    "她和那些朋友下赛季再见",           # a person predicate after no name part
    "陈仓区的夜景",                     # in both person sources, but jieba knows it with 区: a place
    "樱桃成熟了",                       # in the person list only (jieba: a common noun)
    "田间地头的忙碌",                   # likewise
    "丁二烯橡胶价格上涨",               # a chemical the name dictionary tags as a person
    "老师、家长他们都来了",             # a list closed by 他们, of common words
    "北京、上海他们都去过",             # ... of places
    "晴儿、金锁她们也来了",             # one item is a dictionary word: the list is not taken
    "特斯拉发布新款车型",               # brands and places in the transliterated lists, before a verb
    "阿迪达斯推出新款跑鞋",
    "迪士尼开园首日人山人海",
    "乐高推出新品积木",
    "巴黎出现在镜头里",
    "都灵发文纪念",
    "当选伊拉克总统",                   # a country jieba tags as a transliterated name (伊拉克人: a people)
    "科威特也表示支持",
    "西雅图市长出席活动",               # a city in the transliterated list (jieba: 西雅图市), before a title
    "乌兰巴托表示欢迎",                 # cities jieba tags as transliterated names, before a person verb
    "斯图加特宣布新计划",
    "西雅图表示欢迎",
    "一段时间表示关注",                 # jieba person words that are no names, before a person verb
    "黄金周出现在各大景区",
    "深圳文博会签约项目",
    "华坚鞋业招聘",
    "金毛犬出现在草地上",
    "宫保鸡丁的做法",
    "克拉出现在钻石证书上",
    "别克出现在车展",
    "曾多次表示",                       # a surname-like adverb, then an adverb, then a person verb
    "马上回应网友",                     # surname + character make a word
    "高一发文通知",                     # likewise ('高一')
    "向记者表示",                       # a preposition
    "中国队晒出合影",                   # no surname first
    "宁波晒出成绩单",                   # a city before a person verb
    "周一晒出",                         # a time word
    "乐高积木套装",                     # brands, companies, places, dishes, breeds, ordinary words
    "金毛犬的训练方法",
    "巴黎的夜景",
    "一克拉钻戒",
    # CC-CEDICT persons (filters/data/cedict_persons.txt)
    "杰克琼斯牛仔裤",                   # brands built on a given name: another name part glued on
    "杰克丹尼威士忌",
    "玛丽黛佳口红",                     # ... or a name character ('黛')
    "老子天下第一",                     # CC-CEDICT also knows 老子 as 'father': never a name
    "比利时的风景",                     # 比利 (Pelé) heads a place jieba knows: left out
    # (特斯拉发布新款车型 above: CC-CEDICT also knows Tesla as a unit)
])
def test_lookalikes_stay(caption):
    assert texts([caption]) == [caption]


def test_a_name_never_takes_the_word_after_it():
    """Run-on syllables are taken only where no ordinary word starts among them."""
    assert texts(["张伟拉着行李箱", "刘德华登台献唱"]) == ["<人名>拉着行李箱", "<人名>登台献唱"]


def test_a_conjunction_never_ends_a_name():
    """A rare surname and a character, then 和: the span may not take the conjunction to make up
    its two given characters ('班' '舟' '和' was once masked whole: '<人名>荆州市等待')."""
    out = texts(["班舟和荆州市等待", "伍千和太阳参加", "宫洁珊和香港的朋友聚会"])
    assert not out[0].startswith("<人名>荆州") and not out[1].startswith("<人名>太阳")
    assert out[2] == "<人名>和香港的朋友聚会"


def test_no_glued_verb_or_chemical_in_the_built_lists():
    """The name dictionary's entries that are a name glued to a speech verb ('丁好称') or a
    chemical ('丁二烯') are left out of the committed known names by a rule, not a list."""
    from filters.names_resource import _Checks
    from filters.wordlists import bundled, load_lines
    known = {w for line in load_lines("", "known_names.txt") for w in line.split()}
    assert not [w for w in known if len(w) >= 3 and w[-1] in "称说答听"]
    assert not [w for w in known if w[-1] in "烯烷酸酮醇苯胺"]
    assert _Checks.glued_to_verb("郭靖听") and not _Checks.glued_to_verb("李政道")
    assert bundled("known_names.txt").exists()


# --- CC-CEDICT persons (filters/data/cedict_persons.txt) -------------------------------------------

def test_cedict_list_can_be_turned_off():
    """The CC BY-SA list is a config switch: without it, its people are no longer known."""
    off = TextRulesConfig(use_cedict_persons=False)
    captions = ["屈原投江的地方", "谁才是杰克真爱"]
    assert [s.text for s in filter_captions(captions, off)[0]] == captions
    assert texts(captions) == ["<人名>投江的地方", "谁才是<人名>真爱"]


def test_cedict_person_rule():
    """A person entry is read off the first gloss by its shape (name words, then life dates or
    '(name)'), never a dynasty, war, book or place."""
    from filters.names_resource import cedict_kind
    assert cedict_kind("Qu Yuan (340-278 BC), famous Warring States statesman and poet") == "dated"
    assert cedict_kind("Donald Trump (1946-), American business magnate") == "dated"
    assert cedict_kind("Laozi or Lao-tze (c. 500 BC), Chinese philosopher") == "dated"
    assert cedict_kind("Fu Shuo (c. 14th century BC), legendary sage") == "dated"
    assert cedict_kind("Jack (name)") == "name"
    for thing in ("Tang Dynasty (618-907)", "Northern Liang of the Sixteen Kingdoms (398-439)",
                  "Chu-Han Contention (206-202 BC), power struggle", "Boxer Rebellion (1899-1901)",
                  "Nihonshoki or Chronicles of Japan (c. 720) book of mythology",
                  "Yongzheng, reign name of Qing emperor (1722-1735)", "father", "Paris",
                  "Western Zhou (1045-771 BC) and Eastern Zhou (770-256 BC)"):
        assert cedict_kind(thing) == "", thing


def test_cedict_forms_with_another_sense_are_left_out(tmp_path):
    import gzip
    from filters.names_resource import read_cedict
    src = tmp_path / "cedict.txt.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.write("# CC-CEDICT\n"
                 "老子 老子 [Lao3 zi3] /Laozi or Lao-tze (c. 500 BC), Chinese philosopher/\n"
                 "老子 老子 [lao3 zi5] /father/daddy/\n"
                 "屈原 屈原 [Qu1 Yuan2] /Qu Yuan (340-278 BC), famous poet/\n"
                 "哥倫布 哥伦布 [Ge1 lun2 bu4] /Christopher Columbus (1451-1506)/Columbus, capital of Ohio/\n"
                 "傑克 杰克 [Jie2 ke4] /Jack (name)/\n"
                 "唐朝 唐朝 [Tang2 chao2] /Tang dynasty (618-907)/\n")
    assert read_cedict(src) == {"屈原": "dated", "杰克": "name"}
