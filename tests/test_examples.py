"""The examples run (quick mode), produce sensible numbers and write a PNG of what they computed."""

import glob
import os
import re
import runpy
import subprocess
import sys

import numpy as np
import pytest

EX = os.path.join(os.path.dirname(__file__), "..", "examples")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load(name):
    return runpy.run_path(os.path.join(EX, name))


def assert_png(path):
    """``path`` is a PNG image of a real figure (matplotlib is a test dependency)."""
    pytest.importorskip("matplotlib")
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000  # a raster with axes and dots, not an empty canvas


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(EX, "*.py"))), ids=os.path.basename)
def test_every_example_has_a_docstring_and_quick(path):
    with open(path) as f:
        source = f.read()
    assert source.startswith('"""'), "an example starts with a docstring saying what it does"
    out = subprocess.run([sys.executable, path, "--help"], capture_output=True, text=True, timeout=300)
    missing = re.search(r"No module named '(torch|sklearn)'", out.stderr)
    if out.returncode and missing:
        pytest.skip(f"needs the optional dependency {missing.group(1)}")
    assert out.returncode == 0, out.stderr
    assert "--quick" in out.stdout


def test_brunel_quick(tmp_path):
    mod = load("brunel2000.py")
    rate = mod["main"](["--quick", "--t-sim", "100", "--plot", str(tmp_path / "b.png")])
    assert 5.0 < rate < 100.0
    assert_png(tmp_path / "b.png")


def test_cuba_quick(tmp_path):
    mod = load("cuba.py")
    rate = mod["main"](["--quick", "--plot", str(tmp_path / "cuba.png")])
    assert 1.0 < rate < 50.0
    assert_png(tmp_path / "cuba.png")


def test_coba_short(tmp_path):
    mod = load("coba.py")
    rate = mod["main"](["--t-sim", "200", "--plot", str(tmp_path / "coba.png")])
    assert 5.0 < rate < 60.0
    assert_png(tmp_path / "coba.png")


def test_coba_adex_short():
    mod = load("coba.py")
    rate = mod["main"](["--adex", "--t-sim", "100", "--plot", ""])
    assert 2.0 < rate < 60.0


def test_coba_alpha_short():
    mod = load("coba.py")
    net, exc, inh, spikes = mod["build"](alpha=True)
    pop = net.populations[0]
    assert pop.model.psc == "alpha" and np.allclose(np.unique(net.projections[0].weight), 6.0 / np.e)
    rate = mod["main"](["--alpha", "--t-sim", "200", "--plot", ""])
    assert 5.0 < rate < 60.0
    with pytest.raises(ValueError, match="adex and alpha"):
        mod["build"](adex=True, alpha=True)


def test_brette_benchmark4_quick(tmp_path):
    mod = load("brette2007_bench4.py")
    rate = mod["main"](["--quick", "--plot", str(tmp_path / "b4.png")])
    assert 2.0 < rate < 40.0
    assert_png(tmp_path / "b4.png")


#: Short runs of each example, for the tests of its ``--plot`` option.
SHORT = {"brunel2000.py": ["--quick", "--t-sim", "20"], "cuba.py": ["--quick"], "coba.py": ["--t-sim", "20"],
         "brette2007_bench4.py": ["--t-sim", "20"],
         "microcircuit.py": ["--scale", "0.02", "--t-sim", "20", "--t-presim", "10", "--threads", "1"]}


@pytest.mark.parametrize("name", sorted(SHORT))
def test_plot_goes_to_the_working_directory_unless_turned_off(name, tmp_path, monkeypatch):
    import numba

    monkeypatch.chdir(tmp_path)
    mod = load(name)
    threads = numba.get_num_threads()
    try:
        mod["main"](SHORT[name] + ["--plot", ""])
        assert list(tmp_path.iterdir()) == []
        mod["main"](SHORT[name])
    finally:
        numba.set_num_threads(threads)
    assert_png(tmp_path / name.replace(".py", ".png"))


def test_microcircuit_quick(tmp_path):
    import numba

    mod = load("microcircuit.py")
    threads = numba.get_num_threads()
    try:
        rates = mod["main"](["--quick", "--t-sim", "100", "--threads", "1", "--weight-dtype", "float32",
                             "--plot", str(tmp_path / "mc.png")])
    finally:
        numba.set_num_threads(threads)
    assert_png(tmp_path / "mc.png")
    assert list(rates) == ["L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I"]
    r = np.array(list(rates.values()))
    # asynchronous irregular regime: every population active, none saturated, L2/3E and L6E the
    # slowest excitatory populations and L5E the fastest, as in the paper
    assert np.all((r > 0.05) & (r < 30.0)), rates
    assert max(rates["L23E"], rates["L6E"]) < min(rates["L4E"], rates["L5E"]) and rates["L5E"] > rates["L4E"]


def test_microcircuit_connectivity_follows_table5():
    mod = load("microcircuit.py")
    k = mod["full_indegrees"]()
    n_syn = (np.round(k) * mod["N_FULL"][:, None]).sum()
    assert 2.9e8 < n_syn < 3.1e8                       # "about 3e8 synapses" at full scale
    assert mod["N_FULL"].sum() == 77169
    net, pops, _ = mod["build"](scale=0.02, background="dc")
    assert [p.n for p in pops] == list(np.maximum(1, np.round(mod["N_FULL"] * 0.02)).astype(int))
    # L4E -> L23E: in-degree round(0.02 K), weights 2 * 87.8 pA / sqrt(0.02) on average
    proj = next(p for p in net.projections if p.source is pops[2] and p.target is pops[0])
    assert len(proj) == pops[0].n * int(round(k[0, 2] * 0.02))
    assert abs(proj.weight.mean() / (2 * 87.8 / np.sqrt(0.02)) - 1) < 0.02
    inh = next(p for p in net.projections if p.source is pops[1] and p.target is pops[0])
    assert np.all(inh.weight <= 0) and np.all(proj.weight >= 0)
    assert inh.delay_steps.min() >= 1 and abs(inh.delay_steps.mean() * 0.1 - 0.75) < 0.05


def test_clock_phase_profile_script():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    mod = runpy.run_path(os.path.join(root, "benchmarks", "clock_phases.py"), run_name="clock_phases")
    wall = mod["main"](["--scale", "0.02", "--t-sim", "20"])
    assert set(wall) == {"full", "no_poisson", "no_recurrent"} and all(v > 0 for v in wall.values())


def test_stdp_network_quick(tmp_path):
    mod = load("stdp_network.py")
    out = mod["main"](["--quick", "--t-sim", "400", "--plot", str(tmp_path / "s.png")])
    assert 5.0 < out["rate"] < 80.0
    assert out["w1"].std() > out["w0"].std()  # additive STDP spreads the weights
    assert out["w1"].min() >= 0.0 and out["w1"].max() <= 0.4
    pytest.importorskip("matplotlib")
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_stdp_network_grows_between_runs():
    mod = load("stdp_network.py")
    out = mod["main"](["--quick", "--t-sim", "300", "--grow", "150", "--plot", ""])
    assert out["g0"].size == 1000 * 50 and out["g1"].std() > out["g0"].std()  # the new synapses learned
    with pytest.raises(SystemExit):
        mod["main"](["--quick", "--t-sim", "300", "--grow", "300"])


def test_stimulus_protocol_quick(tmp_path):
    """The protocol's inputs act when scheduled: the step-current group starts after 200 ms (+ 2 ms delay)
    and stops after 700 ms, the DC group speeds up when its current is set at 500 ms, the raised bias
    drives its group after 800 ms, and the background's rate step moves every group."""
    mod = load("stimulus_protocol.py")
    r = mod["main"](["--quick", "--plot", str(tmp_path / "sp.png")])
    step, dc, bg, bias = (np.asarray(v) for v in r.values())
    # phases: 0-200, 200-300, 300-400, 400-500, 500-600, 600-700, 700-800, 800-1000 ms
    assert step[0] == 0 and step[3] > 2 * bg[3] and step[7] == 0
    assert dc[4] > 2 * dc[3] and dc[5] > bg[5]
    assert bias[6] == 0 and bias[7] > 20.0
    assert bg[2] > 5.0 and bg[5] == 0   # 9,000 Hz background from 300 to 600 ms only
    assert_png(tmp_path / "sp.png")


def test_parrot_relay_quick(tmp_path):
    """Parrots relay every spike of a 8 kHz train (most steps' several spikes as one spike of that
    multiplicity): the count is the channels' within 5 standard deviations, and the population behind them
    fires the spikes of the one fed directly."""
    mod = load("parrot_relay.py")
    s = mod["main"](["--quick", "--plot", str(tmp_path / "pr.png")])
    assert abs(s["relayed"] - s["expected"]) < 5 * np.sqrt(s["expected"])
    assert s["in_a_group"] > 0.4 and s["max_multiplicity"] >= 4
    assert s["same_spikes"] and s["rate_relayed"] > 1.0
    assert_png(tmp_path / "pr.png")


@pytest.mark.parametrize("engine", ["clock", "event"])
def test_receptor_ports_quick(tmp_path, engine):
    """Each port carries its own input (fast and slow excitation positive, inhibition negative), the
    stimulus raises the rate and the slow port keeps it above the baseline after the stimulus ends."""
    mod = load("receptor_ports.py")
    rates, means = mod["main"](["--quick", "--plot", str(tmp_path / "rp.png"), "--engine", engine])
    before, during, after = rates.values()
    assert 5.0 < before < 80.0 and during > 1.5 * before and after > before
    assert means[0] > means[1] > 0.0 > means[2]
    assert_png(tmp_path / "rp.png")


def test_izhikevich2003_quick(tmp_path):
    mod = load("izhikevich2003.py")
    rate = mod["main"](["--quick", "--plot", str(tmp_path / "izh.png")])
    assert 2.0 < rate < 40.0
    assert_png(tmp_path / "izh.png")
