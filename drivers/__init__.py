"""Device drivers: bytes, registers, pins and frames. Imports nothing from ``edge_agent``."""
