"""Numba's on-disk cache for eventsim's kernels, invalidated by a change to any of eventsim's sources.

Numba keys a cached kernel on its own source file only: a kernel in
``engines/clock_cpu.py`` that inlines functions from ``engines/plastic.py``
or ``models/dynamics.py`` would otherwise be loaded from the cache after
those files changed, stale (a miscompile that only an empty cache shows).
:func:`install` registers cache locators, for functions defined in this
package only, whose source stamp also holds a digest of the names, sizes
and modification times of every ``.py`` file of the package.  Any edit or
reinstall of eventsim then recompiles its kernels once; other packages'
caches are untouched.  If Numba's internals differ from what this expects,
nothing is installed and Numba's own behaviour applies.
"""

from __future__ import annotations

import hashlib
import os

PACKAGE = os.path.dirname(os.path.abspath(__file__))


def package_stamp():
    """A digest of every ``.py`` file of the package: relative path, size and modification time (ns)."""
    entries = []
    for root, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in sorted(files):
            if f.endswith(".py"):
                path = os.path.join(root, f)
                st = os.stat(path)
                entries.append((os.path.relpath(path, PACKAGE), st.st_size, st.st_mtime_ns))
    return hashlib.sha256(repr(entries).encode()).hexdigest()


_INSTALLED = False


def install():
    """Register the package-wide cache locators (once); returns whether they are in place."""
    global _INSTALLED
    if _INSTALLED:
        return True
    try:
        from numba.core import caching

        bases = [caching.UserProvidedCacheLocator, caching.InTreeCacheLocator, caching.UserWideCacheLocator]
        registry = caching.CacheImpl._locator_classes
    except (ImportError, AttributeError):
        return False
    stamp = package_stamp()
    inside = PACKAGE + os.sep

    def locator(base):
        class PackageLocator(base):
            def get_source_stamp(self):
                return (super().get_source_stamp(), stamp)

            @classmethod
            def from_function(cls, py_func, py_file):
                if not os.path.abspath(py_file).startswith(inside):
                    return None
                return super().from_function(py_func, py_file)

        PackageLocator.__name__ = PackageLocator.__qualname__ = f"Eventsim{base.__name__}"
        return PackageLocator

    registry[:0] = [locator(b) for b in bases]
    _INSTALLED = True
    return True
