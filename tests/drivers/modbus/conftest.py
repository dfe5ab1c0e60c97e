"""Every Modbus driver test runs under the leak check."""

from tests.drivers.modbus.support import no_leaks

__all__ = ["no_leaks"]
