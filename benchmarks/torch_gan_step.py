"""The same GAN-CLS training step written in PyTorch, for a side-by-side
throughput comparison with `sagan-tf bench train` (SPEC §2–4 networks).

    pip install torch==2.13.0       # not a project dependency
    python benchmarks/torch_gan_step.py --batch 64 --image-size 64 --ngf 64 --ndf 64

Prints one JSON line: {"framework": "pytorch", "images_per_second": ...}.
"""

import argparse
import json
import time

import torch
from torch import nn
from torch.nn import functional as F


def up_block(cin, cout):
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]


class Generator(nn.Module):
    def __init__(self, noise_dim, condition_dim, image_size, ngf, final_channels=48):
        super().__init__()
        self.ngf = ngf
        self.project = nn.Sequential(nn.Linear(noise_dim + condition_dim, 16 * 8 * ngf, bias=False),
                                     nn.BatchNorm1d(16 * 8 * ngf), nn.ReLU(True))
        channels, blocks, size = 8 * ngf, [], 4
        while size < image_size:
            out = max(ngf, channels // 2)
            blocks += up_block(channels, out)
            channels, size = out, size * 2
        self.body = nn.Sequential(
            *blocks,
            nn.Conv2d(channels, final_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(final_channels), nn.ReLU(True),
            nn.Conv2d(final_channels, 3, 3, 1, 1), nn.Tanh())

    def forward(self, z, phi):
        x = self.project(torch.cat([z, phi], 1)).view(-1, 8 * self.ngf, 4, 4)
        return self.body(x)


class Discriminator(nn.Module):
    def __init__(self, image_size, ndf, condition_dim, condition_units):
        super().__init__()
        layers, channels, cin, size = [], ndf, 3, image_size
        while size > 4:
            layers.append(nn.Conv2d(cin, channels, 4, 2, 1, bias=False))
            if cin != 3:
                layers.append(nn.BatchNorm2d(channels))
            layers.append(nn.LeakyReLU(0.2, True))
            cin, channels, size = channels, min(channels * 2, 8 * ndf), size // 2
        self.image = nn.Sequential(*layers)
        self.condition = nn.Sequential(nn.Linear(condition_dim, condition_units), nn.LeakyReLU(0.2, True))
        self.joint = nn.Sequential(nn.Conv2d(cin + condition_units, 8 * ndf, 1, bias=False),
                                   nn.BatchNorm2d(8 * ndf), nn.LeakyReLU(0.2, True),
                                   nn.Conv2d(8 * ndf, 1, 4))

    def judge(self, features, phi):
        c = self.condition(phi)[:, :, None, None].expand(-1, -1, 4, 4)
        return self.joint(torch.cat([features, c], 1)).view(-1)

    def forward(self, image, phi):
        return self.judge(self.image(image), phi)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--noise-dim", type=int, default=100)
    parser.add_argument("--condition-dim", type=int, default=128, help="the sentence vector's size")
    parser.add_argument("--condition-units", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="0: PyTorch's default")
    parser.add_argument("--reuse-fakes", action="store_true",
                        help="the G update reuses the D update's fakes (gan.reuse_fakes)")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 1 or args.batch < 1:
        parser.error("--steps, --warmup and --batch must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    noise_dim, condition_dim = args.noise_dim, args.condition_dim
    generator = Generator(noise_dim, condition_dim, args.image_size, args.ngf)
    discriminator = Discriminator(args.image_size, args.ndf, condition_dim, args.condition_units)
    g_opt = torch.optim.Adam(generator.parameters(), 2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), 2e-4, betas=(0.5, 0.999))
    images = torch.rand(args.batch, 3, args.image_size, args.image_size) * 2 - 1
    phi = torch.rand(args.batch, condition_dim) * 2 - 1
    wrong = torch.rand(args.batch, condition_dim) * 2 - 1
    ones, zeros = torch.ones(args.batch), torch.zeros(args.batch)

    def step():
        z = torch.randn(args.batch, noise_dim)
        fake = generator(z, phi)
        d_opt.zero_grad()
        # One pass of the real images through the image layers for both real pairs, as in Keras.
        real = discriminator.image(images)
        d_loss = (F.binary_cross_entropy_with_logits(discriminator.judge(real, phi), ones)
                  + 0.5 * (F.binary_cross_entropy_with_logits(discriminator.judge(real, wrong), zeros)
                           + F.binary_cross_entropy_with_logits(discriminator(fake.detach(), phi), zeros)))
        d_loss.backward()
        d_opt.step()
        g_opt.zero_grad()
        if not args.reuse_fakes:
            # Fresh noise for the generator step, as the Keras train_step does by default.
            fake = generator(torch.randn(args.batch, noise_dim), phi)
        g_loss = F.binary_cross_entropy_with_logits(discriminator(fake, phi), ones)
        g_loss.backward()
        g_opt.step()

    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    elapsed = time.perf_counter() - start
    print(json.dumps({"framework": "pytorch", "torch": torch.__version__,
                      "images_per_second": round(args.steps * args.batch / elapsed, 2),
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
