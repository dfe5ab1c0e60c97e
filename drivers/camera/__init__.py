"""Frame sources: one protocol, backends chosen by config (picamera2 on the Pi, simulated frames)."""
