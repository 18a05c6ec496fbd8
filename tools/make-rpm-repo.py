#!/usr/bin/env python3
"""Builds a set of real rpm repositories laid out like Rocky Linux 9's mirrors, for tests.

    make-rpm-repo.py --out DIR [--debs CACHEDIR]

writes DIR/rockylinux/9/{BaseOS,AppStream,extras}/{x86_64,aarch64}/os/, each with
Packages/*.rpm and repodata/ made by createrepo_c; BaseOS also carries a comps file with the
group "core". The rpms are built with rpmbuild from the table SOURCES below (one entry per
source rpm, with its binary packages); their programs and libraries are copies of Debian's
static busybox for the rpm's arch (amd64 for x86_64, arm64 for aarch64), their configs small
text files. Dependencies are written out in full (AutoReqProv: no), so the dependency graph
is exactly the table's. DIR is built as DIR.tmp-PID and renamed into place; DIR/README.txt
is written last.

The graph is EL9-like, sized to exercise a dependency solver on the names the rocky-9
profile asks for (os-profiles/packages.yaml mapped by os-profiles/rocky-9.yaml):
  conntrack-tools ipset ipvsadm socat ebtables ethtool iptables iproute chrony curl tar
  ca-certificates kmod procps-ng nfs-utils iscsi-initiator-utils libseccomp container-selinux
  keepalived haproxy nginx nginx-mod-stream
All of them install on both arches. The hard cases, and the packages that carry them:

  virtual provides     conntrack-tools requires sonames only (libmnl.so.0()(64bit), ...);
                       "iptables" and "ebtables" are no package's name: iptables-nft
                       provides both (as in EL9) and ships /usr/sbin/ebtables; nginx requires
                       system-logos-httpd (provided by rocky-logos-httpd); container-selinux
                       requires selinux-policy-base >= 38.1.45 (provided by
                       selinux-policy-targeted); epel-release requires redhat-release >= 9
                       (provided by rocky-release); rpm requires /bin/sh, which bash provides
                       explicitly (its file is /usr/bin/sh).
  arch-qualified deps  ipset requires ipset-libs(x86-64) = 7.11-8.el9 (ipset-libs(aarch-64) on
                       aarch64), and so on for every -libs split: rpm adds the NAME(ISA)
                       provide to every arch package.
  file deps, primary   iscsi-initiator-utils requires /usr/bin/sh and iptables-nft and
                       p11-kit-trust require /usr/sbin/alternatives: paths that createrepo_c
                       lists in primary.xml (it keeps /etc/*, *bin/* and /usr/lib/sendmail).
  file deps, filelists nfs-utils requires /usr/libexec/nfs-utils/helper, owned by
                       nfs-utils-common and listed only in filelists.xml.
  versioned deps       iptables-nft requires libnftnl >= 1.2.0 (BaseOS has 1.1.9 and 1.2.2);
                       ipvsadm requires popt < 2; iproute requires libbpf >= 2:0.6.0 and
                       libcurl requires openssl-libs >= 1:3.0.1 (epochs); curl requires
                       libcurl(ISA) >= its own version-release.
  epochs               nfs-utils, nfs-utils-common, libnfsidmap 1:, tar 2:, ethtool 2:,
                       libbpf 2:, shadow-utils 2:, openssl-libs 1:, nginx 1:,
                       container-selinux 3:.
  obsoletes            ipset-libs obsoletes libipset <= 7.0; libipset-6.38 is in BaseOS too
                       (the old keepalived still requires its libipset.so.11).
  several versions     keepalived 2.1.5 in BaseOS and 2.2.8 in AppStream; curl and libcurl
                       7.76.1-14.el9 and 7.76.1-26.el9 both in BaseOS; libnftnl 1.1.9 and
                       1.2.2. The newest must win (libipset must never be picked).
  cycles               nfs-utils-common <-> libnfsidmap; glibc <-> glibc-common;
                       rpm <-> rpm-libs; iscsi-initiator-utils <-> -iscsiuio.
  noarch               ca-certificates, container-selinux, selinux-policy(-targeted),
                       crypto-policies, rocky-release and friends: one rpm, the same bytes in
                       both arch repos. ncurses-base and nginx-filesystem are noarch
                       subpackages of arch source rpms. ca-certificates (noarch) requires
                       p11-kit-trust (arch), so it pulls different rpms per arch.
  comps group core     BaseOS's comps: mandatory basesystem filesystem setup glibc bash
                       coreutils rocky-release rpm shadow-utils curl procps-ng, default chrony; closed
                       within BaseOS. A closure relative to it drops glibc, bash, openssl-libs,
                       curl, ca-certificates (requested, but already in core), ...; chrony,
                       only a default member, stays in it.
  os-release           rocky-release ships /etc/os-release (ID="rocky", VERSION_ID="9.5") and
                       /etc/redhat-release.
  unsatisfiable        kubexm-broken (extras) requires libmissing.so.9()(64bit), which
                       nothing provides.
  arch gap             x86-only-tool exists only in BaseOS x86_64, and only the x86_64
                       iscsi-initiator-utils requires it: the two arches' closures differ.
  extras               kubexm-broken and epel-release (harmless, noarch).

Files go under /usr/bin, /usr/sbin, /usr/lib64 and /etc, with /usr/libexec for the
filelists-only path and /usr/share for a few data files; filesystem owns the top directories
and the /bin -> usr/bin style links. No package has a scriptlet.
"""

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EPOCH = 1731974400  # 2024-11-19, Rocky Linux 9.5's release; build times and mtimes.
REPOS = ["BaseOS", "AppStream", "extras"]
ARCHES = {
    "x86_64": {"deb": "amd64", "isa": "(x86-64)", "ldso": "ld-linux-x86-64.so.2"},
    "aarch64": {"deb": "arm64", "isa": "(aarch-64)", "ldso": "ld-linux-aarch64.so.1"},
}
BINARY_DIRS = ("/usr/bin/", "/usr/sbin/", "/usr/lib64/", "/usr/libexec/")

# The comps group "core" of BaseOS.
CORE_MANDATORY = ["basesystem", "filesystem", "setup", "glibc", "bash", "coreutils", "rocky-release", "rpm",
                  "shadow-utils", "curl", "procps-ng"]
CORE_DEFAULT = ["chrony"]

LIBC = ["libc.so.6()(64bit)", "libc.so.6(GLIBC_2.34)(64bit)", "rtld(GNU_HASH)"]


class Pkg:
    """One binary rpm. Dependency strings may use {isa} ((x86-64) or (aarch-64)), {ldso}
    (the dynamic loader's soname) and {evr} (the source's [epoch:]version-release). files is
    a whitespace-separated list: "path", "path/" (a directory) or "path->target" (a symlink).
    arch_requires adds requirements on one arch only."""

    def __init__(self, name, summary, requires=(), provides=(), obsoletes=(), files="", noarch=False,
                 arch_requires=None):
        self.name, self.summary, self.noarch = name, summary, noarch
        self.requires, self.provides, self.obsoletes = list(requires), list(provides), list(obsoletes)
        self.files = files.split()
        self.arch_requires = arch_requires or {}


class Src:
    """One source rpm: its [epoch:]version-release, repository and binary packages. A source
    rpm named like none of its packages (iptables) builds no package of its own name."""

    def __init__(self, name, evr, repo, packages, license="GPL-2.0-or-later", only=None):
        self.name, self.evr, self.repo, self.packages, self.license = name, evr, repo, packages, license
        self.epoch, _, vr = evr.rpartition(":")
        self.version, self.release = vr.rsplit("-", 1)
        self.arches = [only] if only else list(ARCHES)

    @property
    def noarch(self):
        return all(p.noarch for p in self.packages)


def libpkg(name, summary, sonames, requires=(), provides=(), files="", **kw):
    """A shared-library package: provides its sonames, ships them under /usr/lib64."""
    libs = " ".join(f"/usr/lib64/{s}" for s in sonames)
    return Pkg(name, summary, requires=list(requires) + LIBC,
               provides=[f"{s}()(64bit)" for s in sonames] + list(provides), files=f"{libs} {files}", **kw)


SOURCES = [
    # --- BaseOS: the core group and what it needs --------------------------------------------
    Src("basesystem", "11-13.el9", "BaseOS", [
        Pkg("basesystem", "The skeleton package which defines a simple Rocky Linux system",
            requires=["filesystem", "setup"], noarch=True)], license="Public Domain"),
    Src("filesystem", "3.16-5.el9", "BaseOS", [
        Pkg("filesystem", "The basic directory layout for a Linux system", requires=["setup"],
            files="/etc/ /usr/ /usr/bin/ /usr/sbin/ /usr/lib/ /usr/lib64/ /usr/libexec/ /usr/share/ /var/ "
                  "/bin->usr/bin /sbin->usr/sbin /lib->usr/lib /lib64->usr/lib64")], license="Public Domain"),
    Src("setup", "2.13.7-10.el9", "BaseOS", [
        Pkg("setup", "A set of system configuration and setup files", noarch=True,
            files="/etc/passwd /etc/group /etc/shells /etc/hosts /etc/services /etc/profile /etc/bashrc")],
        license="Public Domain"),
    Src("glibc", "2.34-125.el9_5.1", "BaseOS", [
        Pkg("glibc", "The GNU libc libraries",
            requires=["glibc-common = {evr}", "basesystem"],
            provides=["libc.so.6()(64bit)", "libc.so.6(GLIBC_2.34)(64bit)", "libm.so.6()(64bit)",
                      "libresolv.so.2()(64bit)", "{ldso}()(64bit)", "rtld(GNU_HASH)"],
            files="/usr/lib64/libc.so.6 /usr/lib64/libm.so.6 /usr/lib64/libresolv.so.2 /usr/lib64/{ldso} "
                  "/usr/sbin/ldconfig /etc/ld.so.conf /etc/nsswitch.conf"),
        Pkg("glibc-common", "Common binaries and locale data for glibc",
            requires=["glibc{isa} = {evr}"] + LIBC,
            files="/usr/bin/ldd /usr/bin/getent /usr/bin/locale /usr/bin/iconv")], license="LGPL-2.1-or-later"),
    Src("bash", "5.1.8-9.el9", "BaseOS", [
        Pkg("bash", "The GNU Bourne Again shell",
            requires=["filesystem >= 3", "libtinfo.so.6()(64bit)"] + LIBC,
            provides=["/bin/sh", "/bin/bash"],
            files="/usr/bin/bash /usr/bin/sh /etc/skel/.bashrc /etc/skel/.bash_profile")], license="GPL-3.0-or-later"),
    Src("ncurses", "6.2-10.20210508.el9", "BaseOS", [
        libpkg("ncurses-libs", "Ncurses libraries", ["libtinfo.so.6", "libncursesw.so.6"],
               requires=["ncurses-base = {evr}"]),
        Pkg("ncurses-base", "Descriptions of common terminals", noarch=True, files="/etc/terminfo/README")],
        license="MIT"),
    Src("coreutils", "8.32-36.el9", "BaseOS", [
        Pkg("coreutils", "A set of basic GNU tools commonly used in shell scripts",
            requires=["coreutils-common{isa} = {evr}", "libacl.so.1()(64bit)", "libattr.so.1()(64bit)",
                      "libcrypto.so.3()(64bit)"] + LIBC,
            files="/usr/bin/cat /usr/bin/cp /usr/bin/ls /usr/bin/ln /usr/bin/mkdir /usr/bin/mv /usr/bin/rm "
                  "/usr/bin/chmod /usr/bin/env /usr/bin/sort"),
        Pkg("coreutils-common", "coreutils common optional components", files="/etc/DIR_COLORS")],
        license="GPL-3.0-or-later"),
    Src("acl", "2.3.1-4.el9", "BaseOS", [
        libpkg("libacl", "Dynamic library for access control list support", ["libacl.so.1"],
               requires=["libattr.so.1()(64bit)"])], license="LGPL-2.1-or-later"),
    Src("attr", "2.5.1-3.el9", "BaseOS", [
        libpkg("libattr", "Dynamic library for extended attribute support", ["libattr.so.1"])],
        license="LGPL-2.1-or-later"),
    Src("openssl", "1:3.2.2-6.el9_5", "BaseOS", [
        Pkg("openssl-libs", "A general purpose cryptography library with TLS implementation",
            requires=["ca-certificates >= 2008-5", "crypto-policies >= 20180730", "libz.so.1()(64bit)"] + LIBC,
            provides=["libcrypto.so.3()(64bit)", "libcrypto.so.3(OPENSSL_3.0.0)(64bit)", "libssl.so.3()(64bit)",
                      "libssl.so.3(OPENSSL_3.0.0)(64bit)"],
            files="/usr/lib64/libcrypto.so.3 /usr/lib64/libssl.so.3 /etc/pki/tls/openssl.cnf")],
        license="Apache-2.0"),
    Src("crypto-policies", "20240828-2.git626aa59.el9", "BaseOS", [
        Pkg("crypto-policies", "System-wide crypto policies", noarch=True,
            files="/etc/crypto-policies/config")], license="LGPL-2.1-or-later"),
    Src("ca-certificates", "2024.2.69_v8.0.303-91.4.el9_4", "BaseOS", [
        Pkg("ca-certificates", "The Mozilla CA root certificate bundle", noarch=True,
            requires=["p11-kit-trust >= 0.23.12", "p11-kit >= 0.23.12", "coreutils"],
            files="/etc/pki/tls/certs/ca-bundle.crt /etc/pki/tls/cert.pem "
                  "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem /etc/ssl/certs->../pki/tls/certs")],
        license="MIT"),
    Src("p11-kit", "0.25.3-3.el9", "BaseOS", [
        libpkg("p11-kit", "Library for loading and sharing PKCS#11 modules", ["libp11-kit.so.0"],
               requires=["libffi.so.8()(64bit)"], files="/usr/bin/p11-kit /etc/pkcs11/pkcs11.conf.example"),
        Pkg("p11-kit-trust", "System trust module from p11-kit",
            requires=["p11-kit{isa} = {evr}", "libtasn1.so.6()(64bit)", "/usr/sbin/alternatives"] + LIBC,
            files="/usr/bin/trust /usr/lib64/pkcs11/p11-kit-trust.so")], license="BSD-3-Clause"),
    Src("libffi", "3.4.2-8.el9", "BaseOS", [
        libpkg("libffi", "A portable foreign function interface library", ["libffi.so.8"])], license="MIT"),
    Src("libtasn1", "4.16.0-8.el9_1", "BaseOS", [
        libpkg("libtasn1", "The ASN.1 library used in GNUTLS", ["libtasn1.so.6"])], license="LGPL-2.1-or-later"),
    Src("chkconfig", "1.24-1.el9", "BaseOS", [
        Pkg("alternatives", "A tool to maintain symbolic links determining default commands",
            requires=LIBC, files="/usr/sbin/alternatives /usr/sbin/update-alternatives /etc/alternatives/")]),
    Src("zlib", "1.2.11-40.el9", "BaseOS", [
        libpkg("zlib", "Compression and decompression library", ["libz.so.1"])], license="Zlib"),
    Src("zstd", "1.5.1-2.el9", "BaseOS", [
        libpkg("libzstd", "Zstd shared library", ["libzstd.so.1"])], license="BSD-3-Clause"),
    Src("xz", "5.2.5-8.el9_0", "BaseOS", [
        libpkg("xz-libs", "Libraries for decoding LZMA compression", ["liblzma.so.5"])], license="Public Domain"),
    Src("popt", "1.18-8.el9", "BaseOS", [
        libpkg("popt", "C library for parsing command line parameters", ["libpopt.so.0"],
               files="/etc/popt.d/")], license="MIT"),
    Src("rocky-release", "9.5-1.2.el9", "BaseOS", [
        Pkg("rocky-release", "Rocky Linux release files", noarch=True,
            requires=["rocky-repos", "rocky-gpg-keys"],
            provides=["system-release = {evr}", "system-release(releasever) = 9", "redhat-release = 9.5",
                      "centos-release = 9.5"],
            files="/etc/os-release /etc/redhat-release /etc/rocky-release /etc/system-release "
                  "/etc/system-release-cpe /etc/issue"),
        Pkg("rocky-repos", "Rocky Linux package repositories", noarch=True,
            provides=["system-repos = {evr}"],
            files="/etc/yum.repos.d/rocky.repo /etc/yum.repos.d/rocky-extras.repo"),
        Pkg("rocky-gpg-keys", "Rocky Linux RPM keys", noarch=True,
            files="/etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9")], license="BSD-3-Clause"),
    Src("rpm", "4.16.1.3-34.el9", "BaseOS", [
        Pkg("rpm", "The RPM package management system",
            requires=["rpm-libs{isa} = {evr}", "/bin/sh", "librpm.so.9()(64bit)", "librpmio.so.9()(64bit)",
                      "libpopt.so.0()(64bit)"] + LIBC,
            files="/usr/bin/rpm /usr/bin/rpm2cpio /usr/bin/rpmdb /usr/bin/rpmkeys /usr/bin/rpmquery /etc/rpm/"),
        libpkg("rpm-libs", "Libraries for manipulating RPM packages", ["librpm.so.9", "librpmio.so.9"],
               requires=["rpm = {evr}", "libz.so.1()(64bit)", "libcrypto.so.3()(64bit)", "libpopt.so.0()(64bit)",
                         "libzstd.so.1()(64bit)", "liblzma.so.5()(64bit)"])]),
    Src("shadow-utils", "2:4.9-9.el9", "BaseOS", [
        Pkg("shadow-utils", "Utilities for managing accounts and shadow password files",
            requires=["setup", "libacl.so.1()(64bit)", "libattr.so.1()(64bit)", "libcrypt.so.2()(64bit)"] + LIBC,
            files="/usr/sbin/useradd /usr/sbin/usermod /usr/sbin/userdel /usr/sbin/groupadd /usr/bin/newgrp "
                  "/etc/login.defs /etc/default/useradd")], license="BSD-3-Clause"),
    Src("libxcrypt", "4.4.18-3.el9", "BaseOS", [
        Pkg("libxcrypt", "Extended crypt library for descrypt, md5crypt, bcrypt, and others",
            requires=LIBC, provides=["libcrypt.so.2()(64bit)", "libcrypt.so.2(XCRYPT_2.0)(64bit)"],
            files="/usr/lib64/libcrypt.so.2")], license="LGPL-2.1-or-later"),
    # Two builds of curl in one repository: 7.76.1-26 must win.
    Src("curl", "7.76.1-14.el9", "BaseOS", [
        Pkg("curl", "A utility for getting files from remote servers (FTP, HTTP, and others)",
            requires=["libcurl{isa} >= {evr}", "libcurl.so.4()(64bit)"] + LIBC, files="/usr/bin/curl"),
        libpkg("libcurl", "A library for getting files from web servers", ["libcurl.so.4"],
               requires=["openssl-libs >= 1:3.0.1", "libssl.so.3()(64bit)", "libcrypto.so.3()(64bit)",
                         "libz.so.1()(64bit)", "libnghttp2.so.14()(64bit)"])], license="curl"),
    Src("curl", "7.76.1-26.el9", "BaseOS", [
        Pkg("curl", "A utility for getting files from remote servers (FTP, HTTP, and others)",
            requires=["libcurl{isa} >= {evr}", "libcurl.so.4()(64bit)"] + LIBC, files="/usr/bin/curl"),
        libpkg("libcurl", "A library for getting files from web servers", ["libcurl.so.4"],
               requires=["openssl-libs >= 1:3.0.1", "libssl.so.3()(64bit)", "libcrypto.so.3()(64bit)",
                         "libz.so.1()(64bit)", "libnghttp2.so.14()(64bit)"])], license="curl"),
    Src("nghttp2", "1.43.0-6.el9", "BaseOS", [
        libpkg("libnghttp2", "A library implementing the HTTP/2 protocol", ["libnghttp2.so.14"])], license="MIT"),

    # --- BaseOS: the rest ----------------------------------------------------------------------
    Src("tar", "2:1.34-7.el9", "BaseOS", [
        Pkg("tar", "GNU file archiving program", requires=["libacl.so.1()(64bit)"] + LIBC,
            files="/usr/bin/tar /usr/bin/gtar")], license="GPL-3.0-or-later"),
    Src("libmnl", "1.0.4-16.el9", "BaseOS", [
        libpkg("libmnl", "A minimalistic Netlink library", ["libmnl.so.0"],
               provides=["libmnl.so.0(LIBMNL_1.0)(64bit)"])], license="LGPL-2.1-or-later"),
    Src("libnfnetlink", "1.0.1-21.el9", "BaseOS", [
        libpkg("libnfnetlink", "Netfilter netlink userspace library", ["libnfnetlink.so.0"])]),
    Src("libnetfilter_conntrack", "1.0.9-1.el9", "BaseOS", [
        libpkg("libnetfilter_conntrack", "Netfilter conntrack userspace library", ["libnetfilter_conntrack.so.3"],
               requires=["libmnl.so.0()(64bit)", "libnfnetlink.so.0()(64bit)"])]),
    Src("libnftnl", "1.1.9-2.el9", "BaseOS", [
        libpkg("libnftnl", "Library for low-level interaction with nftables Netlink's API", ["libnftnl.so.11"],
               requires=["libmnl.so.0()(64bit)"])]),
    Src("libnftnl", "1.2.2-3.el9", "BaseOS", [
        libpkg("libnftnl", "Library for low-level interaction with nftables Netlink's API", ["libnftnl.so.11"],
               requires=["libmnl.so.0()(64bit)"])]),
    Src("iptables", "1.8.10-4.el9_4", "BaseOS", [
        Pkg("iptables-nft", "nftables compatibility for iptables, arptables and ebtables",
            requires=["iptables-libs{isa} = {evr}", "libnftnl >= 1.2.0", "libnftnl.so.11()(64bit)",
                      "libmnl.so.0()(64bit)", "libxtables.so.12()(64bit)", "/usr/sbin/alternatives"] + LIBC,
            provides=["iptables = {evr}", "ebtables = {evr}", "arptables = {evr}"],
            files="/usr/sbin/iptables /usr/sbin/iptables-nft /usr/sbin/iptables-save /usr/sbin/iptables-restore "
                  "/usr/sbin/ip6tables /usr/sbin/ebtables /usr/sbin/ebtables-nft /usr/sbin/arptables "
                  "/etc/ethertypes"),
        libpkg("iptables-libs", "libxtables and iptables extensions userspace support",
               ["libxtables.so.12", "libip4tc.so.2", "libip6tc.so.2"])]),
    Src("ipset", "7.11-8.el9", "BaseOS", [
        Pkg("ipset", "Manage Linux IP sets",
            requires=["ipset-libs{isa} = {evr}", "libipset.so.13()(64bit)"] + LIBC,
            files="/usr/sbin/ipset /etc/sysconfig/ipset-config"),
        libpkg("ipset-libs", "Shared library providing the IP sets functionality", ["libipset.so.13"],
               requires=["libmnl.so.0()(64bit)"], obsoletes=["libipset <= 7.0"])]),
    Src("libipset", "6.38-4.el9", "BaseOS", [
        libpkg("libipset", "Shared library providing the IP sets functionality (old name)", ["libipset.so.11"],
               requires=["libmnl.so.0()(64bit)"])]),
    Src("ethtool", "2:6.2-1.el9", "BaseOS", [
        Pkg("ethtool", "Settings tool for Ethernet NICs", requires=["libmnl.so.0()(64bit)"] + LIBC,
            files="/usr/sbin/ethtool")]),
    Src("iproute", "6.2.0-6.el9_4", "BaseOS", [
        Pkg("iproute", "Advanced IP routing and network device configuration tools",
            requires=["libmnl.so.0()(64bit)", "libelf.so.1()(64bit)", "libcap.so.2()(64bit)", "libbpf.so.1()(64bit)",
                      "libbpf >= 2:0.6.0"] + LIBC,
            files="/usr/sbin/ip /usr/sbin/ss /usr/sbin/bridge /usr/sbin/rtmon /etc/iproute2/rt_tables "
                  "/etc/iproute2/rt_protos")]),
    Src("elfutils", "0.191-4.el9", "BaseOS", [
        libpkg("elfutils-libelf", "Library to read and write ELF files", ["libelf.so.1"],
               requires=["libz.so.1()(64bit)", "libzstd.so.1()(64bit)"])], license="LGPL-3.0-or-later"),
    Src("libcap", "2.48-9.el9_2", "BaseOS", [
        libpkg("libcap", "Library for getting and setting POSIX.1e capabilities", ["libcap.so.2"])],
        license="BSD-3-Clause"),
    Src("libbpf", "2:1.4.0-1.el9", "BaseOS", [
        libpkg("libbpf", "Libbpf library", ["libbpf.so.1"], requires=["libelf.so.1()(64bit)", "libz.so.1()(64bit)"])],
        license="LGPL-2.1-only"),
    Src("chrony", "4.5-3.el9", "BaseOS", [
        Pkg("chrony", "An NTP client/server",
            requires=["libseccomp.so.2()(64bit)", "libnettle.so.8()(64bit)", "libcap.so.2()(64bit)",
                      "shadow-utils"] + LIBC,
            files="/usr/sbin/chronyd /usr/bin/chronyc /etc/chrony.conf /etc/sysconfig/chronyd "
                  "/etc/logrotate.d/chrony")]),
    Src("nettle", "3.9.1-1.el9", "BaseOS", [
        libpkg("nettle", "A low-level cryptographic library", ["libnettle.so.8", "libhogweed.so.6"])],
        license="LGPL-3.0-or-later"),
    Src("libseccomp", "2.5.2-2.el9", "BaseOS", [
        libpkg("libseccomp", "Enhanced seccomp library", ["libseccomp.so.2"])], license="LGPL-2.1-only"),
    # sysctl, which applies a node's kernel settings; a mandatory member of core, as in EL9.
    Src("procps-ng", "3.3.17-14.el9", "BaseOS", [
        Pkg("procps-ng", "System and process monitoring utilities",
            requires=LIBC,
            provides=["procps = {evr}", "libprocps.so.8()(64bit)"],
            files="/usr/sbin/sysctl /usr/bin/ps /usr/bin/free /usr/bin/pgrep /usr/bin/pkill /usr/bin/top "
                  "/usr/lib64/libprocps.so.8"),
    ], license="GPL-2.0-or-later AND LGPL-2.0-or-later"),
    Src("kmod", "28-10.el9", "BaseOS", [
        Pkg("kmod", "Linux kernel module management utilities",
            requires=["kmod-libs{isa} = {evr}", "libkmod.so.2()(64bit)"] + LIBC,
            files="/usr/bin/kmod /usr/sbin/modprobe /usr/sbin/insmod /usr/sbin/rmmod /usr/sbin/lsmod "
                  "/usr/sbin/depmod /usr/sbin/modinfo /etc/depmod.d/dist.conf"),
        libpkg("kmod-libs", "Libraries to handle kernel module loading and unloading", ["libkmod.so.2"],
               requires=["libz.so.1()(64bit)", "libzstd.so.1()(64bit)", "liblzma.so.5()(64bit)",
                         "libcrypto.so.3()(64bit)"])]),
    # nfs-utils-common and libnfsidmap require each other; nfs-utils needs a file that only
    # filelists.xml lists.
    Src("nfs-utils", "1:2.5.4-27.el9", "BaseOS", [
        Pkg("nfs-utils", "NFS utilities and supporting clients and daemons for the kernel NFS server",
            requires=["nfs-utils-common{isa} = {evr}", "/usr/libexec/nfs-utils/helper", "libnfsidmap.so.1()(64bit)",
                      "libtirpc.so.3()(64bit)", "keyutils", "rpcbind"] + LIBC,
            files="/usr/sbin/mount.nfs /usr/sbin/umount.nfs /usr/sbin/showmount /usr/sbin/exportfs "
                  "/usr/sbin/rpc.statd /usr/sbin/rpc.nfsd /etc/nfs.conf /etc/nfsmount.conf"),
        Pkg("nfs-utils-common", "Files shared by the NFS client and server",
            requires=["libnfsidmap{isa} = {evr}"] + LIBC,
            files="/usr/libexec/nfs-utils/helper /usr/sbin/nfsidmap /etc/idmapd.conf "
                  "/etc/request-key.d/id_resolver.conf"),
        libpkg("libnfsidmap", "NFSv4 User and Group ID Mapping Library", ["libnfsidmap.so.1"],
               requires=["nfs-utils-common{isa} = {evr}"], files="/usr/lib64/libnfsidmap/nsswitch.so")]),
    Src("keyutils", "1.6.3-1.el9", "BaseOS", [
        Pkg("keyutils", "Linux Key Management Utilities",
            requires=["keyutils-libs{isa} = {evr}", "libkeyutils.so.1()(64bit)"] + LIBC,
            files="/usr/bin/keyctl /usr/sbin/request-key /etc/request-key.conf"),
        libpkg("keyutils-libs", "Key utilities library", ["libkeyutils.so.1"])]),
    Src("rpcbind", "1.2.6-7.el9", "BaseOS", [
        Pkg("rpcbind", "Universal Addresses to RPC Program Number Mapper",
            requires=["libtirpc.so.3()(64bit)", "shadow-utils"] + LIBC,
            files="/usr/bin/rpcbind /usr/bin/rpcinfo /etc/sysconfig/rpcbind")], license="BSD-3-Clause"),
    Src("libtirpc", "1.3.3-9.el9", "BaseOS", [
        libpkg("libtirpc", "Transport Independent RPC Library", ["libtirpc.so.3"],
               files="/etc/netconfig /etc/bindresvport.blacklist")], license="BSD-3-Clause"),
    # iscsi-initiator-utils and its -iscsiuio require each other; on x86_64 only, it also
    # requires x86-only-tool, which no aarch64 repository has.
    Src("iscsi-initiator-utils", "6.2.1.9-1.gita65a472.el9", "BaseOS", [
        Pkg("iscsi-initiator-utils", "iSCSI daemon and utility programs",
            requires=["iscsi-initiator-utils-iscsiuio{isa} = {evr}", "libisns.so.0()(64bit)", "libkmod.so.2()(64bit)",
                      "libcrypto.so.3()(64bit)", "/usr/bin/sh"] + LIBC,
            arch_requires={"x86_64": ["x86-only-tool >= 1.2"]},
            files="/usr/sbin/iscsiadm /usr/sbin/iscsid /usr/sbin/iscsi-iname /etc/iscsi/iscsid.conf "
                  "/etc/iscsi/initiatorname.iscsi"),
        Pkg("iscsi-initiator-utils-iscsiuio", "Userspace configuration daemon required for some iSCSI hardware",
            requires=["iscsi-initiator-utils = {evr}"] + LIBC,
            files="/usr/sbin/iscsiuio /etc/logrotate.d/iscsiuiolog")]),
    Src("isns-utils", "0.101-4.el9", "BaseOS", [
        libpkg("isns-utils-libs", "Shared libraries for iSNS", ["libisns.so.0"])], license="LGPL-2.1-or-later"),
    Src("x86-only-tool", "1.2-3.el9", "BaseOS", [
        Pkg("x86-only-tool", "Helper shipped for x86_64 only", requires=LIBC,
            files="/usr/bin/x86-only-tool")], only="x86_64"),
    Src("libnl3", "3.9.0-1.el9", "BaseOS", [
        libpkg("libnl3", "Convenience library for kernel netlink sockets",
               ["libnl-3.so.200", "libnl-genl-3.so.200", "libnl-route-3.so.200"],
               files="/etc/libnl/classid /etc/libnl/pktloc")], license="LGPL-2.1-only"),
    Src("readline", "8.1-4.el9", "BaseOS", [
        libpkg("readline", "A library for editing typed command lines", ["libreadline.so.8"],
               requires=["libtinfo.so.6()(64bit)"])], license="GPL-3.0-or-later"),
    Src("lua", "5.4.4-4.el9", "BaseOS", [
        libpkg("lua-libs", "Libraries for lua", ["liblua-5.4.so"])], license="MIT"),
    Src("pcre2", "10.40-6.el9", "BaseOS", [
        libpkg("pcre2", "Perl-compatible regular expression library", ["libpcre2-8.so.0"])],
        license="BSD-3-Clause"),
    Src("libselinux", "3.6-1.el9", "BaseOS", [
        libpkg("libselinux", "SELinux library and simple utilities", ["libselinux.so.1"],
               requires=["libpcre2-8.so.0()(64bit)"])], license="Public Domain"),
    Src("libsepol", "3.6-1.el9", "BaseOS", [
        libpkg("libsepol", "SELinux binary policy manipulation library", ["libsepol.so.2"])],
        license="LGPL-2.1-or-later"),
    Src("libsemanage", "3.6-1.el9", "BaseOS", [
        libpkg("libsemanage", "SELinux binary policy manipulation library", ["libsemanage.so.2"],
               requires=["libselinux.so.1()(64bit)", "libsepol.so.2()(64bit)"], files="/etc/selinux/semanage.conf")],
        license="LGPL-2.1-or-later"),
    Src("policycoreutils", "3.6-2.1.el9", "BaseOS", [
        Pkg("policycoreutils", "SELinux policy core utilities",
            requires=["libselinux.so.1()(64bit)", "libsepol.so.2()(64bit)", "libsemanage.so.2()(64bit)",
                      "coreutils"] + LIBC,
            files="/usr/sbin/semodule /usr/sbin/restorecon /usr/sbin/setfiles /usr/sbin/load_policy "
                  "/etc/sestatus.conf")]),
    Src("selinux-policy", "38.1.45-3.el9_5", "BaseOS", [
        Pkg("selinux-policy", "SELinux policy configuration", noarch=True, requires=["policycoreutils >= 3.6"],
            files="/etc/selinux/config"),
        Pkg("selinux-policy-targeted", "SELinux targeted policy", noarch=True,
            requires=["selinux-policy = {evr}", "coreutils"], provides=["selinux-policy-base = {evr}"],
            files="/etc/selinux/targeted/seusers /etc/selinux/targeted/contexts/files/file_contexts")]),
    # The old keepalived: AppStream has the newer one.
    Src("keepalived", "2.1.5-9.el9", "BaseOS", [
        Pkg("keepalived", "High Availability monitor built upon LVS, VRRP and service pollers",
            requires=["libnl-3.so.200()(64bit)", "libnl-genl-3.so.200()(64bit)", "libipset.so.11()(64bit)",
                      "libssl.so.3()(64bit)", "libcrypto.so.3()(64bit)"] + LIBC,
            files="/usr/sbin/keepalived /etc/keepalived/keepalived.conf /etc/sysconfig/keepalived")]),

    # --- AppStream -----------------------------------------------------------------------------
    Src("conntrack-tools", "1.4.7-2.el9", "AppStream", [
        Pkg("conntrack-tools", "Manipulate netfilter connection tracking table and run High Availability",
            requires=["libmnl.so.0()(64bit)", "libmnl.so.0(LIBMNL_1.0)(64bit)", "libnetfilter_conntrack.so.3()(64bit)",
                      "libnetfilter_cttimeout.so.1()(64bit)", "libnetfilter_cthelper.so.0()(64bit)",
                      "libnetfilter_queue.so.1()(64bit)", "libnfnetlink.so.0()(64bit)"] + LIBC,
            files="/usr/sbin/conntrack /usr/sbin/conntrackd /usr/sbin/nfct /etc/conntrackd/conntrackd.conf")]),
    Src("libnetfilter_cttimeout", "1.0.0-19.el9", "AppStream", [
        libpkg("libnetfilter_cttimeout", "Timeout policy tuning for Netfilter/conntrack",
               ["libnetfilter_cttimeout.so.1"], requires=["libmnl.so.0()(64bit)"])]),
    Src("libnetfilter_cthelper", "1.0.0-22.el9", "AppStream", [
        libpkg("libnetfilter_cthelper", "User-space infrastructure for connection tracking helpers",
               ["libnetfilter_cthelper.so.0"], requires=["libmnl.so.0()(64bit)"])]),
    Src("libnetfilter_queue", "1.0.5-1.el9", "AppStream", [
        libpkg("libnetfilter_queue", "Netfilter queue userspace library", ["libnetfilter_queue.so.1"],
               requires=["libmnl.so.0()(64bit)", "libnfnetlink.so.0()(64bit)"])]),
    Src("ipvsadm", "1.31-6.el9", "AppStream", [
        Pkg("ipvsadm", "Utility to administer the Linux Virtual Server",
            requires=["libnl-3.so.200()(64bit)", "libnl-genl-3.so.200()(64bit)", "libpopt.so.0()(64bit)",
                      "popt >= 1.16", "popt < 2"] + LIBC,
            files="/usr/sbin/ipvsadm /usr/sbin/ipvsadm-save /usr/sbin/ipvsadm-restore /etc/sysconfig/ipvsadm-config")]),
    Src("socat", "1.7.4.1-5.el9", "AppStream", [
        Pkg("socat", "Bidirectional data relay between two data channels ('netcat++')",
            requires=["libssl.so.3()(64bit)", "libcrypto.so.3()(64bit)", "libreadline.so.8()(64bit)"] + LIBC,
            files="/usr/bin/socat /usr/bin/filan /usr/bin/procan")]),
    Src("keepalived", "2.2.8-4.el9", "AppStream", [
        Pkg("keepalived", "High Availability monitor built upon LVS, VRRP and service pollers",
            requires=["libnl-3.so.200()(64bit)", "libnl-genl-3.so.200()(64bit)", "libipset.so.13()(64bit)",
                      "libssl.so.3()(64bit)", "libcrypto.so.3()(64bit)"] + LIBC,
            files="/usr/sbin/keepalived /usr/bin/genhash /etc/keepalived/keepalived.conf /etc/sysconfig/keepalived")]),
    Src("haproxy", "2.4.22-3.el9_3", "AppStream", [
        Pkg("haproxy", "HAProxy reverse proxy for high availability environments",
            requires=["liblua-5.4.so()(64bit)", "libpcre2-8.so.0()(64bit)", "libssl.so.3()(64bit)",
                      "libcrypto.so.3()(64bit)", "libcrypt.so.2()(64bit)", "shadow-utils"] + LIBC,
            files="/usr/sbin/haproxy /etc/haproxy/haproxy.cfg /etc/sysconfig/haproxy /etc/logrotate.d/haproxy")]),
    Src("nginx", "1:1.20.1-20.el9_5.1", "AppStream", [
        Pkg("nginx", "A high performance web server and reverse proxy server",
            requires=["nginx-core{isa} = {evr}", "nginx-filesystem = {evr}", "system-logos-httpd"],
            files="/usr/bin/nginx-upgrade"),
        Pkg("nginx-core", "nginx minimal core",
            requires=["nginx-filesystem = {evr}", "libcrypt.so.2()(64bit)", "libpcre2-8.so.0()(64bit)",
                      "libssl.so.3()(64bit)", "libcrypto.so.3()(64bit)", "libz.so.1()(64bit)"] + LIBC,
            files="/usr/sbin/nginx /etc/nginx/nginx.conf /etc/nginx/mime.types /etc/nginx/fastcgi_params"),
        Pkg("nginx-filesystem", "The basic directory layout for the Nginx server", noarch=True,
            requires=["shadow-utils"], files="/etc/nginx/ /etc/nginx/conf.d/ /etc/nginx/default.d/"),
        # The TCP proxy kubexm-kn's configuration uses: a loadable module, as in EL9.
        Pkg("nginx-mod-stream", "Nginx stream modules", requires=["nginx{isa} = {evr}"] + LIBC,
            files="/usr/lib64/nginx/modules/ngx_stream_module.so /usr/share/nginx/modules/mod-stream.conf")],
        license="BSD-2-Clause"),
    Src("rocky-logos", "90.15-2.el9", "AppStream", [
        Pkg("rocky-logos-httpd", "Rocky Linux related icons and pictures used by httpd and nginx", noarch=True,
            provides=["system-logos-httpd = {evr}"], files="/usr/share/nginx/html/poweredby.svg")],
        license="CC-BY-SA-4.0"),
    Src("container-selinux", "3:2.232.1-1.el9", "AppStream", [
        Pkg("container-selinux", "SELinux policies for container runtimes", noarch=True,
            requires=["selinux-policy >= 38.1.45", "selinux-policy-base >= 38.1.45", "policycoreutils"],
            files="/usr/share/containers/selinux/contexts /etc/selinux/targeted/contexts/lxc_contexts")]),

    # --- extras --------------------------------------------------------------------------------
    Src("kubexm-broken", "1.0-1.el9", "extras", [
        Pkg("kubexm-broken", "A package whose library nothing provides",
            requires=["libmissing.so.9()(64bit)"] + LIBC, files="/usr/bin/kubexm-broken")], license="Apache-2.0"),
    Src("epel-release", "9-7.el9", "extras", [
        Pkg("epel-release", "Extra Packages for Enterprise Linux repository configuration", noarch=True,
            requires=["redhat-release >= 9"],
            files="/etc/yum.repos.d/epel.repo /etc/pki/rpm-gpg/RPM-GPG-KEY-EPEL-9")]),
]

# Text files with real content; every other config is a one-line comment naming its package.
CONTENT = {
    "/etc/os-release": 'NAME="Rocky Linux"\nVERSION="9.5 (Blue Onyx)"\nID="rocky"\nID_LIKE="rhel centos fedora"\n'
                       'VERSION_ID="9.5"\nPLATFORM_ID="platform:el9"\nPRETTY_NAME="Rocky Linux 9.5 (Blue Onyx)"\n'
                       'ANSI_COLOR="0;32"\nLOGO="fedora-logo-icon"\nCPE_NAME="cpe:/o:rocky:rocky:9::baseos"\n'
                       'HOME_URL="https://rockylinux.org/"\nBUG_REPORT_URL="https://bugs.rockylinux.org/"\n'
                       'REDHAT_SUPPORT_PRODUCT="Rocky Linux"\nREDHAT_SUPPORT_PRODUCT_VERSION="9.5"\n',
    "/etc/redhat-release": "Rocky Linux release 9.5 (Blue Onyx)\n",
    "/etc/rocky-release": "Rocky Linux release 9.5 (Blue Onyx)\n",
    "/etc/system-release": "Rocky Linux release 9.5 (Blue Onyx)\n",
    "/etc/system-release-cpe": "cpe:/o:rocky:rocky:9::baseos\n",
    "/etc/issue": "\\S\nKernel \\r on an \\m\n\n",
    "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1:bin:/bin:/sbin/nologin\n"
                   "daemon:x:2:2:daemon:/sbin:/sbin/nologin\nnobody:x:65534:65534:Kernel Overflow User:/:/sbin/nologin\n",
    "/etc/group": "root:x:0:\nbin:x:1:\ndaemon:x:2:\nnobody:x:65534:\n",
    "/etc/shells": "/bin/sh\n/bin/bash\n/usr/bin/sh\n/usr/bin/bash\n",
    "/etc/hosts": "127.0.0.1   localhost localhost.localdomain\n::1         localhost localhost.localdomain\n",
    "/etc/ld.so.conf": "include ld.so.conf.d/*.conf\n",
    "/etc/chrony.conf": "pool 2.rocky.pool.ntp.org iburst\ndriftfile /var/lib/chrony/drift\nmakestep 1.0 3\nrtcsync\n",
    "/etc/yum.repos.d/rocky.repo":
        "[baseos]\nname=Rocky Linux $releasever - BaseOS\n"
        "mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=BaseOS-$releasever\n"
        "gpgcheck=1\nenabled=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9\n\n"
        "[appstream]\nname=Rocky Linux $releasever - AppStream\n"
        "mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=AppStream-$releasever\n"
        "gpgcheck=1\nenabled=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9\n",
    "/etc/yum.repos.d/rocky-extras.repo":
        "[extras]\nname=Rocky Linux $releasever - Extras\n"
        "mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=extras-$releasever\n"
        "gpgcheck=1\nenabled=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9\n",
    "/etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
    "/usr/share/nginx/html/poweredby.svg":
        '<svg xmlns="http://www.w3.org/2000/svg" width="88" height="31"><rect width="88" height="31" fill="#10b981"/>'
        '<text x="6" y="20" font-size="11" fill="#fff">Rocky Linux</text></svg>\n',
}


def fill(text, arch, src):
    return text.format(isa=ARCHES[arch]["isa"], ldso=ARCHES[arch]["ldso"], evr=src.evr)


# --- busybox ------------------------------------------------------------------------------------

def ensure_arm64_foreign():
    """apt-get download busybox-static:arm64 needs arm64 among dpkg's foreign architectures."""
    foreign = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True,
                             check=True).stdout.split()
    if "arm64" not in foreign:
        subprocess.run(["dpkg", "--add-architecture", "arm64"], check=True)
        subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)


def busybox(debs, work):
    """The static busybox of each Debian arch, downloaded once into debs and unpacked."""
    debs.mkdir(parents=True, exist_ok=True)
    paths = {}
    for arch, info in ARCHES.items():
        deb_arch = info["deb"]
        if not list(debs.glob(f"busybox-static_*_{deb_arch}.deb")):
            ensure_arm64_foreign()
            subprocess.run(["apt-get", "download", "-q", f"busybox-static:{deb_arch}"], cwd=debs, check=True,
                           stdout=subprocess.DEVNULL)
        deb = sorted(debs.glob(f"busybox-static_*_{deb_arch}.deb"))[-1]
        root = work / "busybox" / deb_arch
        root.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        paths[arch] = root / "bin" / "busybox"
    return paths


# --- rpmbuild -----------------------------------------------------------------------------------

def stage(src, arch, root, busybox_path):
    """Lays out every file of the source's packages under root, as %install copies them."""
    for pkg in src.packages:
        for entry in pkg.files:
            entry = fill(entry, arch, src)
            if "->" in entry:
                path, target = entry.split("->")
                dest = root / path.lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, dest)
            elif entry.endswith("/"):
                (root / entry.strip("/")).mkdir(parents=True, exist_ok=True)
            else:
                dest = root / entry.lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                if entry.startswith(BINARY_DIRS):
                    shutil.copyfile(busybox_path, dest)
                    dest.chmod(0o755)
                else:
                    text = CONTENT.get(entry, f"# {entry}: {pkg.name} {src.version}\n")
                    dest.write_text(text)
                    dest.chmod(0o644)


def spec_text(src, arch, stage_dir):
    def deps(pkg):
        lines = [f"Requires: {fill(d, arch, src)}" for d in pkg.requires + pkg.arch_requires.get(arch, [])]
        lines += [f"Provides: {fill(d, arch, src)}" for d in pkg.provides]
        lines += [f"Obsoletes: {fill(d, arch, src)}" for d in pkg.obsoletes]
        return lines

    def file_list(pkg):
        lines = []
        for entry in pkg.files:
            entry = fill(entry, arch, src).split("->")[0]
            if entry.endswith("/"):
                lines.append(f"%dir {entry.rstrip('/')}")
            elif entry.startswith("/etc/") and not (stage_dir / entry.lstrip("/")).is_symlink():
                lines.append(f"%config(noreplace) {entry}")
            else:
                lines.append(entry)
        return lines

    main = next((p for p in src.packages if p.name == src.name), None)
    out = [
        "%global debug_package %{nil}",
        "%global __os_install_post %{nil}",
        "%global _build_id_links none",
        "%global _binary_payload w19.zstdio",
        "%global use_source_date_epoch_as_buildtime 1",
        "%global clamp_mtime_to_source_date_epoch 1",
        "%global _buildhost build.kubexm.test",
        f"Name: {src.name}",
    ]
    if src.epoch:
        out.append(f"Epoch: {src.epoch}")
    out += [f"Version: {src.version}", f"Release: {src.release}",
            f"Summary: {main.summary if main else src.name}", f"License: {src.license}",
            "Vendor: kubexm test fixtures", "AutoReqProv: no"]
    if src.noarch:
        out.append("BuildArch: noarch")
    if main:
        out += deps(main)
    out += ["", "%description", f"{main.summary if main else src.name}.", ""]
    for pkg in src.packages:
        if pkg is main:
            continue
        out += [f"%package -n {pkg.name}", f"Summary: {pkg.summary}"]
        if pkg.noarch and not src.noarch:
            out.append("BuildArch: noarch")
        out += deps(pkg)
        out += ["", f"%description -n {pkg.name}", f"{pkg.summary}.", ""]
    out += ["%install", f"cp -a {stage_dir}/. %{{buildroot}}/", ""]
    for pkg in src.packages:
        out.append("%files" if pkg is main else f"%files -n {pkg.name}")
        out += file_list(pkg)
        out.append("")
    return "\n".join(out)


def build_src(src, arch, work, busybox_paths):
    """Builds one source's packages for one arch; returns the rpm files written."""
    top = work / "build" / f"{src.name}-{src.evr.replace(':', '_')}.{arch}"
    stage_dir = top / "stage"
    stage_dir.mkdir(parents=True)
    stage(src, arch, stage_dir, busybox_paths[arch])
    spec = top / f"{src.name}.spec"
    spec.write_text(spec_text(src, arch, stage_dir))
    rpms = top / "RPMS"
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(EPOCH), LC_ALL="C")
    result = subprocess.run(
        ["rpmbuild", "-bb", "--quiet", "--target", arch,
         "--define", f"_topdir {top}", "--define", f"_rpmdir {rpms}",
         "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm", str(spec)],
        env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"rpmbuild {src.name}-{src.evr} for {arch} failed:\n{result.stderr}")
    return sorted(rpms.glob("*.rpm"))


def build_all(work, busybox_paths, jobs):
    """Builds every source rpm: fully noarch ones once, the others once per arch. Returns
    {(repo, arch): [rpm files]}. A noarch subpackage of an arch source comes from the x86_64
    build, so both arch repos carry the same bytes."""
    tasks = []
    for src in SOURCES:
        for arch in (["x86_64"] if src.noarch else src.arches):
            tasks.append((src, arch))
    placed = {(repo, arch): [] for repo in REPOS for arch in ARCHES}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(build_src, src, arch, work, busybox_paths): (src, arch) for src, arch in tasks}
        for future in concurrent.futures.as_completed(futures):
            src, arch = futures[future]
            for rpm in future.result():
                if rpm.name.endswith(".noarch.rpm"):
                    if arch == "x86_64":
                        for target in src.arches if not src.noarch else ARCHES:
                            placed[(src.repo, target)].append(rpm)
                else:
                    placed[(src.repo, arch)].append(rpm)
    return placed


# --- repositories -------------------------------------------------------------------------------

def comps_xml():
    reqs = [f'      <packagereq type="mandatory">{n}</packagereq>' for n in CORE_MANDATORY]
    reqs += [f'      <packagereq type="default">{n}</packagereq>' for n in CORE_DEFAULT]
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">',
        "<comps>",
        "  <group>",
        "    <id>core</id>",
        "    <name>Core</name>",
        "    <description>Smallest possible installation</description>",
        "    <default>true</default>",
        "    <uservisible>false</uservisible>",
        "    <packagelist>",
        *reqs,
        "    </packagelist>",
        "  </group>",
        "  <environment>",
        "    <id>minimal-environment</id>",
        "    <name>Minimal Install</name>",
        "    <description>Basic functionality.</description>",
        "    <display_order>99</display_order>",
        "    <grouplist>",
        "      <groupid>core</groupid>",
        "    </grouplist>",
        "  </environment>",
        "</comps>",
        ""])


def make_repo(os_dir, rpms, comps):
    packages = os_dir / "Packages"
    packages.mkdir(parents=True)
    for rpm in rpms:
        dest = packages / rpm.name
        if dest.exists():
            raise RuntimeError(f"{rpm.name} built twice for {os_dir}")
        shutil.copyfile(rpm, dest)
        os.utime(dest, (EPOCH, EPOCH))
    cmd = ["createrepo_c", "--quiet", "--no-database", "--revision", str(EPOCH), "--set-timestamp-to-revision"]
    if comps:
        cmd += ["-g", str(comps)]
    subprocess.run(cmd + [str(os_dir)], check=True)


def readme(placed):
    counts = ", ".join(f"{arch} {sum(len(placed[(r, arch)]) for r in REPOS)}" for arch in ARCHES)
    return (
        "Rpm repositories laid out like a Rocky Linux 9 mirror: rockylinux/9/{BaseOS,AppStream,extras}/"
        "{x86_64,aarch64}/os/, each with Packages/ and repodata/ from createrepo_c, BaseOS with a comps file "
        f"whose group \"core\" has the mandatory packages {' '.join(CORE_MANDATORY)} and the default package "
        f"{' '.join(CORE_DEFAULT)}. Packages per arch: {counts}. The programs and libraries in them are Debian's "
        "static busybox for the rpm's arch, the configs short text files; the dependency graph (sonames, "
        "virtual and file provides, versioned and arch-qualified requirements, epochs, obsoletes, cycles, "
        "several versions of a package, noarch packages, an x86_64-only package and the unsatisfiable "
        "kubexm-broken in extras) is described at the top of tools/make-rpm-repo.py, which builds this "
        "directory.\n")


def du(path):
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--debs", type=Path, default=Path("/var/cache/kubexm-test/debs"))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    started = time.monotonic()
    out = args.out.absolute()
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix="rpm-build-", dir=tmp.parent))
    try:
        busybox_paths = busybox(args.debs, work)
        placed = build_all(work, busybox_paths, args.jobs)
        comps = work / "comps"
        comps.mkdir()
        for repo in REPOS:
            for arch in ARCHES:
                path = None
                if repo == "BaseOS":
                    path = comps / f"comps-BaseOS.{arch}.xml"
                    path.write_text(comps_xml())
                make_repo(tmp / "rockylinux" / "9" / repo / arch / "os", placed[(repo, arch)], path)
        (tmp / "README.txt").write_text(readme(placed))
        if out.exists():
            old = out.with_name(f"{out.name}.old-{os.getpid()}")
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old)
        else:
            os.rename(tmp, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    per_arch = " ".join(f"{arch}={sum(len(placed[(r, arch)]) for r in REPOS)}" for arch in ARCHES)
    print(f"rpm repositories: {len(REPOS)} repos x {len(ARCHES)} arches, packages {per_arch}, "
          f"{du(out) / 2**20:.1f} MiB, {time.monotonic() - started:.0f}s -> {out}")


if __name__ == "__main__":
    main()
