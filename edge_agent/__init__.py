"""The lane edge agent: passages, decisions, the signal, the store and the uplink."""

__version__ = "0.1.0"
