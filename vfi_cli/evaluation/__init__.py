"""Evaluation only (`vfi eval`, benchmarks); the inference path never imports it.

protocol (which triplets: drop-frames on videos, Vimeo-90k lists; baselines; score records),
runner (run a method over them and score it), metrics (PSNR, SSIM, colour bias), fid (Frechet
Inception Distance), examples (PNG strips), report (table and JSON).
"""
