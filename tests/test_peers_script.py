"""benchmarks/peers/cpu_networks.py runs (eventsim only: the peers are optional) and reports what it promises."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_peers_script_reports_times_rates_and_bytes_per_synapse():
    script = os.path.join(ROOT, "benchmarks", "peers", "cpu_networks.py")
    out = subprocess.run([sys.executable, script, "--quick", "--simulators", "eventsim", "--no-scatter",
                          "--repeats", "1", "--networks", "brunel"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("eventsim "))
    cols = row.split()
    assert float(cols[3]) > 0 and 20.0 < float(cols[5]) < 80.0, row    # simulate s, rate Hz
    # Brunel: one delay per sender (two-byte columns) and one float64 weight per synapse
    m = re.search(r"connectivity: ([\d.]+) bytes per synapse in the engine's synapse arrays \+ ([\d.]+) in its "
                  r"per-sender arrays; the network's projections hold ([\d.]+) more", out.stdout)
    assert m, out.stdout
    assert float(m.group(1)) == 10.0 and 0.0 < float(m.group(2)) < 1.0 and float(m.group(3)) > 0.0
