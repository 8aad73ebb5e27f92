"""The module structure the engines keep: no import circle, no recorder classes in engines."""

import ast
import pathlib

ENGINES = pathlib.Path(__file__).resolve().parents[1] / "eventsim" / "engines"


def _imports(path):
    """Every module a file imports (relative imports resolved within eventsim), at any depth."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = ["eventsim", "engines"][: 3 - node.level] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_engines_never_import_the_recorders():
    for path in ENGINES.glob("*.py"):
        assert not any(m.startswith("eventsim.record") for m in _imports(path)), path.name


def test_no_import_circle_between_the_clock_plan_and_its_cuda_backend():
    cuda = _imports(ENGINES / "clock_cuda.py")
    assert not any(m.startswith("eventsim.engines.plan") for m in cuda), sorted(cuda)
    assert "eventsim.engines.clock_cuda" in _imports(ENGINES / "plan.py")  # (the one direction)


def test_the_import_scan_sees_relative_imports():
    imports = _imports(ENGINES / "plan.py")
    assert "eventsim.config" in imports and "eventsim.engines.clock_cpu" in imports


def test_test_files_have_distinct_basenames():
    """pytest imports test modules by basename (no packages under tests/): a second test_x.py in a
    subfolder stops the whole suite at collection."""
    tests = pathlib.Path(__file__).resolve().parent
    seen = {}
    for path in sorted(tests.rglob("test_*.py")):
        assert path.name not in seen, f"{path.relative_to(tests)} and {seen[path.name].relative_to(tests)}"
        seen[path.name] = path
    assert len(seen) > 20


# ---------------------------------------------------------------- the torch bridge: one set-up path
BRIDGE = ENGINES.parent / "torch"
#: Methods allowed to look at the kind of layer: argument validation at construction and the repr.
_NOT_SETUP = ("__init__", "extra_repr")


def _kind_names(modules_source):
    """Names and strings that say which kind of layer or family something is.

    The attributes ``psc``, ``_leaky``, ``_adaptive`` of the layers; every
    name eventsim.models binds to a registered family; the simulator's model
    classes; the torch layer classes that run one family each (the classes
    of modules.py other than the bases ``_Layer`` and ``FamilyLayer``); the
    families' names as strings.
    """
    import sys

    import eventsim.models  # noqa: F401  (registers every family)
    from eventsim.models import family as fam

    names = {"psc", "_leaky", "_adaptive"} | set(fam.model_classes())
    for mod_name, mod in list(sys.modules.items()):
        if mod_name.startswith("eventsim.models."):
            names |= {k for k, v in vars(mod).items() if isinstance(v, fam.Family)}
    layers = {n.name for n in ast.walk(ast.parse(modules_source)) if isinstance(n, ast.ClassDef)}
    names |= layers - {"_Layer", "FamilyLayer", "PositiveTime", "TimeDistributed"}
    return names, {f.name for f in fam.families()}


def _setup_branches(source, names, strings):
    """``(function, line, what)`` for each branch condition or isinstance test of ``source`` outside
    :data:`_NOT_SETUP` that reads a name of ``names`` (as a name or an attribute) or compares with one
    of ``strings``."""
    found = []

    def mentions(node):
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in names:
                return sub.id
            if isinstance(sub, ast.Attribute) and sub.attr in names:
                return sub.attr
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and sub.value in strings:
                return repr(sub.value)
        return None

    def visit(node, func):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            func = node.name
        if func not in _NOT_SETUP:
            tests = []
            if isinstance(node, (ast.If, ast.IfExp, ast.While)):
                tests.append(node.test)
            elif isinstance(node, ast.comprehension):
                tests.extend(node.ifs)
            elif isinstance(node, ast.Match):
                tests.append(node.subject)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("isinstance", "issubclass") and len(node.args) == 2):
                tests.append(node.args[1])
            for t in tests:
                what = mentions(t)
                if what:
                    found.append((func, t.lineno, what))
        for child in ast.iter_child_nodes(node):
            visit(child, func)

    visit(ast.parse(source), None)
    return found


def _exp_calls(source):
    """Lines of ``source`` that call an exponential (``np.exp``, ``torch.exp``, ``math.exp``, ``t.exp()``):
    where a propagator or a decay factor would be computed."""
    return [n.lineno for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "exp"]


def test_the_torch_bridge_sets_up_every_layer_from_its_family_declaration():
    # The layers of eventsim.torch resolve their family (eventsim.models) and take rows, parameters and
    # kernels from its declaration (Family.torch): the set-up of functional.py and modules.py never
    # branches on the kind of layer or family, and computes no coefficient itself.
    modules = (BRIDGE / "modules.py").read_text()
    names, strings = _kind_names(modules)
    for path in (BRIDGE / "functional.py", BRIDGE / "modules.py"):
        source = path.read_text()
        assert _setup_branches(source, names, strings) == [], path.name
        assert _exp_calls(source) == [], path.name


def test_the_set_up_scan_sees_kind_branches_and_coefficients():
    names, strings = _kind_names("class LIF: pass\nclass _Layer: pass\n")
    assert {"LIF", "IAF_ALPHA", "LI_FAMILY", "psc", "_leaky"} <= names and "_Layer" not in names
    assert "iaf_psc_alpha" in strings
    source = '''
class L:
    def __init__(self, psc):
        if psc == "alpha":
            pass

    def forward(self, x):
        if self.psc == "alpha":
            from ..models.psc_alpha import IAF_ALPHA
        tau = self.tau_m if self._leaky else None
        ok = isinstance(self, LIF)
        fam = [f for f in fams if f.name == "iaf_psc_exp"]
        return np.exp(-x / tau) + torch.exp(x) + x.exp()
'''
    found = _setup_branches(source, names, strings)
    assert [(f, w) for f, _, w in found] == [("forward", "psc"), ("forward", "_leaky"), ("forward", "LIF"),
                                             ("forward", "'iaf_psc_exp'")]
    assert len(_exp_calls(source)) == 3

# ---------------------------------------------------------------- the torch bridge: no neuron step of its own
#: The bridge's kernel files, which pass the layer's flags to the family's step unread.
_KERNEL_FILES = ("_core.py", "_cpu.py", "_cuda.py")


def _step_names():
    """Names that only the arithmetic of a neuron's step uses: the simulator's scalar dynamics
    (``neuron_update``, ``reset_voltage``, ...), the point layers' integrator codes (``TORCH_EXACT``, ...,
    and the bridge's former aliases ``EXACT``, ...) and the family's own step functions (the bridge reaches
    them through the tag: ``torch_point_forward``)."""
    from eventsim.models import dynamics, lif_torch

    names = {nm for nm, v in vars(dynamics).items() if hasattr(v, "py_func")}
    names |= {nm for nm in vars(lif_torch) if nm.startswith("TORCH_")}
    names |= {nm[len("TORCH_"):] for nm in names if nm.startswith("TORCH_")}
    return names | {"point_forward", "point_backward", "forward_step", "backward_step"}


def _step_arithmetic(source, names, kernel_file):
    """``(line, what)`` for each use of a name of ``names`` in ``source`` (as a name, an attribute, an
    imported name or a definition) and, in a kernel file, each comparison that reads the integrator flag
    ``mode`` (the kernels pass it to the family's step without reading it)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and node.id in names:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute) and node.attr in names:
            found.append((node.lineno, node.attr))
        elif isinstance(node, (ast.ImportFrom, ast.Import)):
            found += [(node.lineno, a.name) for a in node.names if a.name in names]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            found.append((node.lineno, node.name))
        elif kernel_file and isinstance(node, ast.Compare):
            if any(isinstance(sub, ast.Name) and sub.id == "mode" for sub in ast.walk(node)):
                found.append((node.lineno, "mode"))
    return found


def test_the_torch_bridge_states_no_neuron_step():
    # The LIF / IF / ALIF layers' step (the exact integrator on the simulator's neuron_update and
    # reset_voltage, the peer libraries' integrators) is the family's declaration (eventsim.models.lif_torch,
    # TorchSteps.point_forward / point_backward); the bridge's point kernels reach it through the family's
    # tag and never restate it.
    names = _step_names()
    for path in sorted(BRIDGE.glob("*.py")):
        found = _step_arithmetic(path.read_text(), names, path.name in _KERNEL_FILES)
        assert found == [], (path.name, found)


def test_the_step_scan_sees_a_step_written_in_the_bridge():
    names = _step_names()
    assert {"neuron_update", "reset_voltage", "TORCH_SNNTORCH", "SNNTORCH", "EXACT", "point_forward"} <= names
    source = '''
from ..models.dynamics import neuron_update, reset_voltage
from ._core import SNNTORCH


def forward_step(mode, v, x):
    if mode == 0:
        v = dynamics.reset_voltage(v)
    return neuron_update(v, x)


def kernel(fam, mode, v, x):
    keep = want_par and mode != 3
    return torch_point_forward(fam, mode, v, x)
'''
    found = _step_arithmetic(source, names, True)
    assert sorted({w for _, w in found}) == ["SNNTORCH", "forward_step", "mode", "neuron_update", "reset_voltage"]
    assert [w for _, w in found].count("mode") == 2
    assert [w for _, w in _step_arithmetic(source, names, False)].count("mode") == 0


def _plastic_engine_names():
    """Every name ``engines/plastic.py`` imports from ``models.plasticity`` or uses (as a name or an attribute)."""
    tree = ast.parse((ENGINES / "plastic.py").read_text())
    imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and (node.module or "").endswith("plasticity") for a in node.names}
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    used |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    return imported, used


def _rule_specific_names():
    """The rule kinds, the rule table's columns and the rule classes of ``models.plasticity``."""
    from eventsim.models import plasticity

    ints = {nm for nm, v in vars(plasticity).items() if nm.isupper() and type(v) is int and nm != "MAX_TRACES"}
    return ints | {r.__name__ for r in plasticity.RULES} | {"RULES"}


def test_the_plastic_engine_names_no_rule_and_no_rule_column():
    forbidden = _rule_specific_names()
    assert {"KIND", "STDP_TRIPLET", "STDP_POWER_LAW", "TAU_X", "TAU_MINUS", "W_MAX", "TripletSTDP"} <= forbidden
    imported, used = _plastic_engine_names()
    assert imported, "engines/plastic.py no longer imports the rules' functions"
    assert not imported & forbidden, sorted(imported & forbidden)
    assert not used & forbidden, sorted(used & forbidden)
    source = (ENGINES / "plastic.py").read_text()
    assert not [nm for nm in forbidden if nm.startswith("STDP_") and nm in source], "a rule kind is named"
