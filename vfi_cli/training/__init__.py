"""Training only (`vfi train-vqgan`, `vfi train-ldm`); the inference path never imports it.

data (Vimeo-90k and video triplets), synthetic (procedural triplets with known motion), augment
(one random transform per triplet; seeded datasets), losses (L1, SSIM, census, PatchGAN, optional
VGG perceptual), objectives (what each stage minimises, and how it saves), crop (the default
crop), loop (the DDP-aware loop: EMA, atomic checkpoints, exact resume, Ctrl-C).
"""
