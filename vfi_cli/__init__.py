"""vfi: double a video's frame rate with a conditional latent diffusion interpolator."""

__version__ = "0.1.0"
