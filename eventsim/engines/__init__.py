"""Simulation engines.  Engines see flat arrays only, never Python objects."""
