#!/usr/bin/env python3
"""Builds a local OCI image layout of the cluster's container images, for tests and the demo.

Every image is a multi-arch image: an OCI image index per reference with a linux/amd64 and a
linux/arm64 manifest, as the upstreams publish them. The images run nothing real: each arch
gets one base layer holding the real busybox-static binary of that arch (from Debian's
package) and a few /etc files, and every image adds one small layer of its own, a file
naming the image. So all images of one arch share their base layer, which a shared store
keeps once, and no two images share a manifest digest. One image, amd64-only:1.0, has no
arm64 manifest, for the paths that must notice a missing arch.

The per-arch images are built with umoci (no daemon); the indexes are written here, and the
result is checked with skopeo. Timestamps are fixed, so the same inputs give the same digests.

Usage: make-images.py --out DIR [--debs DIR]
Writes DIR/layout (an OCI image layout; index.json names every image by its full reference,
e.g. registry.k8s.io/pause:3.10), DIR/images.txt (one line per reference: the reference, its
index digest, and platform=digest per manifest) and DIR/README.txt, last. The build runs in
DIR.tmp-PID and is renamed into place, so a DIR with README.txt is complete.
"""

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ARCHES = ["amd64", "arm64"]
EPOCH = 1700000000
CREATED = "2023-11-14T22:13:20Z"  # EPOCH, in the form the image config wants

IMAGES = [
    "registry.k8s.io/pause:3.10",
    "registry.k8s.io/coredns/coredns:v1.11.3",
    "registry.k8s.io/kube-apiserver:v1.32.10",
    "registry.k8s.io/kube-controller-manager:v1.32.10",
    "registry.k8s.io/kube-scheduler:v1.32.10",
    "registry.k8s.io/kube-proxy:v1.32.10",
    "registry.k8s.io/etcd:3.5.16-0",
    "registry.k8s.io/dns/k8s-dns-node-cache:1.24.0",
    "quay.io/calico/node:v3.30.5",
    "quay.io/calico/cni:v3.30.5",
    "quay.io/calico/kube-controllers:v3.30.5",
    "docker.io/library/haproxy:3.0.5-alpine",
    "ghcr.io/kube-vip/kube-vip:v0.8.9",
]
# Images published for fewer arches than the rest.
ONLY = {"docker.io/library/amd64-only:1.0": ["amd64"]}

APPLETS = ["sh", "cat", "echo", "ls", "sleep", "true", "false"]
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


def run(*args, **kwargs):
    return subprocess.run(list(args), check=True, **kwargs)


def fetch_busybox(debs):
    """The busybox binary of each arch, from busybox-static (downloaded once into DEBS)."""
    debs.mkdir(parents=True, exist_ok=True)
    binaries = {}
    for arch in ARCHES:
        found = sorted(debs.glob(f"busybox-static_*_{arch}.deb"))
        if not found:
            run("apt-get", "download", "-q", f"busybox-static:{arch}", cwd=debs, stdout=subprocess.DEVNULL)
            found = sorted(debs.glob(f"busybox-static_*_{arch}.deb"))
        with tempfile.TemporaryDirectory() as root:
            run("dpkg-deb", "-x", str(found[-1]), root)
            binaries[arch] = (Path(root) / "bin/busybox").read_bytes()
    return binaries


class Layer:
    """An uncompressed layer tarball with fixed owners and times, entries in the order added."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name, kind, mode):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, EPOCH
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    def dir(self, name):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, 0o755))

    def file(self, name, data, mode=0o644):
        info = self._info(name, tarfile.REGTYPE, mode)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))

    def symlink(self, name, target):
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.tar.addfile(info)

    def write(self, path):
        self.tar.close()
        path.write_bytes(self.buf.getvalue())


def base_layer(busybox, path):
    layer = Layer()
    for name in ["bin", "etc", "tmp"]:
        layer.dir(name)
    layer.file("bin/busybox", busybox, 0o755)
    for applet in APPLETS:
        layer.symlink(f"bin/{applet}", "busybox")
    layer.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    layer.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    layer.file("etc/hosts", b"127.0.0.1\tlocalhost\n::1\tlocalhost\n")
    layer.file("etc/os-release", b'NAME="kubexm test image"\nID=kubexm-test\n')
    layer.write(path)


def image_layer(ref, arch, path):
    layer = Layer()
    layer.dir("etc")
    layer.file("etc/kubexm-image", f"{ref} linux/{arch}\n".encode())
    layer.write(path)


def umoci(*args):
    run("umoci", *args, stdout=subprocess.DEVNULL)


def history(by):
    return ["--history.created", CREATED, "--history.created_by", by]


def blob_path(layout, digest):
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def read_json(path):
    return json.loads(path.read_text())


def write_blob(layout, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blob_path(layout, digest).write_bytes(data)
    return digest


def images():
    return [(ref, ARCHES) for ref in IMAGES] + list(ONLY.items())


def build_layout(layout, busybox, scratch):
    """Builds every per-arch image under a scratch tag, then replaces the tags with indexes."""
    umoci("init", "--layout", str(layout))
    for arch in ARCHES:
        base = f"base-{arch}"
        tar = scratch / f"{base}.tar"
        base_layer(busybox[arch], tar)
        umoci("new", "--image", f"{layout}:{base}")
        umoci("config", "--image", f"{layout}:{base}", "--os", "linux", "--architecture", arch,
              "--created", CREATED, "--config.cmd", "/bin/sh", "--config.env",
              "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              *history("kubexm test base (busybox)"))
        umoci("raw", "add-layer", "--image", f"{layout}:{base}", *history("kubexm test base layer"), str(tar))

    scratch_tags = {}
    for n, (ref, arches) in enumerate(images()):
        for arch in arches:
            tag = f"image{n}-{arch}"
            tar = scratch / f"{tag}.tar"
            image_layer(ref, arch, tar)
            umoci("raw", "add-layer", "--image", f"{layout}:base-{arch}", "--tag", tag,
                  *history(f"kubexm test image {ref}"), str(tar))
            umoci("config", "--image", f"{layout}:{tag}", "--created", CREATED, "--no-history",
                  "--config.label", f"io.kubexm.test.image={ref}")
            scratch_tags[tag] = (ref, arch)

    descriptors = {}
    for desc in read_json(layout / "index.json")["manifests"]:
        descriptors[desc["annotations"][REF_NAME]] = desc

    result = []
    entries = []
    for n, (ref, arches) in enumerate(images()):
        manifests = []
        for arch in arches:
            desc = descriptors[f"image{n}-{arch}"]
            manifests.append({"mediaType": MANIFEST_TYPE, "digest": desc["digest"], "size": desc["size"],
                              "platform": {"architecture": arch, "os": "linux"}})
        index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": manifests}
        data = json.dumps(index, indent=2).encode() + b"\n"
        digest = write_blob(layout, data)
        entries.append({"mediaType": INDEX_TYPE, "digest": digest, "size": len(data),
                        "annotations": {REF_NAME: ref}})
        result.append((ref, digest, [(f"linux/{m['platform']['architecture']}", m["digest"]) for m in manifests]))

    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}, indent=2) + "\n")
    (layout / "index.json").chmod(0o644)
    collect_garbage(layout)
    return result


def referenced(layout, digest, seen):
    if digest in seen:
        return
    seen.add(digest)
    data = read_json(blob_path(layout, digest))
    for child in data.get("manifests", []):
        referenced(layout, child["digest"], seen)
    if "config" in data:
        seen.add(data["config"]["digest"])
        seen.update(layer["digest"] for layer in data["layers"])


def collect_garbage(layout):
    """Removes the blobs only the scratch tags used (their manifests, superseded configs)."""
    seen = set()
    for desc in read_json(layout / "index.json")["manifests"]:
        referenced(layout, desc["digest"], seen)
    for blob in (layout / "blobs" / "sha256").iterdir():
        if f"sha256:{blob.name}" not in seen:
            blob.unlink()
        else:
            blob.chmod(0o644)  # umoci writes 0600; the layout is read by other users' tests


def verify(layout, result):
    """Reads every image back through skopeo: the index and each manifest's arch."""
    for ref, digest, platforms in result:
        raw = run("skopeo", "inspect", "--raw", f"oci:{layout}:{ref}", stdout=subprocess.PIPE).stdout
        if "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
            sys.exit(f"make-images: skopeo reads {ref} with another digest than {digest}")
        for platform, _ in platforms:
            arch = platform.split("/")[1]
            config = run("skopeo", "--override-os", "linux", "--override-arch", arch, "inspect", "--config",
                         "--raw", f"oci:{layout}:{ref}", stdout=subprocess.PIPE).stdout
            if json.loads(config)["architecture"] != arch:
                sys.exit(f"make-images: the {platform} image of {ref} is not {arch}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--debs", type=Path, default=Path("/var/cache/kubexm-test/debs"))
    args = parser.parse_args()
    out = args.out.resolve()
    if ":" in str(out):
        sys.exit("make-images: --out must not contain ':' (skopeo's oci: references split on it)")

    busybox = fetch_busybox(args.debs)
    tmp = out.parent / f"{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        scratch = tmp / "scratch"
        scratch.mkdir()
        result = build_layout(tmp / "layout", busybox, scratch)
        shutil.rmtree(scratch)
        verify(tmp / "layout", result)
        with open(tmp / "images.txt", "w") as f:
            for ref, digest, platforms in result:
                f.write(" ".join([ref, digest] + [f"{p}={d}" for p, d in platforms]) + "\n")
        blobs = sorted((tmp / "layout/blobs/sha256").iterdir())
        size = sum(b.stat().st_size for b in blobs)
        (tmp / "README.txt").write_text(
            "Container images for the kubexm tests, built by tools/make-images.py.\n"
            "layout/     an OCI image layout; index.json names each image by its full reference\n"
            "            (use as oci:<dir>/layout:<reference> with skopeo)\n"
            "images.txt  reference, index digest, platform=manifest digest\n"
            f"{len(result)} images, {len(blobs)} blobs, {size} bytes\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"make-images: {len(result)} images, {len(blobs)} blobs, {size} bytes in {out}")


if __name__ == "__main__":
    main()
