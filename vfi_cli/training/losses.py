"""Training-only losses: L1, SSIM, census, PatchGAN hinge with adaptive weight, optional VGG perceptual.

Frames in are [B, 3, H, W] in [-1, 1]; losses return scalars (the discriminator, patch logits). SSIM (Wang 2004);
census / ternary loss (Meister et al., UnFlow, AAAI 2018; as in RIFE); PatchGAN with the hinge loss
(Isola et al. 2017; Lim & Ye 2017) and the adaptive generator weight of VQGAN (Esser et al. 2021);
VGG16 perceptual distance in the spirit of LPIPS (Zhang et al. 2018), from weights the user supplies."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vfi_cli.errors import MissingDependencyError


def _gaussian_window(size: int = 11, sigma: float = 1.5, device=None, dtype=None) -> torch.Tensor:
    ax = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(ax ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).to(dtype)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Mean SSIM (Gaussian 11x11, sigma 1.5) of x, y [B, C, H, W], differentiable."""
    c = x.shape[1]
    win = _gaussian_window(device=x.device, dtype=x.dtype).expand(c, 1, 11, 11)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x = F.conv2d(x, win, groups=c)
    mu_y = F.conv2d(y, win, groups=c)
    sxx = F.conv2d(x * x, win, groups=c) - mu_x ** 2
    syy = F.conv2d(y * y, win, groups=c) - mu_y ** 2
    sxy = F.conv2d(x * y, win, groups=c) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2)
    return (num / den).mean()


def census_loss(x: torch.Tensor, y: torch.Tensor, patch: int = 7) -> torch.Tensor:
    """Soft census transform distance (robust to brightness, sharpens motion boundaries)."""

    def transform(img: torch.Tensor) -> torch.Tensor:
        gray = img.mean(dim=1, keepdim=True)  # [B, 1, H, W]
        patches = F.unfold(gray, patch, padding=patch // 2)  # [B, P*P, H*W]
        diff = patches - gray.flatten(2)
        return diff / torch.sqrt(0.81 + diff ** 2)

    tx, ty = transform(x), transform(y)
    d = (tx - ty) ** 2
    return (d / (0.1 + d)).mean()


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix) on single frames: [B, 3, H, W] -> logits [B, 1, H/8, W/8]."""

    def __init__(self, ch: int = 32, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = ch
        for i in range(1, n_layers):
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1), nn.GroupNorm(8, c * 2), nn.LeakyReLU(0.2, True)]
            c *= 2
        layers += [nn.Conv2d(c, c, 4, 1, 1), nn.GroupNorm(8, c), nn.LeakyReLU(0.2, True), nn.Conv2d(c, 1, 4, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def adaptive_gan_weight(rec_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor,
                        max_weight: float = 1e4) -> torch.Tensor:
    """Taming's balance: ||grad rec|| / ||grad gan|| at the decoder's last layer."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    return (rec_grad.norm() / (g_grad.norm() + 1e-4)).clamp(0.0, max_weight).detach()


_VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
_VGG16_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in torchvision's `features`


class VGGPerceptual(nn.Module):
    """Unweighted LPIPS-style distance on VGG16 features; weights come from a local torchvision
    VGG16 state dict (`features.N.weight` keys), which cannot be downloaded here."""

    def __init__(self, weights: Path):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in _VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
                c = v
        self.features = nn.Sequential(*layers)
        if not Path(weights).is_file():
            raise MissingDependencyError(
                f"VGG16 weights not found at {weights}: save torchvision's vgg16 state_dict there to use LPIPS")
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        self.features.load_state_dict(state, strict=True)
        self.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # x, y: [B, 3, H, W] in [-1, 1]
        h = torch.cat([x, y]) * 0.5 + 0.5
        h = (h - self.mean) / self.std
        dist = x.new_zeros(())
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in _VGG16_TAPS:
                a, b = F.normalize(h, dim=1).chunk(2)
                dist = dist + ((a - b) ** 2).sum(dim=1).mean()
            if i >= _VGG16_TAPS[-1]:
                break
        return dist


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, w_ssim: float, w_census: float) -> dict:
    """The pixel terms of the autoencoder objective (each returned for logging)."""
    terms = {"l1": (pred - target).abs().mean()}
    if w_ssim > 0:
        terms["ssim"] = w_ssim * (1.0 - ssim(pred, target))
    if w_census > 0:
        terms["census"] = w_census * census_loss(pred, target)
    return terms
