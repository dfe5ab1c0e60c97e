from pathlib import Path

from edge_agent.config import load_config
from hw_sim.player import Layout
from lane_demo.demo import demo_config

ROOT = Path(__file__).resolve().parents[2]


def test_config_demo_toml_is_what_the_demo_runs() -> None:
    shipped = load_config(ROOT / "config" / "demo.toml")
    built = demo_config(
        Layout(),
        rfid_port="/tmp/edge-demo/rfid0",
        wim_url="tcp://127.0.0.1:5020",
        loops_url="tcp://127.0.0.1:5021",
        store=Path("var/demo/lane.sqlite3"),
        mqtt_url="mqtt://127.0.0.1:1883",
        key_file=Path("var/demo/central.key"),
        camera_fps=4.0,
        camera_sockets=Path("/tmp/edge-demo"),
        time_scale=20.0,
    )
    assert built == shipped
