"""Typed, documented defaults of the filter stage (Wukong's text and image rules)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# The text chain, in order. A rule is one module in filters/rules/ registered under its name in
# filters/rules/__init__.py (the registry, which also validates these names: this module only holds
# them, so the config imports no rule and every rule may import the config).
# Sensitive words are looked for before boilerplate is cut, on the whole caption ('网络-赌博').
DEFAULT_TEXT_RULES = ["normalize", "convert", "sensitive", "boilerplate", "language", "length",
                      "frequency", "privacy"]


@dataclass
class ImageRulesConfig:
    """Wukong: both sides larger than 200 px, aspect ratio within 1/3..3."""

    # Both sides must be strictly larger than this (200x200 is dropped, 201x201 kept).
    min_side: int = 200
    # Longer side / shorter side must be at most this (3:1 kept, 3.01:1 dropped).
    max_aspect_ratio: float = 3.0
    # Optional cap on width*height of the original (0: no cap).
    max_pixels: int = 0


@dataclass
class TextRulesConfig:
    """Wukong's text rules. Each drop has a stable reason code (see filters/reasons.py)."""

    # Rules of the chain, in this order (names of modules in filters/rules/).
    rules: list[str] = field(default_factory=lambda: list(DEFAULT_TEXT_RULES))

    # normalize: NFKC, HTML entities/tags, zero-width/control chars, whitespace; URLs removed too.
    strip_urls: bool = True

    # convert: OpenCC configuration applied after normalisation ("t2s": traditional to simplified).
    opencc_config: str = "t2s"

    # boilerplate (reason boilerplate): web boilerplate as families of words (generic image words,
    # quality words, view/more/detail actions, attributions and takedown notes, page chrome, file
    # names) and as site phrases. A caption made only of such words, in any combination, is dropped
    # ('高清大图', '图片来自网络，侵删', 'IMG_2041.JPG'). A caption that merely contains them keeps
    # its text, less boilerplate segments at its edges: '高清大图：黄山云海日出' -> '黄山云海日出',
    # '风景 | 查看源网页' -> '风景'; '高清风景图片' stays whole (the words are part of the caption).
    # "" = the bundled filters/data/boilerplate_words.txt (words, combined freely).
    boilerplate_words_file: str = ""
    # "" = the bundled filters/data/boilerplate.txt (whole phrases: site names, chrome); '#' comments.
    boilerplate_file: str = ""
    # Phrases added to the file's.
    boilerplate_extra: list[str] = field(default_factory=list)
    # "" = the bundled filters/data/boilerplate_chrome.txt: page chrome as sentence families
    # (calls to scan/follow/subscribe/download, disclaimers, copyright and reprint notices), one
    # regular expression a line. A caption that opens with one is boilerplate whatever follows
    # ('扫描二维码关注公众号，获取最新资讯', '免责声明：本文仅供参考…'); one after punctuation is cut
    # with what follows ('黄山日出。转载请注明出处' -> '黄山日出').
    boilerplate_chrome_file: str = ""
    # Text before a chrome sentence shorter than this (characters of its skeleton) is no caption
    # of its own: the whole caption is boilerplate ('亲，请先点击下方按钮…').
    boilerplate_chrome_min_core: int = 4
    # Boilerplate at a caption's edge is cut when punctuation separates it from the rest, or, where
    # only spaces or nothing separate it, when it is at least this long ('美景 展开全文' loses
    # '展开全文'; '风景 图片' keeps '图片').
    boilerplate_affix_min_chars: int = 4
    # Attribution labels that are kept when something follows them: the credit they start is not
    # boilerplate ('图/陈晓东', '来源：新华社', '摄影：王强').
    boilerplate_credit_labels: list[str] = field(default_factory=lambda: [
        "图", "文", "来源", "图源", "出处", "摄影", "作者", "供图", "图片来源", "图片来自", "图片提供"])

    # language (reason no_chinese): decided by script; fastText (lite model) only where it cannot.
    # At least this many Han characters.
    min_han_chars: int = 1
    # Kana or hangul in words (beside other kana, hangul or Han) make a caption Japanese or Korean
    # whatever its Han share: '奈良公園の鹿' is Japanese. Kana alone among symbols are kaomoji
    # ('(＾▽＾)ノ') and do not count. One exception: Chinese captions borrow these kana for 的
    # ('可爱の猫咪'); a caption whose only kana are these, at most `chinese_kana_max` of them, is
    # Chinese where it also holds a character only Chinese writes (simplified-only, or a Chinese
    # particle such as 吗/呢/很), and Japanese otherwise ('京都嵐山の竹林'; '夏日の小清新' too,
    # written the same way as Japanese '春日の桜').
    chinese_kana: str = "の"
    # At most this many of those kana in a caption that counts as Chinese.
    chinese_kana_max: int = 2
    # Japanese-only kanji (shinjitai, kokuji: 駅, 桜, 満) share of the Han characters at or above
    # which a caption without kana is Japanese ('東京駅'); below it but above zero, the model decides.
    japanese_share: float = 0.3
    # Han characters / (Han characters + Latin words) below which the model decides
    # (e.g. an English sentence with one Chinese word).
    min_han_share: float = 0.4
    # Where the model decides: Chinese (zh, wuu, yue) among its top 3 with at least this score.
    lid_min_zh_score: float = 0.2

    # length (reasons too_short, too_long): characters exclude whitespace; words are jieba words
    # holding a Han character. A 32-token text encoder (one token per Han character, [CLS]/[SEP])
    # reads 30 characters; up to twice that is kept and truncated at training, longer texts are
    # article paragraphs rather than captions. Wukong: at least 1, at most 32 Chinese words.
    min_chars: int = 2
    max_chars: int = 64
    min_words: int = 1
    max_words: int = 32

    # sensitive (reason sensitive): Aho-Corasick over the caption with spaces, punctuation and
    # symbols removed, lower-cased, after t2s. "" = the bundled filters/data/sensitive_words.txt
    # (a small list of the project's own); supply a full list as a file, one word a line.
    sensitive_words_file: str = ""
    # Words added to the file's.
    sensitive_extra: list[str] = field(default_factory=list)
    # Words shorter than this (after normalisation) are ignored: single characters match everywhere.
    sensitive_min_len: int = 2

    # frequency (reason too_frequent): captions (compared without spaces, punctuation and case)
    # seen more than this many times in the whole input are dropped, every occurrence.
    max_occurrences: int = 10

    # privacy (a transformation, counted, never a drop): masks replace what they hide.
    mask_names: bool = True
    mask_phones: bool = True
    mask_emails: bool = True
    mask_id_numbers: bool = True
    name_token: str = "<人名>"
    phone_token: str = "<电话>"
    email_token: str = "<邮箱>"
    id_number_token: str = "<身份证号>"
    # Name tagger tables ("" = bundled file in filters/data/): surnames (single and compound),
    # characters common in given names, words that look like names but are not (places, brands,
    # things), and the title/role words that mark a name beside them.
    surnames_file: str = ""
    given_name_chars_file: str = ""
    name_whitelist_file: str = ""
    name_context_file: str = ""
    # Well-known people masked wherever they stand as a word (scientists, writers, athletes,
    # singers, actors, historical and fictional figures): built offline by
    # `python -m filters.names_resource` from jieba's dictionary and THUOCL's 5,134 best-known
    # figures (MIT); HanLP's transliterated names (Apache-2.0) feed only the transliterated parts
    # masked next to a person word (filters/data/LICENSES.md) ("" = bundled known_names.txt).
    known_names_file: str = ""
    # Name-like places, things and nouns from jieba's dictionary that are never masked unless a title
    # or credit follows ('张家湾', '金毛'), built with the known names ("" = bundled not_names.txt).
    not_names_file: str = ""
    # Transliterated given names and surnames (保罗, 罗斯, 凯西) masked only where a person word stands
    # beside them (title or role, person verb, '·', a name joined by 和/与/、), built with the known
    # names ("" = bundled context_names.txt).
    context_names_file: str = ""
    # People from CC-CEDICT (dated persons masked anywhere, given names standing alone, the rest
    # beside a person word), built by `python -m filters.names_resource --cedict`. The list is
    # CC BY-SA 4.0, not Apache-2.0 like the code: turn it off (false) to ship or use without it
    # ("" = bundled cedict_persons.txt).
    use_cedict_persons: bool = True
    cedict_persons_file: str = ""
    # Names added to the known names (your own well-known people).
    known_names_extra: list[str] = field(default_factory=list)
    # Given-name characters after a surname (Chinese given names have one or two: 王小明, 欧阳娜娜).
    name_max_given_chars: int = 2
    # The same where a title or role word closes the name, so its end is certain: the whole span is
    # masked, never part of it ('（司马伟秀英摄）', '作者李强娜').
    name_max_given_chars_titled: int = 4
    # jieba dictionary frequency from which a word not tagged as a person name is an ordinary word,
    # never a name, even beside a title word ('摄影师白天拍摄'); rarer words may be names (黄洋).
    name_common_word_freq: int = 100

    # The surname table lists single surnames by how many people bear them; the first this many
    # are common. A rare surname followed by one character, with no title, dictionary entry or
    # known name to back it, is not taken for a name ('谷歌', '蓝星' are words jieba lacks).
    name_common_surnames: int = 100

    # Captions whose results one worker remembers: web captions repeat (boilerplate, stock titles)
    # and a repeat then costs a lookup instead of the whole chain. 0 switches it off.
    memo_size: int = 20_000

    def problems(self) -> list[str]:
        """Missing word lists, in words. Rule names are checked by the registry
        (`filters.rules.problems`), which knows the rules."""
        out = []
        for name in ("boilerplate_file", "boilerplate_words_file", "boilerplate_chrome_file", "sensitive_words_file", "surnames_file",
                     "given_name_chars_file", "name_whitelist_file", "name_context_file",
                     "known_names_file", "not_names_file", "context_names_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                out.append(f"filter.text.{name}: file not found: {path}")
        return out


@dataclass
class FilterConfig:
    text: TextRulesConfig = field(default_factory=TextRulesConfig)
    image: ImageRulesConfig = field(default_factory=ImageRulesConfig)
    # Input column holding the caption.
    caption_col: str = "caption"
    # Rows per partition (one Ray task each).
    rows_per_partition: int = 50_000
    # Reduce tasks of the global caption count (0: one per CPU Ray sees).
    frequency_reducers: int = 0
    # (key, count) pairs one frequency reduce task holds at most (16 bytes each: ~128 MB), so its
    # memory stays bounded whatever the input size; more distinct captions mean more reduce tasks.
    keys_per_reducer: int = 8_000_000
    # Directory of jieba's dictionary cache ("" = .cache/jieba under the working directory).
    jieba_cache_dir: str = ""
