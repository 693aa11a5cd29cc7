"""Contrastive pretraining (CLIP, FILIP, Wukong reduced-token, LiT) and evaluation."""
