"""UHF RFID readers on a serial line: pure frame codecs (R2000 binary, ASCII lines) and an async reader."""
