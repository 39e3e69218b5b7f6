"""Device memory bandwidth of this GPU as a large device-to-device copy sees it (read + write bytes / s).

    python3 bench/gpu/bandwidth.py [--gib 2] [--repeats 20]

Prints one line `bandwidth_gbs=N` (decimal GB/s), the number bench/gpu/engines.ts takes as
--bandwidth-gbs for its HBM roofline.
"""
import argparse

import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    n = int(args.gib * 2**30) // 2
    src = torch.empty(n, dtype=torch.float16, device="cuda").normal_()
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(args.repeats):
        dst.copy_(src)
    end.record()
    torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1000 / args.repeats
    moved = 2 * src.numel() * src.element_size()
    print(f"{torch.cuda.get_device_name()}: {moved / 2**30:.1f} GiB moved per copy in {seconds * 1000:.2f} ms")
    print(f"bandwidth_gbs={moved / seconds / 1e9:.0f}")


if __name__ == "__main__":
    main()
