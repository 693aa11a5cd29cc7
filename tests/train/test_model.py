"""Tokenizer, towers, heads and loss: the properties the trainer relies on."""

from __future__ import annotations

import open_clip
import pytest
import torch

from train.config import TrainConfig
from train.heads import TokenReducer, tokenwise_similarity
from train.loss import ContrastiveLoss
from train.model import ModelError, build_model, resolve_arch
from train.tokenizer import TokenizerError, build_tokenizer

CAPTIONS = ["一只红色的猫坐在窗台上", "三个蓝色的五角星", "高清壁纸 风景 4k", "Hello 世界"]


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer("", CAPTIONS * 10, 32, 21128)


def test_tokenizer_is_bert_chinese_style(tok):
    ids = tok(["三个蓝色的五角星", "长" * 100])
    assert ids.shape == (2, 32)
    first = ids[0].tolist()
    assert first[0] == tok.cls_id and first[9] == tok.sep_id and set(first[10:]) == {tok.pad_id}
    assert len(set(first[1:9])) == 8  # one token per character
    # Truncation keeps [SEP] at the last position.
    assert ids[1, 0] == tok.cls_id and ids[1, -1] == tok.sep_id
    # A CJK character absent from the captions still has its own id, not [UNK].
    assert tok(["龘"])[0, 1] not in (tok.unk_id, tok.pad_id)
    assert 20_000 < tok.vocab_size <= 21128


def test_tokenizer_must_fit_the_model():
    with pytest.raises(TokenizerError, match="raise train.vocab_size"):
        build_tokenizer("", CAPTIONS, 32, 21000)


def make(head: str, tok, **kw):
    cfg = TrainConfig(head=head, **kw)
    return build_model(resolve_arch(cfg, vocab_size=tok.vocab_size, pad_id=tok.pad_id, sep_id=tok.sep_id))


def test_text_pooling_takes_the_sep_position(tok):
    torch.manual_seed(0)
    m = make("tokenwise", tok).eval()
    text = torch.from_numpy(tok(["一只红色的猫", "三个蓝色的五角星和一个圆"]))
    with torch.no_grad():
        out = m.encode_text(text)
    sep = (text == tok.sep_id).int().argmax(dim=1)
    # The pooled feature is the projected token output at [SEP] (open_clip's argmax would pick the
    # highest id: a CJK character here).
    assert torch.allclose(out["text"], out["text_tokens"][torch.arange(2), sep], atol=1e-5)
    assert not torch.equal(sep, text.argmax(dim=1))
    # The mask excludes [CLS] and padding.
    assert out["text_mask"][0].tolist() == [False] + [True] * 7 + [False] * 24


def test_tokenwise_similarity_matches_definition_and_ignores_padding():
    torch.manual_seed(1)
    img = torch.nn.functional.normalize(torch.randn(3, 5, 8), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(4, 6, 8), dim=-1)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [0, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]]).bool()
    i2t, t2i = tokenwise_similarity(img, txt, mask, chunk=3)
    for i in range(3):
        for j in range(4):
            sim = img[i] @ txt[j][mask[j]].t()               # (P, valid Q)
            assert i2t[i, j] == pytest.approx(float(sim.max(dim=1).values.mean()), abs=1e-5)
            assert t2i[i, j] == pytest.approx(float(sim.max(dim=0).values.mean()), abs=1e-5)
    txt2 = txt.clone()
    txt2[~mask] = 5.0  # garbage in padded slots changes nothing
    a, b = tokenwise_similarity(img, txt2, mask)
    assert torch.allclose(a, i2t) and torch.allclose(b, t2i)


def test_token_reducer_outputs_k_tokens():
    r = TokenReducer(dim=32, num_tokens=6, groups=8)
    out = r(torch.randn(2, 49, 32))
    assert out.shape == (2, 6, 32)
    with pytest.raises(ValueError, match="divide"):
        TokenReducer(dim=30, num_tokens=6, groups=8)


@pytest.mark.parametrize("head", ["global", "tokenwise", "reduced"])
def test_each_head_lowers_the_loss_on_a_fixed_batch(head, tok):
    torch.manual_seed(0)
    m = make(head, tok)
    loss_fn = ContrastiveLoss(head, 64)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    images = torch.randn(8, 3, 64, 64)
    text = torch.from_numpy(tok([f"{c}号图片{n}" for c, n in zip("一二三四五六七八", CAPTIONS * 2)]))
    losses = []
    for _ in range(8):
        loss = loss_fn(m(images, text), m.logit_scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0] * 0.7


def test_reduced_head_uses_k_image_tokens(tok):
    m = make("reduced", tok, reduced_tokens=5)
    out = m.encode_image(torch.randn(2, 3, 64, 64))
    assert out["image_tokens"].shape == (2, 5, 128)


def test_presets_match_the_paper_sizes(tok):
    arch = resolve_arch(TrainConfig(model="vit-b-32", head="reduced"), vocab_size=tok.vocab_size, pad_id=0,
                        sep_id=tok.sep_id)
    assert arch.embed_dim == 256 and arch.reduced_tokens == 12 and arch.text_cfg["layers"] == 12
    assert arch.text_cfg["width"] == 512 and arch.text_cfg["heads"] == 8 and arch.text_cfg["context_length"] == 32
    big = resolve_arch(TrainConfig(model="vit-l-14", head="reduced"), vocab_size=1, pad_id=0, sep_id=3)
    assert big.reduced_tokens == 24 and big.text_cfg["width"] == 768 and big.vision_cfg["patch_size"] == 14
    with pytest.raises(ModelError, match="unknown model"):
        resolve_arch(TrainConfig(model="vit-h"), vocab_size=1, pad_id=0, sep_id=3)


def test_global_towers_without_stem_load_in_open_clip(tok):
    m = make("global", tok, conv_stem=False)
    clip = open_clip.CLIP(**m.arch.open_clip_cfg())
    clip.load_state_dict(m.clip.state_dict())  # strict: same keys, same shapes
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = m.encode_image(x)["image"]
        theirs = clip.encode_image(x, normalize=True)
    assert torch.allclose(ours, theirs, atol=1e-5)
