"""Every RFID driver test runs under the leak check."""

from tests.drivers.rfid.support import no_leaks

__all__ = ["no_leaks"]
