"""First-day usability: clear errors for misspelt or NEST-style parameter names, warnings for a
missing progress bar and for a dt in the wrong unit, network-wide ids on recorders, output files
with the user's umask, and short reprs of large objects."""

import copy
import dataclasses
import os
import pickle
import re
import stat
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import eventsim as es
from eventsim.engines import plan as plan_mod

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- progress needs tqdm
def _small_net():
    net = es.Network(dt=0.1, seed=3)
    pop = net.population(5, es.LIF(i_e=400.0))
    net.record_spikes(pop)
    return net


@pytest.fixture
def no_tqdm(monkeypatch):
    """Make ``import tqdm`` fail, and forget an earlier missing-tqdm warning."""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setattr(plan_mod._progress, "warned", False, raising=False)


def test_progress_without_tqdm_warns_once_and_runs(no_tqdm):
    net = _small_net()
    with pytest.warns(UserWarning, match=r"tqdm") as record:
        net.run(1.0, progress=True)
    assert len([w for w in record if "tqdm" in str(w.message)]) == 1
    assert "pip install" in str(record[0].message)
    assert record[0].filename == __file__  # points at the user's run() call
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.run(1.0, progress=True)  # once per process
    assert net.step == 20


def test_no_progress_asked_no_tqdm_warning(no_tqdm):
    net = _small_net()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.run(1.0, progress=False)
        net.run(1.0)  # short run: no automatic bar
    assert not getattr(plan_mod._progress, "warned", False)


def test_tqdm_is_in_the_extras_the_readme_installs():
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    readme = (ROOT / "README.md").read_text()
    for extra in ("plot", "test"):
        assert f".[{extra}" in readme or f",{extra}" in readme  # the README installs these extras
        assert any(re.match(r"tqdm\b", req) for req in extras[extra]), extra


# ----------------------------------------------------------------------------- model keyword names
NEST_CASES = [
    ("V_th", "v_th"), ("C_m", "c_m"), ("E_L", "v_rest"), ("V_reset", "v_reset"), ("I_e", "i_e"),
("V_min", "v_min"), ("V_m", "v_init"), ("T_ref", "t_ref"),
    ("Tau_m", "tau_m"),
]


@pytest.mark.parametrize("model", [es.LIF, es.IF, es.ALIF])
@pytest.mark.parametrize("nest,ours", NEST_CASES)
def test_nest_names_are_mapped_in_the_error(model, nest, ours):
    if model is es.IF and ours == "tau_m":
        pytest.skip("IF has no tau_m (its own message is tested below)")
    with pytest.raises(TypeError) as err:
        model(**{nest: 1.0})
    msg = str(err.value)
    assert f"{model.__name__}()" in msg and repr(nest) in msg
    assert ours in msg
    assert f"NEST's {nest}" in msg
    assert "valid parameters" in msg


@pytest.mark.parametrize("model", [es.LIF, es.IF, es.ALIF])
def test_unknown_name_lists_every_valid_name(model):
    with pytest.raises(TypeError, match="valid parameters") as err:
        model(v_thr=15.0)
    msg = str(err.value)
    assert "did you mean v_th?" in msg
    valid = [f.name for f in dataclasses.fields(model) if f.init]
    listed = msg.split("valid parameters of %s: " % model.__name__)[1].split(", ")
    assert sorted(listed) == sorted(valid)
    assert ("tau_theta" in listed) == (model is es.ALIF) and ("tau_m" in listed) == (model is not es.IF)


def test_nearest_name_and_no_match():
    with pytest.raises(TypeError, match="'tau_mm' \\(did you mean tau_m\\?\\)"):
        es.LIF(tau_mm=20.0)
    with pytest.raises(TypeError, match="'d_thetta' \\(did you mean d_theta\\?\\)"):
        es.ALIF(d_thetta=(1.0,))
    with pytest.raises(TypeError, match="'zzz' \\(no similar name\\)"):
        es.LIF(zzz=1.0)


def test_several_unknown_names_are_all_reported():
    with pytest.raises(TypeError, match="unknown parameters 'V_th' .*'C_m' ") as err:
        es.LIF(V_th=20.0, C_m=1.0, tau_m=20.0)
    assert "v_th" in str(err.value) and "c_m" in str(err.value)


def test_if_has_no_tau_m():
    with pytest.raises(TypeError, match="IF has no leak.*use LIF"):
        es.IF(tau_m=10.0)


def test_valid_models_still_construct_copy_pickle_and_replace():
    m = es.LIF(tau_m=20.0, v_th=20.0, v_reset=10.0, tau_syn_ex=2.0, tau_syn_in=5.0)
    assert copy.deepcopy(m) == m and pickle.loads(pickle.dumps(m)) == m
    assert dataclasses.replace(m, v_th=25.0).v_th == 25.0
    with pytest.raises(TypeError, match="NEST's V_th"):
        dataclasses.replace(m, V_th=25.0)
    a = es.ALIF(tau_theta=(10.0, 100.0), d_theta=(1.0, 0.5), reset="affine")
    assert pickle.loads(pickle.dumps(a)) == a
    assert es.IF(c_m=100.0).c_m == 100.0
    with pytest.raises(ValueError, match="tau_m"):  # values are still validated as before
        es.LIF(tau_m=-1.0)


# ----------------------------------------------------------------------------- dt in the wrong unit
@pytest.mark.parametrize("dt", [1e-4, 0.0009, 10.5, 100.0])
def test_dt_outside_the_usual_range_warns_about_units(dt):
    with pytest.warns(UserWarning, match=r"milliseconds") as record:
        es.Network(dt=dt)
    assert f"dt={dt!r} ms" in str(record[0].message) and "[0.001, 10] ms" in str(record[0].message)
    assert record[0].filename == __file__


@pytest.mark.parametrize("dt", [0.001, 0.1, 0.125, 1.0, 10.0])
def test_usual_dt_does_not_warn(dt):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        es.Network(dt=dt)


# ----------------------------------------------------------------------------- recorder ids
@pytest.mark.parametrize("engine", ["clock", "event"])
def test_spike_recorder_has_network_wide_neuron_ids(engine):
    net = es.Network(dt=0.1, seed=1, engine=engine)
    exc = net.population(30, es.LIF(i_e=400.0), v_init=es.Uniform(0.0, 15.0))
    inh = net.population(20, es.LIF(i_e=400.0), v_init=es.Uniform(0.0, 15.0))
    rec = net.record_spikes(inh)
    view = net.record_spikes((exc | inh)[[35, 2, 40]])
    net.run(100.0)
    assert len(rec) > 20 and len(view) > 3
    np.testing.assert_array_equal(rec.neuron_ids, rec.senders + inh.offset)
    assert inh.offset == 30 and rec.neuron_ids.min() >= 30
    np.testing.assert_array_equal(view.neuron_ids, view.group.ids[view.senders])
    assert set(view.senders) == {0, 1, 2} and set(view.neuron_ids) == {35, 2, 40}


def test_readme_tour_documents_neuron_ids_beside_senders():
    readme = (ROOT / "README.md").read_text()
    tour = readme[readme.index("## A short tour"):readme.index("## Recording to disk")]
    assert "rec.neuron_ids" in tour and "rec.senders" in tour


# ----------------------------------------------------------------------------- file permissions
@pytest.fixture(params=[0o022, 0o027, 0o077])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_output_files_get_the_users_umask(umask, tmp_path):
    pytest.importorskip("h5py")
    expected = 0o666 & ~umask
    net = es.Network(dt=0.1, seed=1)
    pop = net.population(10, es.LIF(i_e=400.0))
    spikes = net.record_spikes(pop, to=tmp_path / "spikes.h5")
    volts = net.record_state(pop, "v", interval=1.0, to=tmp_path / "v.h5")
    assert _mode(spikes.path) == expected and _mode(volts.path) == expected
    net.run(20.0)
    net.save(tmp_path / "net.ckpt")
    assert _mode(tmp_path / "net.ckpt") == expected
    mem = es.Network(dt=0.1, seed=1)
    rec = mem.record_spikes(mem.population(3, es.LIF(i_e=400.0)))
    mem.run(20.0)
    rec.to_disk(tmp_path / "copy.h5")
    assert _mode(tmp_path / "copy.h5") == expected
    net.close()


def test_a_rebuilt_recording_keeps_its_permissions(tmp_path):
    pytest.importorskip("h5py")
    net = es.Network(dt=0.1, seed=1)
    pop = net.population(4, es.LIF(i_e=400.0))
    rec = net.record_spikes(pop, to=tmp_path / "s.h5")
    net.run(50.0)
    net.close()
    os.chmod(rec.path, 0o640)
    rec._store._rebuild()  # what a resumed run does with a file its crashed writer left open
    assert _mode(rec.path) == 0o640
    assert len(rec) > 0


# ----------------------------------------------------------------------------- reprs
def test_reprs_of_large_objects_are_short():
    net = es.Network(dt=0.1, seed=1)
    n = 20_000
    pop = net.population(n, es.LIF(v_th=np.full(n, 15.0), i_e=np.linspace(0.0, 300.0, n)),
                         v_init=np.linspace(0.0, 10.0, n), label="exc")
    noise = net.poisson(n, rate=np.linspace(1.0, 2.0, n))
    stim = net.spike_source(senders=np.arange(5000) % 100, times=np.arange(5000) * 0.1)
    dc = net.dc(np.linspace(1.0, 2.0, 500), 0.0, None, n=500)
    proj = net.connect(pop, pop, es.FixedInDegree(20), weight=np.linspace(0.0, 0.1, 20 * n), delay=1.0)
    net.connect(noise, pop, es.OneToOne(), weight=0.1)
    spikes = net.record_spikes(pop)
    volts = net.record_state(pop[np.arange(0, n, 7)], "v")
    net.run(5.0)
    objects = [pop, pop[::2], pop[np.arange(0, n, 3)], pop | pop[:5], noise, noise[:100], stim, dc, proj,
               spikes, volts, net, net.recorders]
    for obj in objects:
        text = repr(obj)
        assert len(text) < 200, text
        assert "..." not in text and not re.search(r"(\d+\.\d*,\s*){3}", text), text
    assert "20000" in repr(pop) and "400000" in repr(proj) and "20000" in repr(net)


def test_model_reprs_summarise_per_neuron_arrays():
    import numpy as np

    import eventsim as es

    r = repr(es.LIF(v_th=np.full(999, 15.0), tau_m=np.linspace(5.0, 20.0, 999)))
    assert len(r) < 300 and "<999 values in [15, 15]>" in r and "tau_m=<999 values in [5, 20]>" in r
    assert repr(es.IF()).startswith("IF(c_m=250.0") and "tau_theta=(100.0,)" in repr(es.ALIF())


@pytest.mark.parametrize("model", [es.LIF, es.IF])
def test_a_scalar_tau_syn_points_at_the_two_time_constants(model):
    """tau_syn is the list of receptor ports; NEST's scalar tau_syn gets pointed at tau_syn_ex / tau_syn_in."""
    with pytest.raises(ValueError, match="tau_syn_ex=..., tau_syn_in=..."):
        model(tau_syn=2.0)
