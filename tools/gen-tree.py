#!/usr/bin/env python3
"""Lays out a kubexm-dist tree with realistic shape, for the demo, tests and benchmarks.

The tree mimics what the builder will carry: a few large incompressible blobs (binaries,
image layers), many small files (configs, rendered node files), and compressible text
(repository metadata). Content is generated from a seed, so the same arguments give the
same tree byte for byte.

  gen-tree.py DIR [--size 8M] [--seed 1] [--name demo] [--version 0.1.0]
"""
import argparse
import os
import random
import sys

UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text):
    if text[-1].upper() in UNITS:
        return int(float(text[:-1]) * UNITS[text[-1].upper()])
    return int(text)


def write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def random_bytes(rng, size):
    """Incompressible bytes; randbytes() is limited to 256 MiB a call."""
    chunk = 16 << 20
    return b"".join(rng.randbytes(min(chunk, size - at)) for at in range(0, size, chunk))


def text_block(rng, size):
    """Compressible text: a 64 KiB block of random lines, repeated with a counter."""
    if size > 1 << 16:
        block = text_block(rng, 1 << 16)
        parts = [block + f"# part {i}\n".encode() for i in range(size // len(block) + 1)]
        return b"".join(parts)[:size]
    words = ["kubelet", "apiserver", "etcd", "containerd", "runc", "calico", "coredns",
             "version:", "sha256:", "arch: amd64", "arch: arm64", "- name:", "requires:"]
    out = []
    length = 0
    while length < size:
        line = " ".join(rng.choice(words) for _ in range(8)) + "\n"
        out.append(line)
        length += len(line)
    return "".join(out).encode()[:size]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir")
    parser.add_argument("--size", default="8M", help="approximate total size (default 8M)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--name", default="demo")
    parser.add_argument("--version", default="0.1.0")
    parser.add_argument("--small-files", type=int, default=None,
                        help="number of small files (default: as many as fill 10%% of --size)")
    args = parser.parse_args()

    total = parse_size(args.size)
    rng = random.Random(args.seed)
    root = args.dir
    os.makedirs(root, exist_ok=True)
    write(os.path.join(root, "bundle.yaml"), (
        f"name: {args.name}\n"
        f"version: \"{args.version}\"\n"
        "arches: [amd64, arm64]\n"
        "os_profiles: [ubuntu-22.04, rocky-9]\n"
        "roles: [master, worker, etcd, lb]\n").encode())

    # 80%: large incompressible blobs (binaries per arch, image layers).
    blob_budget = total * 8 // 10
    blob_count = 6
    for i in range(blob_count):
        arch = ("amd64", "arm64")[i % 2]
        name = ("kubelet", "kube-apiserver", "etcd")[i // 2 % 3]
        write(os.path.join(root, "binaries", arch, name), random_bytes(rng, blob_budget // blob_count), 0o755)

    # 10%: many small files (rendered per-node configuration), some of them private keys.
    small_budget = total // 10
    small_size = 2048
    count = args.small_files if args.small_files is not None else max(1, small_budget // small_size)
    for i in range(count):
        node = f"node{i // 40:03d}"
        if i % 10 == 0:
            write(os.path.join(root, "site", "nodes", node, "etc", "kubernetes", "pki", f"key{i}.key"),
                  rng.randbytes(small_size), 0o600)
        else:
            write(os.path.join(root, "site", "nodes", node, "etc", "kubernetes", f"conf{i}.yaml"),
                  text_block(rng, small_size))

    # 10%: compressible text (repository metadata).
    text_budget = total - blob_budget - small_budget
    for i in range(4):
        write(os.path.join(root, "packages", "ubuntu", "22.04", "amd64", f"Packages{i}"),
              text_block(rng, text_budget // 4))
    os.makedirs(os.path.join(root, "images", "oci", "blobs"), exist_ok=True)  # an empty directory
    return 0


if __name__ == "__main__":
    sys.exit(main())
