"""Plays a scenario: moves trucks along the lane and tells each simulated device what it perceives.

The player knows the physical layout (where loops, antennas, the scale and cameras are) and each truck's
kinematics; it never looks at what the agent does.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

from hw_sim.scenario import Scenario, Truck
from hw_sim.world import AxleLoad, CameraRig, FieldTag, LoopPanel, Scene, TagField, VehicleWeighing, WimScale

TICK_WALL_S = 0.01


@dataclass(frozen=True, slots=True)
class Layout:
    """Positions along the lane in metres from the entry loop (must match the agent's geometry)."""

    exit_loop_m: float = 45.0
    rfid_antenna_m: float = 12.0
    wim_m: float = 8.0
    plate_camera_m: float = 4.0
    container_camera_m: float = 10.0
    tag_range_m: float = 2.5
    antenna: int = 1  # the lane's overhead antenna
    plate_camera: str = "front"
    container_camera: str = "container"


class Player:
    """Drives the simulated devices from a scenario, in lane time given by ``now``."""

    def __init__(
        self,
        scenario: Scenario,
        layout: Layout,
        *,
        now: Callable[[], float],
        tags: TagField,
        loops: LoopPanel,
        wim: WimScale,
        cameras: CameraRig,
        wim_noise: float = 0.01,
        seed: int = 0,
    ) -> None:
        self.scenario = scenario
        self.layout = layout
        self._now = now
        self._tags = tags
        self._loops = loops
        self._wim = wim
        self._cameras = cameras
        self._rng = random.Random(seed)
        self._noise = wim_noise
        self._loop_state: dict[str, bool] = {"entry": False, "exit": False}
        self._weighed: set[int] = set()
        self._scenes: dict[str, Scene | None] = {}
        self._last_tags: list[FieldTag] = []
        self.t0: float | None = None
        self.finished = asyncio.Event()

    def _front(self, truck: Truck, t: float) -> float:
        return (t - truck.enter_s) * truck.speed_ms

    def step(self, t: float) -> None:
        """Bring every device to the world's state at scenario time ``t``."""
        lay = self.layout
        on_entry = on_exit = False
        field: list[FieldTag] = []
        plate_scene: Scene | None = None
        box_scene: Scene | None = None
        for truck in self.scenario.trucks:
            front = self._front(truck, t)
            rear = front - truck.length_m
            if front < -5 or rear > lay.exit_loop_m + 5:
                continue
            on_entry |= rear <= 0.0 <= front
            on_exit |= rear <= lay.exit_loop_m <= front
            cab = [(truck.transponder_epc, front - 0.5)]
            if truck.fast_card_epc:
                cab.append((truck.fast_card_epc, front - 1.8))
            rear_tags = [(epc, rear + 0.2) for epc in truck.seal_epcs]
            for epc, pos in cab + rear_tags:
                d = pos - lay.rfid_antenna_m
                if abs(d) <= lay.tag_range_m:
                    field.append(FieldTag(epc, lay.antenna, round(-48.0 - 4.0 * abs(d), 1)))
            if lay.plate_camera_m - 0.5 <= front <= lay.plate_camera_m + 2.0:
                plate_scene = Scene(truck.plate if truck.plate_legible else None, None)
            if truck.container and rear + 1.0 <= lay.container_camera_m <= front - 3.0:
                box_scene = Scene(None, truck.container)
            if rear >= lay.wim_m and truck.index not in self._weighed:
                self._weighed.add(truck.index)
                self._wim.record(self._weigh(truck))
        for adj in self.scenario.adjacent:
            if adj.at_s <= t <= adj.at_s + adj.duration_s:
                field.append(FieldTag(adj.epc, adj.antenna, adj.rssi_dbm))
        self._set_loop("entry", on_entry)
        self._set_loop("exit", on_exit)
        if field != self._last_tags:
            self._tags.set_tags(field)
            self._last_tags = field
        self._show(lay.plate_camera, plate_scene)
        self._show(lay.container_camera, box_scene)

    def _weigh(self, truck: Truck) -> VehicleWeighing:
        n = self._noise
        axles = tuple(
            AxleLoad(round(a.weight_kg * (1 + self._rng.uniform(-n, n)), 0), a.spacing_m) for a in truck.axles
        )
        return VehicleWeighing(round(truck.speed_kmh * (1 + self._rng.uniform(-n, n)), 2), axles)

    def _set_loop(self, loop: str, present: bool) -> None:
        if self._loop_state[loop] != present:
            self._loop_state[loop] = present
            self._loops.set_presence(loop, present)

    def _show(self, camera: str, scene: Scene | None) -> None:
        if self._scenes.get(camera, "unset") != scene:
            self._scenes[camera] = scene
            self._cameras.show(camera, scene)

    async def run(self) -> None:
        """Play the whole scenario in lane time, then clear the lane."""
        start = self._now()
        self.t0 = start
        end = self.scenario.duration_s
        while True:
            t = self._now() - start
            self.step(min(t, end))
            if t >= end:
                break
            await asyncio.sleep(TICK_WALL_S)
        self.finished.set()
