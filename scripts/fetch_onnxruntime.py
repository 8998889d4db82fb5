#!/usr/bin/env python3
"""Fetch libonnxruntime.so from the PyPI `onnxruntime` wheel.

ort's own binary download cannot reach its mirror on our machines, but PyPI is
reachable, and the wheel ships the same shared library. build.rs runs this on
the first build; run it by hand to place the library elsewhere:

    python3 scripts/fetch_onnxruntime.py --dest /opt/triage/onnxruntime

Only the standard library and pip are needed.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

VERSION = "1.31.1"  # must provide the ONNX Runtime API level ort is built for (see Cargo.toml)
PLATFORM = "manylinux_2_28_x86_64"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", required=True, help="directory to place libonnxruntime.so in")
    ap.add_argument("--version", default=VERSION)
    args = ap.parse_args()
    dest = os.path.abspath(args.dest)
    target = os.path.join(dest, "libonnxruntime.so")
    if os.path.isfile(target):
        print(f"already present: {target}")
        return 0
    os.makedirs(dest, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--platform", PLATFORM, "--python-version", "3.11", "--disable-pip-version-check",
               "-q", "-d", tmp, f"onnxruntime=={args.version}"]
        res = subprocess.run(cmd)
        if res.returncode != 0:
            print("pip download of onnxruntime failed; check access to PyPI or set ORT_DYLIB_PATH", file=sys.stderr)
            return 1
        wheels = glob.glob(os.path.join(tmp, "onnxruntime-*.whl"))
        if not wheels:
            print("no onnxruntime wheel was downloaded", file=sys.stderr)
            return 1
        with zipfile.ZipFile(wheels[0]) as zf:
            names = [n for n in zf.namelist() if "/capi/libonnxruntime.so" in n]
            if not names:
                print("the wheel has no onnxruntime/capi/libonnxruntime.so*", file=sys.stderr)
                return 1
            name = max(names, key=len)  # the versioned file, e.g. libonnxruntime.so.1.31.1
            partial = target + ".partial"
            with zf.open(name) as src, open(partial, "wb") as out:
                shutil.copyfileobj(src, out)
            os.replace(partial, target)
    print(f"placed {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
