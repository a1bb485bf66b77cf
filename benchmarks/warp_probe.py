"""Where the decoder's detail goes: per validation clip, the sharpness (rms Laplacian, 8-bit levels)
of the two warped neighbours, their masked blend, the output and the truth, how far apart the two
warps are (rms |w0 - w2|) against each one's and the blend's error, and the mask's mean |m - 0.5|.
It reads the inputs of the decoder's residual head (warped x0, warped x2, mask), so it runs any
release whose decoder has that head (v3, v4):

  python benchmarks/warp_probe.py CHECKOUT WEIGHTS_DIR MAX_PAIRS
  e.g. python benchmarks/warp_probe.py . weights/default 20     (RESULTS.md, "Aligning the two warps")
"""
import sys, numpy as np, torch, torch.nn.functional as F
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from vfi_cli.interpolator import Interpolator
from vfi_cli.evaluation import protocol
W = Path(sys.argv[2]); maxp = int(sys.argv[3])
interp = Interpolator.load(W, device="cpu")
cap = {}
def hook(mod, inp): cap["x"] = inp[0].detach()
interp.vqgan.decoder.head.register_forward_pre_hook(hook)
run = interp.sequential_pairs()
L = torch.tensor([[[[0,1,0],[1,-4,1],[0,1,0]]]], dtype=torch.float32)
def lap(x):  # x [B,3,H,W] in [-1,1] -> rms Laplacian in grey levels
    g = x.mean(1, keepdim=True) * 127.5
    return F.conv2d(g, L).square().mean().sqrt().item()
for name in ("gem_anim1.mov", "visp_cube.mpeg", "psychopy_testMovie.mp4"):
    rows = []
    for k, t in enumerate(protocol.video_triplets(Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / name, protocol.Scores())):
        if k == maxp: break
        out = np.asarray(run(t.x0[None] if t.x0.ndim == 3 else t.x0, t.x2[None] if t.x2.ndim == 3 else t.x2))
        x = cap["x"]; w0, w2, m = x[:, :3], x[:, 3:6], x[:, 6:7]
        tr = torch.from_numpy(t.truth).permute(2,0,1)[None].float() / 127.5 - 1
        o = torch.from_numpy(out[0]).permute(2,0,1)[None].float() / 127.5 - 1
        if tr.shape[-2:] != w0.shape[-2:]: continue
        bl = m * w0 + (1 - m) * w2
        e = lambda a, b: ((a - b).square().mean().sqrt() * 127.5).item()
        rows.append([lap(w0), lap(w2), lap(bl), lap(o), lap(tr), e(w0, w2), e(w0, tr), e(w2, tr), e(bl, tr), e(o, tr), (m - 0.5).abs().mean().item()])
    r = np.array(rows).mean(0)
    print(f"{name}: lap w0 {r[0]:.2f} w2 {r[1]:.2f} blend {r[2]:.2f} out {r[3]:.2f} truth {r[4]:.2f} | rms w0-w2 {r[5]:.2f} w0-t {r[6]:.2f} w2-t {r[7]:.2f} blend-t {r[8]:.2f} out-t {r[9]:.2f} | |m-.5| {r[10]:.3f} (n={len(rows)})")
