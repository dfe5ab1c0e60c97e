"""Modbus devices (TCP and RTU): register maps, line timing and a counted, paced device link."""
