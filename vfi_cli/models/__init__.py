"""The networks and what runs them, inference and training alike; no I/O, no av.

config (typed, frozen dataclasses; JSON in and out), layers, motion (the parameter-free block
matcher), autoencoder (posterior encoder + interpolating flow decoder), denoiser (the latent
U-Net), schedulers (DDPM / DDIM / DPM-Solver++), sampling (the sampler loop), checkpoint (model
directories: config.json + model.safetensors). Conventions: frames are float [B, 3, H, W] in
[-1, 1]; flows are [B, 2, H, W] in pixels (dx, dy), backward (where each output pixel samples
from); pyramids are lists finest first.
"""
