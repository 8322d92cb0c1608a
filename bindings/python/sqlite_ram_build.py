"""sqlite_ram_build — the PEP 517 build backend of bindings/python, in-tree and
dependency-free (standard library only), so that pip can build the package
without downloading a build system:

    make                                         # build/ram.so, models/default.ram
    pip install --no-index ./bindings/python     # into the current environment
    pip wheel --no-index -w dist ./bindings/python   # sqlite_ram-V-py3-none-linux_x86_64.whl

The wheel holds sqlite_ram/ (the loader), sqlite_ram/lib/ram0.so and
sqlite_ram/share/sqlite-ram/default.ram: the extension is a native library
(not a Python extension module), so the tag is py3-none-PLATFORM, any Python 3
on this platform. It links the system's libvips and OpenBLAS (Debian
packages), like build/ram.so. SQLITE_RAM_BUILD (a build folder, default
build/) and SQLITE_RAM_MODEL (default models/default.ram) choose other files.
"""
import base64
import hashlib
import os
import re
import sysconfig
import zipfile

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(os.path.dirname(_HERE))
_NAME = "sqlite_ram"
_DIST = "sqlite-ram"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same inputs give the same wheel


def _version():
    # One version for the engine and the packages: core/util.c's ram_version().
    with open(os.path.join(_ROOT, "core", "util.c"), encoding="utf-8") as f:
        m = re.search(r'ram_version\(void\)\s*\{\s*return\s*"([0-9][0-9A-Za-z.+-]*)"', f.read())
    if not m:
        raise RuntimeError("sqlite_ram_build: cannot find ram_version() in core/util.c")
    return m.group(1)


def _inputs():
    build = os.environ.get("SQLITE_RAM_BUILD") or os.path.join(_ROOT, "build")
    so = os.path.join(build, "ram.so")
    model = os.environ.get("SQLITE_RAM_MODEL") or os.path.join(_ROOT, "models", "default.ram")
    for f in (so, model):
        if not os.path.isfile(f):
            raise RuntimeError("sqlite_ram_build: %s is missing: run make in %s first" % (f, _ROOT))
    return so, model


def _tag():
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return "py3-none-" + plat


def _metadata():
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
            "Summary: RAM++ image tagging in SQLite: the sqlite-ram loadable extension and its default model\n"
            "License: Apache-2.0\nRequires-Python: >=3.8\n" % (_DIST, _version()))


def _wheel_file():
    return ("Wheel-Version: 1.0\nGenerator: sqlite_ram_build\nRoot-Is-Purelib: false\nTag: %s\n" % _tag())


def _dist_info():
    return "%s-%s.dist-info" % (_NAME, _version())


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = os.path.join(metadata_directory, _dist_info())
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata())
    with open(os.path.join(d, "WHEEL"), "w", encoding="utf-8") as f:
        f.write(_wheel_file())
    return _dist_info()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    so, model = _inputs()
    files = []  # (archive name, bytes, mode)
    pkg = os.path.join(_HERE, _NAME)
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py"):
            with open(os.path.join(pkg, name), "rb") as f:
                files.append((_NAME + "/" + name, f.read(), 0o644))
    files.append((_NAME + "/_version.py", ('__version__ = "%s"\n' % _version()).encode(), 0o644))
    with open(so, "rb") as f:
        files.append((_NAME + "/lib/ram0.so", f.read(), 0o755))
    with open(model, "rb") as f:
        files.append((_NAME + "/share/sqlite-ram/default.ram", f.read(), 0o644))
    di = _dist_info()
    files.append((di + "/METADATA", _metadata().encode(), 0o644))
    files.append((di + "/WHEEL", _wheel_file().encode(), 0o644))
    files.append((di + "/top_level.txt", (_NAME + "\n").encode(), 0o644))
    record = []
    for name, data, _ in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (name, digest, len(data)))
    record.append(di + "/RECORD,,")
    files.append((di + "/RECORD", ("\n".join(record) + "\n").encode(), 0o644))

    wheel_name = "%s-%s-%s.whl" % (_NAME, _version(), _tag())
    os.makedirs(wheel_directory, exist_ok=True)
    tmp = os.path.join(wheel_directory, wheel_name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, mode in files:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    os.replace(tmp, os.path.join(wheel_directory, wheel_name))
    return wheel_name
