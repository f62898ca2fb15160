"""The running-IMU simulator (see :mod:`companion.source.simulator` for the model)."""

from companion.source.sim.kinematics import mount_matrix
from companion.source.sim.params import (
    DEMO_FAULTS,
    FAULT_BANDS,
    FAULT_SIZE_RANGES,
    SENSOR_NAMES,
    SIDES,
    SOFT_JOLT_SCALE,
    STRIKES,
    TYPICAL_STRIKE_DEG,
    WIDE_RATES_HZ,
    WORLDS,
    FaultSegment,
    RunConditions,
    RunnerParams,
    Turns,
    draw_world,
    fault_size,
    format_faults,
    parse_faults,
    random_faults,
)
from companion.source.sim.run import demo_run, simulate
from companion.source.sim.truth import SimulatedRun, write_simulation

__all__ = [
    "DEMO_FAULTS",
    "FAULT_BANDS",
    "FAULT_SIZE_RANGES",
    "SENSOR_NAMES",
    "SIDES",
    "SOFT_JOLT_SCALE",
    "STRIKES",
    "TYPICAL_STRIKE_DEG",
    "WIDE_RATES_HZ",
    "WORLDS",
    "FaultSegment",
    "RunConditions",
    "RunnerParams",
    "SimulatedRun",
    "Turns",
    "demo_run",
    "draw_world",
    "fault_size",
    "format_faults",
    "mount_matrix",
    "parse_faults",
    "random_faults",
    "simulate",
    "write_simulation",
]
