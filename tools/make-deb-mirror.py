#!/usr/bin/env python3
"""Builds a local copy of Debian 12's package archive, for the tests of the OS package side.

The copy is laid out as a Debian mirror is (one directory per archive, as in the URLs):

  DIR/debian/dists/bookworm/InRelease
  DIR/debian/dists/bookworm/main/binary-{amd64,arm64}/Packages
  DIR/debian/dists/bookworm-updates/...
  DIR/debian-security/dists/bookworm-security/...
  DIR/debian/pool/main/..., DIR/debian-security/pool/updates/main/...

The metadata is the real one this machine's apt fetched (/var/lib/apt/lists, kept there
lz4-compressed): each InRelease is copied byte for byte, signature included, and each Packages
file is decompressed and checked against the SHA256 line its InRelease gives for it. Only the
uncompressed Packages is served; InRelease also names Packages.xz, which a client then finds
missing and falls back from.

The pool holds a part of the archive: for each arch, the recursive dependencies (apt-cache
depends, every alternative, no recommends) of the given packages, of every package that is
Priority: required or Essential: yes in bookworm, and of apt. That is a superset of what a
resolver picks for those packages, at the candidate versions apt sees. Every .deb is checked
against the SHA-256 in the Packages files.

Usage: make-deb-mirror.py --out DIR --packages NAME [NAME ...] [--arch amd64 --arch arm64]
                          [--debs CACHEDIR]
The .debs are kept in CACHEDIR (default DIR/../debian-debs), so a rebuild only downloads what
changed. The mirror is built in DIR.tmp-PID and renamed to DIR when complete; DIR/README.txt
says what it holds.
"""

import argparse
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
from pathlib import Path

SUITES = ["bookworm", "bookworm-updates", "bookworm-security"]
ARCHES = ["amd64", "arm64"]
DEPENDS = ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
           "--no-breaks", "--no-replaces", "--no-enhances"]


class Failure(Exception):
    pass


def log(message):
    print(f"make-deb-mirror: {message}", flush=True)


def run(argv, **kwargs):
    """stdout of argv; a failure names the command and shows its stderr."""
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    if result.returncode != 0:
        raise Failure(f"'{' '.join(argv[:4])} ...' exited {result.returncode}:\n{result.stderr.strip()}")
    return result.stdout


def stanzas(text):
    """The paragraphs of a deb822 text (Packages, apt-get indextargets) as dicts of the
    single-line fields; continuation lines are dropped."""
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def url_path(url):
    """The path of a URL, unquoted and without the leading slash: DIR/<this> is where it goes."""
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path).lstrip("/")


# --- metadata ---------------------------------------------------------------------------------

class Target:
    """One suite's main/binary-ARCH/Packages as apt keeps it, and the InRelease naming it."""

    def __init__(self, fields):
        self.suite = fields["Codename"]
        self.arch = fields["Architecture"]
        self.metakey = fields["MetaKey"]  # main/binary-amd64/Packages
        self.list_file = Path(fields["Filename"])
        # The list files are named after their URLs: the InRelease one shares the prefix.
        name = self.list_file.name
        self.inrelease_file = self.list_file.with_name(name[:name.rindex(self.metakey.replace("/", "_"))]
                                                       + "InRelease")
        self.dists = url_path(fields["Base-URI"])  # debian/dists/bookworm/
        self.text = None

    def packages(self):
        """The decompressed Packages file, checked against its InRelease."""
        if self.list_file.suffix == ".lz4":
            data = subprocess.run(["lz4", "-dc", str(self.list_file)], stdout=subprocess.PIPE,
                                  check=True).stdout
        elif self.list_file.name.endswith("_Packages"):
            data = self.list_file.read_bytes()
        else:
            raise Failure(f"{self.list_file}: only .lz4 and uncompressed lists are handled")
        want = inrelease_sha256(self.inrelease_file).get(self.metakey)
        if want is None:
            raise Failure(f"{self.inrelease_file} has no SHA256 line for {self.metakey}")
        got = (hashlib.sha256(data).hexdigest(), len(data))
        if got != want:
            raise Failure(f"{self.list_file} decompresses to sha256 {got[0]}, {got[1]} bytes; "
                          f"{self.inrelease_file.name} says {want[0]}, {want[1]} bytes for {self.metakey}")
        return data


def inrelease_sha256(path):
    """The SHA256 section of an InRelease: {name: (sha256, size)}."""
    section, entries = False, {}
    for line in path.read_text().splitlines():
        if line.startswith("SHA256:"):
            section = True
        elif section and line.startswith(" "):
            digest, size, name = line.split()
            entries[name] = (digest, int(size))
        elif section:
            break
    return entries


def find_targets(arches):
    """{(suite, arch): Target} for the main Packages of every suite and arch wanted."""
    targets = {}
    for fields in stanzas(run(["apt-get", "indextargets"])):
        if (fields.get("Target-Of") == "deb" and fields.get("Identifier") == "Packages"
                and fields.get("Component") == "main" and fields.get("Codename") in SUITES
                and fields.get("Architecture") in arches):
            target = Target(fields)
            if target.list_file.exists() and target.inrelease_file.exists():
                targets[(target.suite, target.arch)] = target
    missing = [f"{s} {a}" for s in SUITES for a in arches if (s, a) not in targets]
    if missing:
        foreign = [a for a in arches if a != native_arch()]
        hint = "".join(f"dpkg --add-architecture {a} && " for a in foreign)
        raise Failure(f"no apt lists in /var/lib/apt/lists for: {', '.join(missing)} "
                      f"(the sources must have {' '.join(SUITES)} main; then run: {hint}apt-get update)")
    return targets


def native_arch():
    return run(["dpkg", "--print-architecture"]).strip()


class Index:
    """What the Packages files of one arch hold, over the three suites."""

    def __init__(self, arch, texts):
        self.arch = arch
        self.arches = {}  # name -> the Architecture values it has (the arch, "all")
        self.base = set()  # required or essential in bookworm itself
        for suite, text in texts.items():
            for fields in stanzas(text):
                name = fields["Package"]
                self.arches.setdefault(name, set()).add(fields["Architecture"])
                if suite == "bookworm" and (fields.get("Priority") == "required"
                                            or fields.get("Essential") == "yes"):
                    self.base.add(name)

    def spec(self, name):
        """How apt names the package of this arch: NAME:arm64, or NAME:all for an arch: all one."""
        return f"{name}:{self.arch}" if self.arch in self.arches[name] else f"{name}:all"


# --- the pool ---------------------------------------------------------------------------------

def closure(index, roots):
    """The names apt-cache depends reaches from roots for index.arch, and the ones it reaches
    that are not in that arch's archive.

    For a foreign arch, apt resolves the dependencies of arch: all packages in the native arch
    (debconf:all -> perl-base, not perl-base:arm64), so names met that way are queried again as
    packages of the arch until nothing new turns up."""
    native = native_arch()
    names, expanded = set(), set()
    pending = set(roots)
    while pending:
        out = run(DEPENDS + sorted(index.spec(n) for n in pending))
        expanded |= pending
        for line in out.splitlines():
            if not line or line[0].isspace() or line.startswith("<"):
                continue  # a dependency line, or a virtual package
            name, _, qualifier = line.partition(":")
            names.add(name)
            if qualifier == index.arch or (not qualifier and (index.arch == native
                                                              or index.arches.get(name) == {"all"})):
                expanded.add(name)
        pending = {n for n in names - expanded if n in index.arches}
    return sorted(n for n in names if n in index.arches), sorted(n for n in names if n not in index.arches)


class Deb:
    def __init__(self, line):
        url, filename, size, digest = line.split()
        self.url = url.strip("'")
        self.filename = filename  # how apt-get download names it
        self.size = int(size)
        self.sha256 = digest.removeprefix("SHA256:")
        self.path = url_path(self.url)  # debian/pool/main/a/apt/apt_2.6.1_amd64.deb

    def good(self, path):
        return path.is_file() and path.stat().st_size == self.size and sha256_file(path) == self.sha256


def print_uris(index, names):
    specs = [index.spec(n) for n in names]
    lines = [line for line in run(["apt-get", "download", "--print-uris"] + specs).splitlines() if line]
    if len(lines) != len(specs):
        raise Failure(f"apt-get download --print-uris gave {len(lines)} URIs for {len(specs)} packages")
    return [Deb(line) for line in lines]


def fetch(debs, cache):
    """Makes cache/<path> hold each deb, downloading the ones missing; all are checked."""
    missing = {deb.path: deb for deb in debs if not deb.good(cache / deb.path)}
    if not missing:
        return 0
    cache.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
    try:
        if os.geteuid() == 0:
            try:  # apt downloads as _apt, which must be able to write there
                os.chown(scratch, pwd.getpwnam("_apt").pw_uid, -1)
            except KeyError:
                pass
        log(f"downloading {len(missing)} packages")
        # apt-get download takes NAME:ARCH=VERSION; apt's file name, name_version_arch.deb,
        # gives them (a version's epoch colon is %3a there).
        argv = ["apt-get", "download", "-q"]
        for deb in sorted(missing.values(), key=lambda d: d.path):
            name, version, arch = deb.filename.removesuffix(".deb").split("_")
            argv.append(f"{name}:{arch}={urllib.parse.unquote(version)}")
        subprocess.run(argv, cwd=scratch, check=True, stdout=subprocess.DEVNULL)
        for deb in missing.values():
            got = scratch / deb.filename
            if not deb.good(got):
                raise Failure(f"{deb.url}: the downloaded file is missing or its SHA-256 is not {deb.sha256}")
            (cache / deb.path).parent.mkdir(parents=True, exist_ok=True)
            os.replace(got, cache / deb.path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return len(missing)


# --- the mirror -------------------------------------------------------------------------------

def build(tmp, packages, arches, cache):
    targets = find_targets(arches)
    dates = {}
    for target in targets.values():
        dists = tmp / target.dists
        (dists / target.metakey).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target.inrelease_file, dists / "InRelease")
        data = target.packages()
        (dists / target.metakey).write_bytes(data)
        target.text = data.decode()
        for line in target.inrelease_file.read_text().splitlines():
            if line.startswith("Date:"):
                dates[target.suite] = line
    log("InRelease and Packages copied and checked: "
        + ", ".join(f"{s} {a}" for s, a in sorted(targets)))

    report = {}
    for arch in arches:
        index = Index(arch, {s: targets[(s, arch)].text for s in SUITES})
        unknown = [p for p in packages if p not in index.arches]
        for p in unknown:
            log(f"{p}: not in the {arch} archive, skipped")
        roots = sorted(({p for p in packages if p in index.arches} | index.base | {"apt"}))
        names, absent = closure(index, roots)
        debs = print_uris(index, names)
        downloaded = fetch(debs, cache)
        for deb in debs:
            dest = tmp / deb.path
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(cache / deb.path, dest)
            if not deb.good(dest):
                raise Failure(f"{dest}: SHA-256 is not {deb.sha256}")
        report[arch] = dict(names=names, unknown=unknown, absent=absent, base=len(index.base),
                            count=len(debs), size=sum(d.size for d in debs), downloaded=downloaded)
        log(f"{arch}: {len(debs)} debs, {len(debs) and sum(d.size for d in debs) / 1e6:.1f} MB "
            f"({downloaded} downloaded, {len(absent)} names reached but not in the archive)")
    write_readme(tmp, packages, dates, report)
    return report


def write_readme(tmp, packages, dates, report):
    lines = [
        "A local copy of Debian 12 (bookworm) main, laid out as a Debian mirror is: debian/ and",
        "debian-security/ are the two archives, named as in their URLs.",
        "",
        "dists/: the real InRelease files (signed) of bookworm, bookworm-updates and",
        "bookworm-security, and the uncompressed main/binary-ARCH/Packages each names.",
        "pool/: for each arch, the recursive dependencies (every alternative, no recommends) of",
        "the packages below, of everything Priority: required or Essential: yes, and of apt.",
        "",
    ]
    lines += [f"{suite}: {dates[suite]}" for suite in SUITES if suite in dates]
    lines.append("")
    lines += textwrap.wrap("Packages asked for: " + " ".join(packages), 96, break_on_hyphens=False)
    for arch, r in report.items():
        lines.append("")
        lines.append(f"{arch}: {r['count']} debs, {r['size']} bytes ({r['size'] / 1e6:.1f} MB); "
                     f"{r['base']} required/essential in bookworm")
        if r["unknown"]:
            lines.append(f"  not in the {arch} archive: {' '.join(r['unknown'])}")
        lines += textwrap.wrap(" ".join(r["names"]), 96, initial_indent="  ", subsequent_indent="  ",
                               break_on_hyphens=False)
    (tmp / "README.txt").write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--packages", required=True, nargs="+", metavar="NAME")
    parser.add_argument("--arch", action="append", choices=ARCHES, dest="arches")
    parser.add_argument("--debs", type=Path, help="where downloaded .debs are kept (default DIR/../debian-debs)")
    args = parser.parse_args()
    out = args.out.resolve()
    arches = list(dict.fromkeys(args.arches or ARCHES))
    cache = (args.debs or out.parent / "debian-debs").resolve()

    started = time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    old = out.with_name(f"{out.name}.old-{os.getpid()}")
    try:
        tmp.mkdir()
        report = build(tmp, args.packages, arches, cache)
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    except (Failure, subprocess.CalledProcessError, OSError) as e:
        print(f"make-deb-mirror: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)

    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log(f"{out}: {total / 1e6:.1f} MB in {time.monotonic() - started:.0f} s")
    for arch, r in report.items():
        log(f"  {arch}: {r['count']} debs, {r['size'] / 1e6:.1f} MB"
            + (f"; not in the archive: {' '.join(r['unknown'])}" if r["unknown"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
