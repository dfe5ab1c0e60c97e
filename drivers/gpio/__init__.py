"""Digital inputs and outputs: one protocol, several backends (sim, RPi.GPIO)."""
