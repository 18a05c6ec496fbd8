#!/usr/bin/env python3
"""Builds a local copy of the Kubernetes component upstreams, for tests and the demo.

Each upstream's file names, archive layouts and checksum files are reproduced as the
upstream publishes them (one directory per host: dl.k8s.io/, github.com/..., get.helm.sh/,
download.docker.com/, storage.googleapis.com/), for amd64 and arm64. The binaries inside are
real ones from Debian's packages for that arch (kubectl, etcd, containerd, runc, the CNI
plugins, the distribution registry). Debian builds no kube-apiserver, controller-manager,
scheduler, kubelet, kube-proxy or kubeadm: with --standin, the amd64 ones are kubexm-standin
(tests/standins/, built with the tests), which checks what it is given and does what a
cluster's bring-up needs; busybox stands in for the rest, so every ELF header is real. containerd comes from Debian's unstable suite (2.x, which reads the version 3
configuration the rendered nodes get, and links only libc so it runs on Debian 12); the rest
from bookworm. Each file gets a trailing marker naming what it stands in for, so no two components
share a digest and a mix-up shows.

The layouts here are written from the upstreams' release scripts, independently of
manifests/catalogue.yaml: a wrong name in either shows as a failed test.

Usage: make-mirror.py --release manifests/kubernetes-1.32.yaml --out DIR [--debs DIR] [--standin FILE]
Writes DIR/<host>/..., and DIR/checksums.yaml: a manifest 'checksums:' block pinning every
file to this mirror's digests (a manifest built against the mirror appends it).
"""

import argparse
import gzip
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

ARCHES = ["amd64", "arm64"]
PACKAGES = ["kubernetes-client", "etcd-server", "etcd-client", "containerd", "runc",
            "containernetworking-plugins", "busybox-static", "docker-registry"]
CNI_PLUGINS = ["bandwidth", "bridge", "dhcp", "firewall", "host-device", "host-local", "ipvlan",
               "loopback", "macvlan", "portmap", "ptp", "sbr", "static", "tuning", "vlan", "vrf"]
KUBE_BINARIES = ["kubelet", "kubeadm", "kubectl", "kube-apiserver", "kube-controller-manager",
                 "kube-scheduler", "kube-proxy"]
EPOCH = 1700000000


def read_release(path):
    """The kubernetes version and component versions of a release file (a flat YAML)."""
    text = Path(path).read_text()
    kubernetes = re.search(r"^kubernetes:\s*(\S+)", text, re.M).group(1)
    block = re.search(r"^versions:\n((?:[ #].*\n)+)", text, re.M).group(1)
    versions = dict(re.findall(r"^  ([a-z0-9-]+):\s*(\S+)", block, re.M))
    return kubernetes, versions


UNSTABLE = ["containerd"]


def debian_mirror():
    """The Debian archive this machine's apt uses (the first deb source for bookworm)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for paragraph in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", paragraph, re.M))
            if "deb" in fields.get("Types", "").split() and "bookworm" in fields.get("Suites", "").split():
                return fields["URIs"].split()[0]
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]:
        if path.exists():
            for line in path.read_text().splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == "bookworm":
                    return words[1]
    raise SystemExit("make-mirror: no apt source for bookworm in /etc/apt")


def unstable_apt(state):
    """apt options for Debian's unstable suite, with sources, lists and caches of their own:
    the machine's apt setup is not changed."""
    for sub in ("lists/partial", "cache/archives/partial"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    (state / "sources.list").write_text(
        f"deb [arch=amd64,arm64 signed-by={keyring}] {debian_mirror()} unstable main\n")
    options = []
    for setting in (f"Dir::Etc::SourceList={state}/sources.list", "Dir::Etc::SourceParts=-",
                    f"Dir::State::Lists={state}/lists", f"Dir::Cache={state}/cache",
                    "Acquire::Languages=none"):
        options += ["-o", setting]
    subprocess.run(["apt-get", "-q", *options, "update"], check=True, stdout=subprocess.DEVNULL)
    return options


def fetch_debs(debs):
    """Downloads the Debian packages for both arches once; later runs reuse them."""
    debs.mkdir(parents=True, exist_ok=True)
    unstable = debs / "unstable"
    unstable.mkdir(exist_ok=True)
    options = None
    for arch in ARCHES:
        for package in PACKAGES:
            where = unstable if package in UNSTABLE else debs
            if list(where.glob(f"{package}_*_{arch}.deb")):
                continue
            extra = []
            if package in UNSTABLE:
                options = options or unstable_apt(debs / "unstable-apt")
                extra = options
            subprocess.run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *extra, f"{package}:{arch}"], cwd=where, check=True,
                           stdout=subprocess.DEVNULL)


def unpack_debs(debs, arch, root):
    root.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES:
        where = debs / "unstable" if package in UNSTABLE else debs
        deb = sorted(where.glob(f"{package}_*_{arch}.deb"))[-1]
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)


STANDIN_FOR = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubeadm"]


class Binaries:
    """Real binaries of one arch, each marked with the name it stands in for."""

    def __init__(self, root, standin=None):
        self.root = root
        self.standin = standin

    def real(self, path):
        return (self.root / path).read_bytes()

    def get(self, name):
        sources = {
            "kubectl": "usr/bin/kubectl", "etcd": "usr/bin/etcd", "etcdctl": "usr/bin/etcdctl",
            "etcdutl": "usr/bin/etcdctl", "containerd": "usr/bin/containerd",
            "containerd-shim-runc-v2": "usr/bin/containerd-shim-runc-v2", "ctr": "usr/bin/ctr",
            "containerd-stress": "usr/bin/ctr", "runc": "usr/sbin/runc", "registry": "usr/bin/docker-registry",
        }
        if self.standin and name in STANDIN_FOR:
            return self.standin.read_bytes() + b"\n#kubexm-fixture " + name.encode() + b"\n"
        if name.startswith("cni/"):
            source = "usr/lib/cni/" + name[4:]
        else:
            source = sources.get(name, "bin/busybox")
        return self.real(source) + b"\n#kubexm-fixture " + name.encode() + b"\n"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def tarball(members):
    """A .tar.gz of (path, data, mode) members, like the upstream release scripts make."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        directories = set()
        for path, data, mode in members:
            parent = os.path.dirname(path.rstrip("/"))
            if parent and parent not in (".",) and parent not in directories:
                directories.add(parent)
                info = tarfile.TarInfo(parent + "/")
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
                tar.addfile(info)
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode, EPOCH
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=EPOCH)


class Mirror:
    def __init__(self, out):
        self.out = out
        self.pins = {}  # component -> version -> arch -> sha256

    def put(self, url, data):
        path = self.out / url.split("://", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    def pin(self, component, version, arch, data):
        self.pins.setdefault(component, {}).setdefault(version, {})[arch] = sha256(data)

    def write_pins(self):
        lines = ["checksums:"]
        for component in sorted(self.pins):
            lines.append(f"  {component}:")
            for version in sorted(self.pins[component]):
                lines.append(f"    {version}:")
                for arch in sorted(self.pins[component][version]):
                    lines.append(f"      {arch}: {self.pins[component][version][arch]}")
        (self.out / "checksums.yaml").write_text("\n".join(lines) + "\n")


def coreutils(entries):
    return "".join(f"{sha256(data)}  {name}\n" for name, data in entries).encode()


def build(mirror, kubernetes, v, binaries):
    gh = "https://github.com"
    for arch in ARCHES:
        b = binaries[arch]
        # dl.k8s.io: the bare binary and NAME.sha256 holding only the digest.
        for name in KUBE_BINARIES:
            url = f"https://dl.k8s.io/release/v{kubernetes}/bin/linux/{arch}/{name}"
            data = mirror.put(url, b.get(name))
            mirror.put(url + ".sha256", sha256(data).encode())
            mirror.pin(name, kubernetes, arch, data)
        # containerd: bin/ at the root, FILE.sha256sum in coreutils format.
        ver = v["containerd"]
        name = f"containerd-{ver}-linux-{arch}.tar.gz"
        url = f"{gh}/containerd/containerd/releases/download/v{ver}/{name}"
        data = mirror.put(url, tarball([(f"bin/{n}", b.get(n), 0o755) for n in
                                        ["containerd", "containerd-shim-runc-v2", "containerd-stress", "ctr"]]))
        mirror.put(url + ".sha256sum", coreutils([(name, data)]))
        mirror.pin("containerd", ver, arch, data)
        # CNI plugins: "./" members plus LICENSE and README.md; FILE.sha256 in coreutils format.
        ver = v["cni-plugins"]
        name = f"cni-plugins-linux-{arch}-v{ver}.tgz"
        url = f"{gh}/containernetworking/plugins/releases/download/v{ver}/{name}"
        members = [(f"./{p}", b.get("cni/" + p), 0o755) for p in CNI_PLUGINS]
        members += [("./LICENSE", b"Apache License 2.0\n", 0o644), ("./README.md", b"plugins\n", 0o644)]
        data = mirror.put(url, tarball(members))
        mirror.put(url + ".sha256", coreutils([(name, data)]))
        mirror.pin("cni-plugins", ver, arch, data)
        # crictl: one member at the root, FILE.sha256 bare.
        ver = v["crictl"]
        url = f"{gh}/kubernetes-sigs/cri-tools/releases/download/v{ver}/crictl-v{ver}-linux-{arch}.tar.gz"
        data = mirror.put(url, tarball([("crictl", b.get("crictl"), 0o755)]))
        mirror.put(url + ".sha256", sha256(data).encode() + b"\n")
        mirror.pin("crictl", ver, arch, data)
        # helm: linux-ARCH/ folder; .sha256sum (coreutils) and .sha256 (bare).
        ver = v["helm"]
        name = f"helm-v{ver}-linux-{arch}.tar.gz"
        url = f"https://get.helm.sh/{name}"
        data = mirror.put(url, tarball([(f"linux-{arch}/helm", b.get("helm"), 0o755),
                                        (f"linux-{arch}/LICENSE", b"Apache License 2.0\n", 0o644),
                                        (f"linux-{arch}/README.md", b"helm\n", 0o644)]))
        mirror.put(url + ".sha256sum", coreutils([(name, data)]))
        mirror.put(url + ".sha256", sha256(data).encode() + b"\n")
        mirror.pin("helm", ver, arch, data)
        # cri-dockerd: cri-dockerd/ folder, no checksum file.
        ver = v["cri-dockerd"]
        url = f"{gh}/Mirantis/cri-dockerd/releases/download/v{ver}/cri-dockerd-{ver}.{arch}.tgz"
        data = mirror.put(url, tarball([("cri-dockerd/cri-dockerd", b.get("cri-dockerd"), 0o755)]))
        mirror.pin("cri-dockerd", ver, arch, data)
        # docker static: x86_64/aarch64 folders, docker/ in the tarball, no checksum file.
        ver = v["docker"]
        folder = {"amd64": "x86_64", "arm64": "aarch64"}[arch]
        url = f"https://download.docker.com/linux/static/stable/{folder}/docker-{ver}.tgz"
        data = mirror.put(url, tarball([(f"docker/{n}", b.get(n), 0o755) for n in
                                        ["containerd", "containerd-shim-runc-v2", "ctr", "docker", "docker-init",
                                         "docker-proxy", "dockerd", "runc"]]))
        mirror.pin("docker", ver, arch, data)
        # cri-o: cri-o/bin/..., FILE.sha256sum in coreutils format.
        ver = v["cri-o"]
        name = f"cri-o.{arch}.v{ver}.tar.gz"
        url = f"https://storage.googleapis.com/cri-o/artifacts/{name}"
        data = mirror.put(url, tarball([(f"cri-o/bin/{n}", b.get(n), 0o755) for n in
                                        ["conmon", "crio", "crun", "pinns", "runc"]]
                                       + [("cri-o/README.md", b"cri-o\n", 0o644)]))
        mirror.put(url + ".sha256sum", coreutils([(name, data)]))
        mirror.pin("cri-o", ver, arch, data)
        # registry: members at the root, FILE.sha256 bare.
        ver = v["registry"]
        url = f"{gh}/distribution/distribution/releases/download/v{ver}/registry_{ver}_linux_{arch}.tar.gz"
        data = mirror.put(url, tarball([("LICENSE", b"Apache License 2.0\n", 0o644),
                                        ("README.md", b"registry\n", 0o644),
                                        ("registry", b.get("registry"), 0o755)]))
        mirror.put(url + ".sha256", sha256(data).encode() + b"\n")
        mirror.pin("registry", ver, arch, data)

    # One checksum file per release for every asset: etcd's SHA256SUMS, runc's runc.sha256sum
    # (PGP clear-signed, with the source tarball listed too) and calico's SHA256SUMS.
    ver = v["etcd"]
    sums = []
    for arch in ARCHES:
        b = binaries[arch]
        top = f"etcd-v{ver}-linux-{arch}"
        name = f"{top}.tar.gz"
        data = mirror.put(f"{gh}/etcd-io/etcd/releases/download/v{ver}/{name}",
                          tarball([(f"{top}/{n}", b.get(n), 0o755) for n in ["etcd", "etcdctl", "etcdutl"]]
                                  + [(f"{top}/README.md", b"etcd\n", 0o644)]))
        sums.append((name, data))
        mirror.pin("etcd", ver, arch, data)
    sums.append((f"etcd-v{ver}-darwin-arm64.zip", b"not built here"))
    mirror.put(f"{gh}/etcd-io/etcd/releases/download/v{ver}/SHA256SUMS", coreutils(sorted(sums)))

    ver = v["runc"]
    sums = [(f"runc-{ver}.tar.xz", b"source")]
    for arch in ARCHES:
        data = mirror.put(f"{gh}/opencontainers/runc/releases/download/v{ver}/runc.{arch}", binaries[arch].get("runc"))
        sums.append((f"runc.{arch}", data))
        mirror.pin("runc", ver, arch, data)
    signed = (b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + coreutils(sums) +
              b"-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n")
    mirror.put(f"{gh}/opencontainers/runc/releases/download/v{ver}/runc.sha256sum", signed)

    ver = v["calicoctl"]
    sums = [(f"release-v{ver}.tgz", b"release")]
    for arch in ARCHES:
        name = f"calicoctl-linux-{arch}"
        data = mirror.put(f"{gh}/projectcalico/calico/releases/download/v{ver}/{name}",
                          binaries[arch].get("calicoctl"))
        sums.append((name, data))
        mirror.pin("calicoctl", ver, arch, data)
    sums.append(("calicoctl-darwin-amd64", b"darwin"))
    mirror.put(f"{gh}/projectcalico/calico/releases/download/v{ver}/SHA256SUMS", coreutils(sums))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--release", required=True, help="manifests/kubernetes-<minor>.yaml")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--debs", type=Path, default=Path("/var/cache/kubexm-test/debs"))
    parser.add_argument("--standin", type=Path, help="kubexm-standin, for the amd64 Kubernetes programs")
    args = parser.parse_args()
    kubernetes, versions = read_release(args.release)
    fetch_debs(args.debs)
    work = args.out.with_name(args.out.name + ".work")
    subprocess.run(["rm", "-rf", str(work)], check=True)
    binaries = {}
    for arch in ARCHES:
        unpack_debs(args.debs, arch, work / "root" / arch)
        binaries[arch] = Binaries(work / "root" / arch, args.standin if arch == "amd64" else None)
    mirror = Mirror(work / "mirror")
    build(mirror, kubernetes, versions, binaries)
    mirror.write_pins()
    subprocess.run(["rm", "-rf", str(args.out)], check=True)
    os.rename(work / "mirror", args.out)
    subprocess.run(["rm", "-rf", str(work)], check=True)
    print(f"mirror of Kubernetes {kubernetes} upstreams in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
