"""sqlite-ram for Python: the loadable SQLite extension and its default model.

    import sqlite3, sqlite_ram
    db = sqlite3.connect("photos.db")
    sqlite_ram.load(db)
    db.execute("SELECT ram_tags(?)", (open("cat.jpg", "rb").read(),)).fetchone()

The package holds lib/ram0.so and share/sqlite-ram/default.ram, the layout of
`make install`: the extension finds the model relative to its own folder
(docs/SQL.md, "Which model"), so nothing needs configuring. RAM_MODEL or
ram_load() choose another model as usual.
"""
import os

__all__ = ["load", "loadable_path", "default_model_path", "__version__"]

_HERE = os.path.dirname(os.path.abspath(__file__))

try:
    from ._version import __version__
except ImportError:  # a source checkout, not an installed package
    __version__ = "0.0.0"


def loadable_path():
    """Path of the extension without its suffix (.so), as sqlite-vec's
    loadable_path(): SQLite adds the platform's suffix and derives the entry
    point sqlite3_ram_init from the name ram0."""
    return os.path.join(_HERE, "lib", "ram0")


def default_model_path():
    """Path of the default model bundled with the package (the file the
    extension loads when neither ram_load() nor RAM_MODEL says otherwise and
    no per-user model exists in $XDG_DATA_HOME/sqlite-ram)."""
    return os.path.join(_HERE, "share", "sqlite-ram", "default.ram")


def load(conn):
    """Loads the extension into a sqlite3.Connection (or any connection with
    enable_load_extension and load_extension, e.g. sqlean's). Extension
    loading is switched on only for the call, then off again."""
    if not hasattr(conn, "enable_load_extension"):
        raise RuntimeError(
            "sqlite_ram.load(): this Python's sqlite3 module was built without "
            "extension loading (pyenv's default); use Debian's /usr/bin/python3 "
            "or a build configured with --enable-loadable-sqlite-extensions")
    conn.enable_load_extension(True)
    try:
        conn.load_extension(loadable_path())
    finally:
        conn.enable_load_extension(False)
