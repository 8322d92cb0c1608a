"""pyhost.py — what tests/test_*.py need before they load ram.so into Python:
under the sanitizer suite (RAM_SANITIZE=1) the instrumented ram.so needs the
ASan/UBSan runtimes preloaded into the interpreter (leaks are left to the C
tests), and the interpreter's sqlite3 must be able to load extensions (else
Debian's /usr/bin/python3 is used). Call host(name) first thing.
"""
import os
import sqlite3
import subprocess
import sys


def host(name):
    """Re-executes this test where needed; prints FAIL: name.py_load and exits
    when no Python here can load extensions."""
    if os.environ.get("RAM_SANITIZE") == "1" and "libasan" not in os.environ.get("LD_PRELOAD", ""):
        libs = [subprocess.run([os.environ.get("CC", "cc"), "-print-file-name=" + n], capture_output=True,
                               text=True).stdout.strip() for n in ("libasan.so", "libubsan.so")]
        env = dict(os.environ, LD_PRELOAD=" ".join(libs), ASAN_OPTIONS="detect_leaks=0")
        exe = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        os.execve(exe, [exe] + sys.argv, env)
    if not hasattr(sqlite3.Connection, "enable_load_extension"):
        if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
            os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
        print("FAIL: %s: this Python's sqlite3 cannot load extensions" % name)
        sys.exit(1)
