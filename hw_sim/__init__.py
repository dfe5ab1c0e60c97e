"""Simulated lane hardware: the same bytes, registers, pins and frames, from the other side of the wire."""
