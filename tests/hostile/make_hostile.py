#!/usr/bin/env python3
"""Derives hostile bundles from a valid one, one file per attack.

  make_hostile.py VALID.tar.zst VALID-INSTALL OUTDIR ABS_ESCAPE_PATH

Writes OUTDIR/<case>.tar.zst (or <case>.install) and OUTDIR/cases.tsv with, per line,
"<file>\t<regex the error must match>". The archives are real tar streams (Python's
tarfile) compressed by the real zstd program; metadata is kept consistent wherever the
attack is meant to get past it (e.g. an index that lies about a size also has a correct
SHA256SUMS line for itself), so each case exercises the check it names.
"""
import copy
import hashlib
import io
import os
import struct
import subprocess
import sys
import tarfile


def zstd(data, decompress=False):
    args = ["zstd", "-q", "-c"] + (["-d"] if decompress else ["-3"])
    return subprocess.run(args, input=data, stdout=subprocess.PIPE, check=True).stdout


def load(archive):
    raw = zstd(open(archive, "rb").read(), decompress=True)
    members = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for info in tar.getmembers():
            data = tar.extractfile(info).read() if info.isfile() else b""
            members.append((info, data))
    return members


def build(members):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info = tarfile.TarInfo(info.name) if isinstance(info, str) else info
            if info.isfile():
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return zstd(out.getvalue())


def entry(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = linkname
    info.mtime = 1700000000
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3
    return info, data


def find(members, name):
    for i, (info, _) in enumerate(members):
        if info.name == name:
            return i
    raise KeyError(name)


def first_file(members, prefix):
    return next(info.name for info, _ in members if info.isfile() and info.name.startswith(prefix))


def replace_metadata(members, name, text):
    """Replaces bundle.index (or bundle.yaml) and fixes its line in SHA256SUMS."""
    members = list(members)
    members[find(members, name)] = (members[find(members, name)][0], text)
    sums_at = find(members, "SHA256SUMS")
    lines = members[sums_at][1].decode().splitlines(keepends=True)
    digest = hashlib.sha256(text).hexdigest()
    lines = [f"{digest}  {name}\n" if line.endswith(f"  {name}\n") else line for line in lines]
    members[sums_at] = (members[sums_at][0], "".join(lines).encode())
    return members


def retrailer(install, **changes):
    """Rewrites fields of the 128-byte trailer and recomputes its check value."""
    body, trailer = install[:-128], bytearray(install[-128:])
    fields = {"payload_offset": 16, "payload_length": 24}
    for field, value in changes.items():
        struct.pack_into("<Q", trailer, fields[field], value)
    trailer[120:128] = hashlib.sha256(bytes(trailer[:120])).digest()[:8]
    return body + bytes(trailer)


def main():
    valid, valid_install, outdir, abs_escape = sys.argv[1:5]
    os.makedirs(outdir, exist_ok=True)
    members = load(valid)
    compressed = open(valid, "rb").read()
    install = open(valid_install, "rb").read()
    binary = first_file(members, "binaries/")
    text_file = first_file(members, "packages/")
    cases = []

    def case(name, data, pattern, suffix=".tar.zst"):
        path = os.path.join(outdir, name + suffix)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o755)
        cases.append((os.path.basename(path), pattern))

    flipped = bytearray(compressed)
    flipped[len(flipped) // 2] ^= 0x55
    case("flipped-byte", bytes(flipped), r"truncated or corrupt|SHA-256 mismatch|not listed|bytes")

    tampered = list(members)
    info, data = tampered[find(tampered, binary)]
    tampered[find(tampered, binary)] = (info, data[:100] + bytes([data[100] ^ 1]) + data[101:])
    case("content-tampered", build(tampered), rf"member '{binary}': SHA-256 mismatch")

    case("truncated", compressed[: len(compressed) // 2], r"truncated or corrupt")
    case("not-listed", build(members + [entry("extra.txt", data=b"x")]), r"member 'extra.txt' is not listed")
    case("listed-missing", build([m for m in members if m[0].name != text_file]),
         rf"missing from the archive: {text_file}")
    case("duplicate", build(members + [members[find(members, text_file)]]), rf"member '{text_file}' appears twice")
    case("dotdot", build(members + [entry("../escape.txt", data=b"x")]), r"unsafe member '\.\./escape\.txt'")
    case("absolute", build(members + [entry(abs_escape, data=b"x")]), r"unsafe member '/.*': absolute path")
    case("symlink-escape", build(members + [entry("evil", tarfile.SYMTYPE, linkname="../outside"),
                                            entry("evil/pwned", data=b"x")]),
         r"unsafe member 'evil': symlink to '\.\./outside' points outside")
    case("hardlink-escape", build(members + [entry("hl", tarfile.LNKTYPE, linkname="../outside/victim")]),
         r"unsafe member 'hl': hardlink to '\.\./outside/victim' points outside")
    case("device", build(members + [entry("null", tarfile.CHRTYPE)]), r"unsafe member 'null': a character device")
    case("fifo", build(members + [entry("pipe", tarfile.FIFOTYPE)]), r"unsafe member 'pipe': a fifo")

    setuid = list(members)
    info, data = setuid[find(setuid, binary)]
    info = copy.copy(info)
    info.mode = 0o4755
    setuid[find(setuid, binary)] = (info, data)
    case("setuid", build(setuid), rf"unsafe member '{binary}': mode 4755 has the setuid")

    index = members[find(members, "bundle.index")][1].decode()
    size = len(members[find(members, text_file)][1])
    lying = index.replace(f" {size} {text_file}\n", f" {size + 7} {text_file}\n")
    assert lying != index
    case("index-lies-about-size", build(replace_metadata(members, "bundle.index", lying.encode())),
         rf"member '{text_file}' has {size} bytes in the archive, bundle.index says {size + 7}")

    case("unlisted-in-sums", build(replace_metadata(members, "bundle.index",
                                                    (index + "f 0644 1 zzz-extra\n").encode())),
         r"bundle.index lists files that SHA256SUMS does not: zzz-extra")

    foreign = [entry("hello.txt", data=b"hello")]
    case("not-a-bundle", build(foreign), r"not a kubexm-dist bundle: expected member 'SHA256SUMS' next, found 'hello.txt'")

    # Self-extracting files.
    payload_offset, payload_length = struct.unpack_from("<QQ", install, len(install) - 128 + 16)
    flipped_install = bytearray(install)
    flipped_install[payload_offset + payload_length - 5] ^= 0x01
    case("install-flipped-byte", bytes(flipped_install),
         r"truncated or corrupt|SHA-256 mismatch|payload's SHA-256", ".install")
    case("install-lying-length", retrailer(install, payload_length=payload_length - 100),
         r"truncated or extended after packing", ".install")
    case("install-lying-offset", retrailer(install, payload_offset=payload_offset + 4096, payload_length=payload_length - 4096),
         r"not a kubexm-dist bundle|truncated or corrupt|digest", ".install")
    other = replace_metadata(members, "bundle.index", (index + "d 0755 0 zzz\n").encode())
    other_payload = build(other)
    swapped = install[:payload_offset] + other_payload + retrailer(install[-128:], payload_length=len(other_payload))[-128:]
    case("install-swapped-payload", swapped, r"SHA256SUMS has digest [0-9a-f]+, the trailer says", ".install")

    with open(os.path.join(outdir, "cases.tsv"), "w") as f:
        for name, pattern in cases:
            f.write(f"{name}\t{pattern}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
