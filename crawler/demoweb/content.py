"""What the demo web's images show and what their captions say.

Two kinds of image, each drawn so that its caption is true:
- `shape`: 1-4 filled shapes of one colour (circle, square, triangle, star, hexagon) of varied
  sizes, positions and rotations on varied backgrounds (flat, gradient, noise, stripes), drawn
  with Pillow; labels shape, colour, count.
- `photo`: crops, flips and colour jitter of the real photos bundled with scikit-image
  (cat, coffee, astronaut, rocket, motorcycle, coins, moon, galaxy); label object.
Captions come from several templates per kind, with the class words in several synonyms, so no
single string identifies a class. Translations (English, Japanese, Korean) make the captions of
the wrong-language categories.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

SHAPES = {
    "circle": {"zh": ["圆形", "圆", "圆点"], "en": "circle", "ja": "円", "ko": "원"},
    "square": {"zh": ["正方形", "方块", "方形"], "en": "square", "ja": "四角形", "ko": "정사각형"},
    "triangle": {"zh": ["三角形", "三角"], "en": "triangle", "ja": "三角形", "ko": "삼각형"},
    "star": {"zh": ["星形", "五角星", "星星"], "en": "star", "ja": "星", "ko": "별"},
    "hexagon": {"zh": ["六边形", "六角形"], "en": "hexagon", "ja": "六角形", "ko": "육각형"},
}
COLOURS = {
    "red": {"rgb": (215, 35, 35), "zh": ["红色", "红"], "en": "red", "ja": "赤い", "ko": "빨간"},
    "green": {"rgb": (35, 150, 55), "zh": ["绿色", "绿"], "en": "green", "ja": "緑の", "ko": "초록색"},
    "blue": {"rgb": (35, 75, 215), "zh": ["蓝色", "蓝"], "en": "blue", "ja": "青い", "ko": "파란"},
    "yellow": {"rgb": (240, 205, 25), "zh": ["黄色", "黄"], "en": "yellow", "ja": "黄色い", "ko": "노란"},
    "purple": {"rgb": (135, 50, 175), "zh": ["紫色", "紫"], "en": "purple", "ja": "紫の", "ko": "보라색"},
    "orange": {"rgb": (245, 130, 25), "zh": ["橙色", "橘色"], "en": "orange", "ja": "オレンジの", "ko": "주황색"},
    "black": {"rgb": (25, 25, 25), "zh": ["黑色", "黑"], "en": "black", "ja": "黒い", "ko": "검은"},
    "white": {"rgb": (248, 248, 248), "zh": ["白色", "白"], "en": "white", "ja": "白い", "ko": "흰"},
}
COUNTS = {
    1: {"zh": ["一个", "1个", "单个"], "en": "one", "ja": "一つ", "ko": "한 개"},
    2: {"zh": ["两个", "2个", "一对"], "en": "two", "ja": "二つ", "ko": "두 개"},
    3: {"zh": ["三个", "3个"], "en": "three", "ja": "三つ", "ko": "세 개"},
    4: {"zh": ["四个", "4个"], "en": "four", "ja": "四つ", "ko": "네 개"},
}
PHOTOS = {
    "cat": {"source": "chelsea", "zh": ["猫", "猫咪", "小猫"], "en": "a cat", "ja": "猫の写真です", "ko": "고양이",
            "templates": ["一只{adj}{name}", "{name}的特写照片", "趴着看镜头的{name}", "{adj}{name}，{extra}",
                          "家里的{name}", "{name}在休息"],
            "adj": ["橘色的", "可爱的", "慵懒的", "毛茸茸的"]},
    "coffee": {"source": "coffee", "zh": ["咖啡", "拿铁", "咖啡杯"], "en": "a cup of coffee", "ja": "コーヒーの写真です",
               "ko": "커피", "templates": ["一杯{adj}{name}", "桌上的{name}", "{name}拉花", "{adj}{name}，{extra}",
                                         "早餐的{name}", "{name}和杯碟"],
               "adj": ["热的", "香浓的", "刚做好的", "美味的"]},
    "astronaut": {"source": "astronaut", "zh": ["宇航员", "航天员"], "en": "an astronaut", "ja": "宇宙飛行士の写真です",
                  "ko": "우주비행사", "templates": ["{name}的肖像", "穿着航天服的{name}", "{adj}{name}", "{name}，{extra}",
                                              "一位{name}的照片", "{name}和国旗"],
                  "adj": ["微笑的", "年轻的", "著名的"]},
    "rocket": {"source": "rocket", "zh": ["火箭", "运载火箭"], "en": "a rocket", "ja": "ロケットの写真です", "ko": "로켓",
               "templates": ["发射台上的{name}", "{adj}{name}", "{name}准备发射", "{name}，{extra}",
                             "即将升空的{name}", "{name}和发射塔"],
               "adj": ["巨大的", "白色的", "待发射的"]},
    "motorcycle": {"source": "stereo_motorcycle", "zh": ["摩托车", "机车"], "en": "a motorcycle", "ja": "バイクの写真です",
                   "ko": "오토바이", "templates": ["一辆{adj}{name}", "停着的{name}", "{name}的侧面", "{name}，{extra}",
                                                 "车库里的{name}", "{name}特写"],
                   "adj": ["红色的", "漂亮的", "崭新的"]},
    "coins": {"source": "coins", "zh": ["硬币", "钱币"], "en": "old coins", "ja": "コインの写真です", "ko": "동전",
              "templates": ["一堆{name}", "桌上的{adj}{name}", "{name}收藏", "{name}，{extra}",
                            "排列整齐的{name}", "许多{name}"],
              "adj": ["旧", "古老的", "黑白的"]},
    "moon": {"source": "moon", "zh": ["月球", "月亮"], "en": "the moon", "ja": "月の写真です", "ko": "달",
             "templates": ["{name}表面", "{adj}{name}", "{name}上的环形山", "{name}，{extra}",
                           "望远镜拍摄的{name}", "{name}的照片"],
             "adj": ["黑白的", "明亮的", "近距离的"]},
    "galaxy": {"source": "hubble_deep_field", "zh": ["星系", "星空"], "en": "galaxies", "ja": "銀河の写真です",
               "ko": "은하", "templates": ["哈勃拍摄的{name}", "{adj}{name}", "深空中的{name}", "{name}，{extra}",
                                         "宇宙里的{name}", "遥远的{name}"],
               "adj": ["美丽的", "灿烂的", "神秘的"]},
}
PHOTO_EXTRA = ["高清", "实拍", "摄影作品", "精选", "原图", "壁纸", "素材"]
SHAPE_TEMPLATES = [
    "{n}{c}的{s}", "{n}{c}{s}", "画面中有{n}{c}的{s}", "{bg}背景上的{n}{c}{s}", "{c}{s}，一共{num}个",
    "简笔画：{n}{c}{s}", "这张图里有{n}{c}{s}", "{n}{s}，颜色是{c}", "{bg}底色上画着{n}{c}{s}",
    "几何图形：{n}{c}{s}",
]
BACKGROUND_ZH = {"light": ["浅色", "白色", "明亮"], "dark": ["深色", "暗色", "黑色"]}
NUM_ZH = {1: "一", 2: "两", 3: "三", 4: "四"}

# Backgrounds: light and dark neutral tones; a shape colour too close to one is not drawn on it.
BACKGROUNDS = {
    "light": [(238, 238, 232), (225, 230, 238), (242, 232, 215), (220, 235, 225), (235, 225, 235)],
    "dark": [(45, 48, 55), (60, 45, 40), (35, 55, 50), (55, 55, 70), (70, 60, 50)],
}
_MIN_CONTRAST = 140


@dataclass
class Drawing:
    """An image with the labels it shows."""

    image: Image.Image
    kind: str
    labels: dict = field(default_factory=dict)


def _colour_distance(a, b) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def _jitter(rgb, rng: random.Random, amount: int = 18):
    return tuple(max(0, min(255, v + rng.randint(-amount, amount))) for v in rgb)


def _background(w: int, h: int, shade: str, shape_rgb, rng: random.Random) -> Image.Image:
    tones = [t for t in BACKGROUNDS[shade] if _colour_distance(t, shape_rgb) >= _MIN_CONTRAST]
    base = _jitter(rng.choice(tones or BACKGROUNDS[shade]), rng, 10)
    style = rng.choice(["flat", "gradient", "noise", "stripes"])
    arr = np.empty((h, w, 3), dtype=np.float32)
    arr[:] = base
    if style == "gradient":
        other = np.array(_jitter(base, rng, 30), dtype=np.float32)
        t = np.linspace(0, 1, h if rng.random() < 0.5 else w, dtype=np.float32)
        ramp = (t[:, None, None] if len(t) == h else t[None, :, None])
        arr = arr * (1 - ramp) + other * ramp
    elif style == "noise":
        arr += np.random.default_rng(rng.getrandbits(32)).normal(0, 9, size=(h, w, 1)).astype(np.float32)
    elif style == "stripes":
        period = rng.randint(12, 40)
        idx = (np.arange(w if rng.random() < 0.5 else h) // period) % 2
        band = (idx * rng.choice([-12, 12])).astype(np.float32)
        arr += band[None, :, None] if len(idx) == w else band[:, None, None]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        pts = [(math.cos(angle + math.pi / 4 + i * math.pi / 2), math.sin(angle + math.pi / 4 + i * math.pi / 2))
               for i in range(4)]
    elif shape == "triangle":
        pts = [(math.cos(angle + i * 2 * math.pi / 3), math.sin(angle + i * 2 * math.pi / 3)) for i in range(3)]
    elif shape == "hexagon":
        pts = [(math.cos(angle + i * math.pi / 3), math.sin(angle + i * math.pi / 3)) for i in range(6)]
    elif shape == "star":
        pts = []
        for i in range(10):
            rr = 1.0 if i % 2 == 0 else 0.42
            a = angle + i * math.pi / 5
            pts.append((rr * math.cos(a), rr * math.sin(a)))
    else:
        raise ValueError(shape)
    return [(cx + r * x, cy + r * y) for x, y in pts]


def draw_shapes(rng: random.Random, size: tuple[int, int], shape: str, colour: str, count: int,
                shade: str | None = None) -> Drawing:
    """`count` shapes of one colour, not overlapping, sizes/positions/rotations drawn from `rng`."""
    w, h = size
    rgb = _jitter(COLOURS[colour]["rgb"], rng)
    if shade is None:
        # White shapes need a dark ground, black ones a light one; others either.
        shade = "dark" if colour in ("white", "yellow") and rng.random() < 0.8 else \
                "light" if colour in ("black", "purple", "blue") else rng.choice(["light", "dark"])
    img = _background(w, h, shade, rgb, rng)
    draw = ImageDraw.Draw(img)
    placed: list[tuple[float, float, float]] = []
    side = min(w, h)
    for _ in range(count):
        for _attempt in range(200):
            r = side * rng.uniform(0.09, 0.24 if count <= 2 else 0.17)
            cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
            if all(math.hypot(cx - x, cy - y) > (r + rr) * 1.08 for x, y, rr in placed):
                break
        placed.append((cx, cy, r))
        if shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=rgb)
        else:
            draw.polygon(_polygon(shape, cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=rgb)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    return Drawing(img, "shape", {"shape": shape, "colour": colour, "count": count, "background": shade})


_PHOTO_CACHE: dict[str, np.ndarray] = {}
# Photo crops keep at least this share of the photo's contrast (pixel standard deviation),
# tried this many times.
_MIN_CROP_STD_SHARE = 0.75
_CROP_TRIES = 30


def _photo_array(source: str) -> np.ndarray:
    if source not in _PHOTO_CACHE:
        import skimage.data

        arr = getattr(skimage.data, source)()
        if isinstance(arr, tuple):
            arr = arr[0]
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        _PHOTO_CACHE[source] = np.ascontiguousarray(arr[..., :3].astype(np.uint8))
    return _PHOTO_CACHE[source]


def draw_photo(rng: random.Random, size: tuple[int, int], obj: str) -> Drawing:
    """A random crop (45-90% of the photo), flip and colour jitter of a bundled photo."""
    arr = _photo_array(PHOTOS[obj]["source"])
    ph, pw = arr.shape[:2]
    w, h = size
    scale = rng.uniform(0.45, 0.9)
    cw = min(pw, int(pw * scale))
    ch = min(ph, int(cw * h / w))
    if ch > ph:
        ch = ph
        cw = int(ch * w / h)
    min_std = _MIN_CROP_STD_SHARE * float(arr.std())
    for _ in range(_CROP_TRIES):
        x0, y0 = rng.randint(0, pw - cw), rng.randint(0, ph - ch)
        crop = arr[y0:y0 + ch, x0:x0 + cw]
        # A featureless corner (sky, the dark side of the moon) does not show the object.
        if crop.std() >= min_std:
            break
    else:
        crop = arr
    img = Image.fromarray(crop).resize((w, h), Image.Resampling.BICUBIC)
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.3:
        img = img.rotate(rng.uniform(-8, 8), resample=Image.Resampling.BICUBIC, expand=False)
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.85, 1.2))
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.7, 1.3))
    return Drawing(img, "photo", {"object": obj})


def random_drawing(rng: random.Random, size: tuple[int, int], photo_share: float) -> Drawing:
    if rng.random() < photo_share:
        return draw_photo(rng, size, rng.choice(sorted(PHOTOS)))
    return draw_shapes(rng, size, rng.choice(sorted(SHAPES)), rng.choice(sorted(COLOURS)), rng.randint(1, 4))


def encode(img: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.convert("RGB").save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, fmt)
    return buf.getvalue()


# ---------------------------------------------------------------- captions

def caption_zh(rng: random.Random, d: Drawing) -> str:
    if d.kind == "shape":
        lab = d.labels
        text = rng.choice(SHAPE_TEMPLATES).format(
            n=rng.choice(COUNTS[lab["count"]]["zh"]), c=rng.choice(COLOURS[lab["colour"]]["zh"]),
            s=rng.choice(SHAPES[lab["shape"]]["zh"]), num=NUM_ZH[lab["count"]] if rng.random() < 0.5 else lab["count"],
            bg=rng.choice(BACKGROUND_ZH[lab["background"]]))
        # "一对" is already a count of two: "一对的" reads badly, so drop the particle.
        return text.replace("一对的", "一对")
    spec = PHOTOS[d.labels["object"]]
    return rng.choice(spec["templates"]).format(name=rng.choice(spec["zh"]), adj=rng.choice(spec["adj"]),
                                                extra=rng.choice(PHOTO_EXTRA))


def caption_foreign(d: Drawing, lang: str) -> str:
    if d.kind == "photo":
        return PHOTOS[d.labels["object"]][lang] if lang != "en" else f"a photo of {PHOTOS[d.labels['object']]['en']}"
    lab = d.labels
    n, c, s = COUNTS[lab["count"]][lang], COLOURS[lab["colour"]][lang], SHAPES[lab["shape"]][lang]
    if lang == "en":
        return f"{n} {c} {s}{'s' if lab['count'] > 1 else ''} on a {lab['background']} background"
    if lang == "ja":
        return f"{c}{s}が{n}あります"
    return f"{c} {s} {n}"


def caption_mixed(rng: random.Random, d: Drawing) -> str:
    """Chinese with a few English words or tags, as web captions often are; still a Chinese caption."""
    word = english_word(d)
    return rng.choice([f"{caption_zh(rng, d)} HD", f"{caption_zh(rng, d)} {word}", f"【{caption_zh(rng, d)}】4K",
                       f"{caption_zh(rng, d)} #{word}"])


def english_word(d: Drawing) -> str:
    return SHAPES[d.labels["shape"]]["en"] if d.kind == "shape" else PHOTOS[d.labels["object"]]["en"].split()[-1]


def class_names_zh(task: str) -> dict[str, str]:
    """Folder name -> Chinese class name for the zero-shot tasks."""
    if task == "shape":
        return {k: v["zh"][0] for k, v in SHAPES.items()}
    if task == "colour":
        return {k: v["zh"][0] for k, v in COLOURS.items()}
    if task == "count":
        return {f"{k}": v["zh"][0] for k, v in COUNTS.items()}
    if task == "object":
        return {k: v["zh"][0] for k, v in PHOTOS.items()}
    raise ValueError(f"unknown task {task!r} (shape, colour, count, object)")
