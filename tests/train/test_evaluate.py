"""Retrieval ranks in blocks, recall definitions, class-name files and templates."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from train.config import EvalConfig, TrainConfig
from train.evaluate import EvalInputError, _ranks, load_classes, load_templates, recall_summary
from train.model import build_model, resolve_arch


def model(head: str):
    return build_model(resolve_arch(TrainConfig(head=head), vocab_size=100, pad_id=0, sep_id=3))


def test_ranks_are_exact_and_independent_of_the_block_size():
    torch.manual_seed(0)
    n = 23
    img = torch.nn.functional.normalize(torch.randn(n, 16), dim=-1)
    txt = torch.nn.functional.normalize(img + 0.8 * torch.randn(n, 16), dim=-1)
    m = model("global")
    full = _ranks(m, {"image": img}, {"text": txt}, EvalConfig(block_size=1000))
    small = _ranks(m, {"image": img}, {"text": txt}, EvalConfig(block_size=4))
    assert torch.equal(full[0], small[0]) and torch.equal(full[1], small[1])
    s = img @ txt.t()
    expect_i2t = torch.tensor([(s[i] > s[i, i]).sum() for i in range(n)])
    expect_t2i = torch.tensor([(s[:, j] > s[j, j]).sum() for j in range(n)])
    assert torch.equal(full[0], expect_i2t) and torch.equal(full[1], expect_t2i)


def test_ties_count_against_the_model():
    m = model("global")
    same = torch.ones(10, 4) / 2
    i2t, t2i = _ranks(m, {"image": same}, {"text": same}, EvalConfig())
    r = recall_summary(i2t, t2i, (1, 5, 10))
    # A model that scores everything alike ranks each true pair last, never first.
    assert r["i2t_R@1"] == 0.0 and r["t2i_R@5"] == 0.0 and r["i2t_R@10"] == 1.0


def test_tokenwise_ranks_in_blocks_match():
    torch.manual_seed(1)
    m = model("tokenwise")
    n = 9
    img = {"image_tokens": torch.nn.functional.normalize(torch.randn(n, 4, 8), dim=-1).half()}
    txt = {"text_tokens": torch.nn.functional.normalize(torch.randn(n, 5, 8), dim=-1).half(),
           "text_mask": torch.rand(n, 5) > 0.3}
    txt["text_mask"][:, 1] = True
    a = _ranks(m, img, txt, EvalConfig(block_size=1000))
    b = _ranks(m, img, txt, dataclasses.replace(EvalConfig(block_size=2), max_block_elements=50))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    perfect = recall_summary(torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long), (1, 5))
    assert perfect["mean_recall"] == 1.0


def test_classnames_and_templates(tmp_path):
    for name in ("b_dog", "a_cat"):
        (tmp_path / "imgs" / name).mkdir(parents=True)
    names = tmp_path / "names.txt"
    names.write_text("猫\n狗\n", encoding="utf-8")
    assert [n for n, _ in load_classes(tmp_path / "imgs", names)] == ["猫", "狗"]
    assert load_classes(tmp_path / "imgs", names)[0][1].name == "a_cat"
    names.write_text("b_dog\t狗\na_cat\t猫\n", encoding="utf-8")
    assert [(n, f.name) for n, f in load_classes(tmp_path / "imgs", names)] == [("狗", "b_dog"), ("猫", "a_cat")]
    names.write_text("猫\n", encoding="utf-8")
    with pytest.raises(EvalInputError, match="1 class names"):
        load_classes(tmp_path / "imgs", names)
    names.write_text("c_cow\t牛\n", encoding="utf-8")
    with pytest.raises(EvalInputError, match="c_cow"):
        load_classes(tmp_path / "imgs", names)
    bundled = load_templates()
    assert len(bundled) >= 40 and all("{}" in t for t in bundled) and len(set(bundled)) == len(bundled)
    bad = tmp_path / "t.txt"
    bad.write_text("没有占位符\n", encoding="utf-8")
    with pytest.raises(EvalInputError):
        load_templates(str(bad))
