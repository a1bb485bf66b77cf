"""vfi: double a video's frame rate: block matching, a flow decoder, and a diffusion-sampled latent that steers it."""

__version__ = "0.1.0"
