"""Our re-assembled CLIP encoders equal HF's own forward where both are defined; shapes of OLP/SIE."""
import pytest
import torch

from reid.models.clip_loader import ModelWeightsError, load_clip
from reid.models.prompt_learner import PromptLearner
from reid.models.reid_model import ReIDModel
from reid.models.text_encoder import TextEncoder
from reid.models.tokenizer import clip_tokenizer, tokenize
from reid.models.vit_encoder import ClipViTEncoder, SideInformationEmbedding, grid_size, resize_pos_embed


def test_template_token_ids_match_spec():
    ids = tokenize(clip_tokenizer(), ["A photo of a X X X X person.", "A photo of a X X X X vehicle."])
    assert ids[0, :12].tolist() == [49406, 320, 1125, 539, 320, 343, 343, 343, 343, 2533, 269, 49407]
    assert int(ids[1, 9]) == 5299 and int(ids[0].argmax()) == 11


def test_text_encoder_equals_hf_text_features(tiny_clip):
    ids = tokenize(clip_tokenizer(), ["a person in a red shirt", "A photo of a X X X X person."])
    enc = TextEncoder(tiny_clip.text_model, tiny_clip.text_projection)
    with torch.no_grad():
        ours = enc(tiny_clip.text_model.embeddings.token_embedding(ids), ids.argmax(dim=1))
        hf = tiny_clip.get_text_features(input_ids=ids)
        hf = hf.pooler_output if hasattr(hf, "pooler_output") else hf
    torch.testing.assert_close(ours, hf, atol=1e-5, rtol=1e-5)


def test_vit_encoder_equals_hf_at_native_size(tiny_clip):
    enc = ClipViTEncoder(tiny_clip.vision_model, tiny_clip.visual_projection, (32, 32), stride=8, mid_depth=2)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        f_mid, f_last, f_proj = enc(x)
        hf = tiny_clip.vision_model(pixel_values=x, output_hidden_states=True)
        proj = tiny_clip.visual_projection(hf.pooler_output)
    torch.testing.assert_close(f_last, hf.pooler_output, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(f_proj, proj, atol=1e-5, rtol=1e-5)
    assert f_mid.shape == (2, 32)


def test_position_table_resize_and_olp_grid(tiny_clip):
    assert grid_size((256, 128), 16, 16) == (16, 8) and grid_size((256, 128), 16, 12) == (21, 10)
    assert grid_size((256, 256), 16, 12) == (21, 21)
    table = tiny_clip.vision_model.embeddings.position_embedding.weight.detach()
    same = resize_pos_embed(table, (4, 4))
    torch.testing.assert_close(same, table)  # bilinear to the same grid is the identity
    enc = ClipViTEncoder(tiny_clip.vision_model, tiny_clip.visual_projection, (64, 32), stride=6, mid_depth=2)
    assert enc.pos_embed.shape == (1 + 10 * 5, 32)  # (64-8)//6+1=10, (32-8)//6+1=5
    torch.testing.assert_close(enc.pos_embed[0], table[0])  # class row untouched
    out = enc(torch.randn(2, 3, 64, 32))
    assert [t.shape for t in out] == [(2, 32), (2, 32), (2, 32)]


def test_sie_changes_only_class_token_and_checks_range(tiny_clip):
    sie = SideInformationEmbedding(32, num_cams=3, num_views=2, use_camera=True, use_view=True, coefficient=1.0)
    assert sie.table.shape == (6, 32)
    enc = ClipViTEncoder(tiny_clip.vision_model, tiny_clip.visual_projection, (32, 32), 8, 2, sie=sie)
    x = torch.randn(2, 3, 32, 32)
    cams, views = torch.tensor([0, 2]), torch.tensor([1, 0])
    with torch.no_grad():
        e_with = enc.embed(x, cams, views)
        e_without = enc.embed(x, None, None)
    diff = (e_with - e_without).abs().sum(dim=-1)
    assert bool((diff[:, 0] > 0).all()) and float(diff[:, 1:].max()) == 0.0
    with pytest.raises(IndexError, match="camera id out of range"):
        enc.embed(x, torch.tensor([0, 3]), views)


def test_prompt_learner_gradients_and_shapes(tiny_clip):
    tok = clip_tokenizer()
    ids = tokenize(tok, ["A photo of a X X X X person."])[0]
    pl = PromptLearner(5, ids, 343, 4, tiny_clip.text_model.embeddings.token_embedding, 0.02, truncate_after_eot=False)
    enc = TextEncoder(tiny_clip.text_model, tiny_clip.text_projection)
    for p in tiny_clip.parameters():
        p.requires_grad_(False)
    prompts = pl(torch.tensor([0, 3, 3]))
    assert prompts.shape == (3, 77, 32) and pl.eot_index == 11
    torch.testing.assert_close(prompts[1], prompts[2])
    enc(prompts, pl.eot_index).sum().backward()
    grad = pl.cls_ctx.grad
    assert grad is not None and bool((grad[[0, 3]].abs().sum(dim=(1, 2)) > 0).all())
    assert float(grad[[1, 2, 4]].abs().sum()) == 0.0  # only the identities in the batch move
    assert all(p.grad is None for p in tiny_clip.parameters())


def test_reid_model_descriptor(tiny_clip):
    enc = ClipViTEncoder(tiny_clip.vision_model, tiny_clip.visual_projection, (32, 32), 8, 2)
    model = ReIDModel(enc, num_classes=7, classifier_std=0.001).eval()
    x = torch.randn(3, 3, 32, 32)
    desc = model(x)
    assert desc.shape == (3, 64)
    _, f_last, f_proj = enc(x)
    torch.testing.assert_close(desc, torch.cat([f_last, f_proj], 1))
    model.train()
    out = model(x)
    assert [lg.shape for lg in out.logits] == [(3, 7), (3, 7)] and len(out.triplet_feats) == 3
    assert not model.head.bn.bias.requires_grad


def test_missing_weights_error_names_model_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelWeightsError) as err:
        load_clip("openai/clip-vit-base-patch16")
    assert "openai/clip-vit-base-patch16" in str(err.value) and "cache" in str(err.value)
    with pytest.raises(ModelWeightsError) as err:
        load_clip(str(tmp_path / "nope"))
    assert str(tmp_path / "nope") in str(err.value)


def test_save_pretrained_round_trip(tiny_clip, tmp_path):
    tiny_clip.save_pretrained(tmp_path / "m")
    again = load_clip(str(tmp_path / "m"), attn_implementation="eager").eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a = tiny_clip.vision_model(pixel_values=x).pooler_output
        b = again.vision_model(pixel_values=x).pooler_output
    torch.testing.assert_close(a, b)


def test_truncating_prompts_after_eot_is_exact(tiny_clip):
    ids = tokenize(clip_tokenizer(), ["A photo of a X X X X vehicle."])[0]
    emb = tiny_clip.text_model.embeddings.token_embedding
    torch.manual_seed(1)
    full = PromptLearner(3, ids, 343, 4, emb, 0.02, truncate_after_eot=False)
    short = PromptLearner(3, ids, 343, 4, emb, 0.02, truncate_after_eot=True)
    short.cls_ctx.data.copy_(full.cls_ctx.data)
    enc = TextEncoder(tiny_clip.text_model, tiny_clip.text_projection)
    labels = torch.tensor([0, 2, 1])
    assert full(labels).shape[1] == 77 and short(labels).shape[1] == 12
    with torch.no_grad():
        torch.testing.assert_close(
            enc(short(labels), short.eot_index), enc(full(labels), full.eot_index), atol=1e-5, rtol=1e-5
        )
