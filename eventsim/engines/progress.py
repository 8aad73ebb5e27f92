"""The progress bar of long runs (every engine)."""


def progress_bar(net, n_steps, progress):
    """A tqdm bar over steps for long runs on a terminal (``progress=None``), or as asked."""
    import sys

    if progress is None:
        progress = n_steps * net.dt >= 10_000.0 and sys.stderr.isatty()
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        if not getattr(progress_bar, "warned", False):  # once per process
            import warnings

            progress_bar.warned = True
            warnings.warn("run(progress=...) shows a progress bar only when tqdm is installed "
                          "(pip install tqdm, or the 'plot' extra: pip install 'eventsim[plot]'); "
                          "running without one", UserWarning, stacklevel=4)
        return None
    import time

    start = time.perf_counter()
    t0 = net.t

    class _Bar(tqdm):
        def update(self, n=1):
            super().update(n)
            wall = time.perf_counter() - start
            bio = net.t - t0
            self.set_postfix_str(f"t={net.t / 1000:.1f} s bio, rtf={wall / max(bio * 1e-3, 1e-12):.2f}")

    return _Bar(total=n_steps, unit="step", unit_scale=True, desc="eventsim", leave=False)
