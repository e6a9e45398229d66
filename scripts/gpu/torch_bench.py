"""PyTorch CUDA reference for the DCGAN-MNIST step of scripts/gpu/models.ts: same layers, same optimizers, one D and
one G update per step, non-saturating and WGAN-GP (lambda = 10). Eager mode, cudnn.benchmark on.
Prints one JSON line per (precision, loss, batch). precision 'tf32' is PyTorch's default for convolutions
(cudnn.allow_tf32 = True); 'fp32' turns TF32 off, which matches WebGPU's float32 arithmetic."""
import json, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

dev = "cuda"
LATENT = 100


def make_g():
    return nn.Sequential(
        nn.Linear(LATENT, 7 * 7 * 128), nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64, eps=1e-3, momentum=0.01), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh()).to(dev)


def make_d():
    return nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1)).to(dev)


def rig(loss, batch):
    G, D = make_g(), make_d()
    if loss == "nonsat":
        oD = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
        oG = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    else:
        oD = torch.optim.Adam(D.parameters(), 1e-4, betas=(0.0, 0.9))
        oG = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.0, 0.9))
    real = torch.rand(batch, 1, 28, 28, device=dev) * 2 - 1

    def step():
        z = torch.randn(batch, LATENT, device=dev)
        with torch.no_grad():
            fake = G(z)
        oD.zero_grad(set_to_none=True)
        rl, fl = D(real), D(fake)
        if loss == "nonsat":
            dl = F.softplus(-rl).mean() + F.softplus(fl).mean()
        else:
            eps = torch.rand(batch, 1, 1, 1, device=dev)
            xh = (eps * real + (1 - eps) * fake).requires_grad_(True)
            g, = torch.autograd.grad(D(xh).sum(), xh, create_graph=True)
            gp = ((g.flatten(1).pow(2).sum(1) + 1e-12).sqrt() - 1).pow(2).mean()
            dl = fl.mean() - rl.mean() + 10 * gp
        dl.backward()
        oD.step()
        oG.zero_grad(set_to_none=True)
        z = torch.randn(batch, LATENT, device=dev)
        lg = D(G(z))
        gl = F.softplus(-lg).mean() if loss == "nonsat" else -lg.mean()
        gl.backward()
        oG.step()
        return dl.detach()

    return step


def main():
    batches = [int(b) for b in (sys.argv[1] if len(sys.argv) > 1 else "64,256,1024").split(",")]
    steps = int(os.environ.get("STEPS", 50))
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(0)
    for precision in ("tf32", "fp32"):
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        for loss in ("nonsat", "wgangp"):
            for batch in batches:
                step = rig(loss, batch)
                for _ in range(5):
                    step()
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(steps):
                    v = step()
                v = v.item()
                ms = (time.perf_counter() - t0) * 1000 / steps
                print(json.dumps(dict(kind="torch", device=name, torch=torch.__version__, precision=precision, loss=loss,
                                      batch=batch, ms_per_step=round(ms, 3), images_per_s=round(batch * 1000 / ms),
                                      d_loss=v)), flush=True)


main()
