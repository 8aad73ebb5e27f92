import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

# The tests that compare thread counts must run on the threads they ask for: the clock engine's team
# tuner (which may run a small network on fewer threads) is off unless a test turns it on
# (tests/test_team_tuner.py).  Subprocesses started by tests inherit this.
os.environ.setdefault("EVENTSIM_TEAM_TUNING", "0")
