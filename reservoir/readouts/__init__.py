"""Readouts: linear units over filtered spike trains, learning inside the compiled loop.

Each readout unit ``k`` has weights ``w_k`` over the feature vector ``x(t)``: the reservoir's
spike trains passed through one or more trace filters (the trace bank, :mod:`.traces`; feature
``b N + j`` is neuron ``j`` through filter ``b``). Its output is ``z_k = w_k . x`` (optionally
rectified). Units come in named groups (``when``, ``what``, ...); each group has one rule:

``frozen``        no learning (weights as initialised or loaded);
``three_factor``  :mod:`reservoir.rules.three_factor`;
``rls``           FORCE / recursive least squares, :mod:`reservoir.rules.rls` (at most one group).

A group may feed its outputs back into the reservoir through fixed random encoders
``Q U(-1, 1)`` (closed-loop FORCE; Nicola & Clopath 2017).

What the task supplies per step (:class:`TeacherSignals`, from a :class:`Teacher`): targets
``(T, K)``, gates ``(T, K)`` in [0, 1], ``learn`` (RLS updates allowed) and ``store`` (keep this
step for offline consolidation, :class:`ConsolidationStore`).

Per-step order inside the kernel (:mod:`.kernel`), right after spike detection: trace bank
update -> outputs ``z`` -> eligibility -> three-factor update -> RLS update (every
``learn_every_steps`` steps) -> output recording and window storage; the feedback current
``E z`` enters this step's total current.

Modules: :mod:`.config` (the ``[readouts]`` section), :mod:`.traces`, :mod:`.teacher`,
:mod:`.store`, :mod:`.kernel`, :mod:`.units` (:class:`Readouts`, which assembles them).
"""
from .config import ReadoutGroupConfig, ReadoutsConfig, TraceFilterConfig
from .kernel import OutputBuffer, ReadoutKernelState, UnitState
from .store import ConsolidationStore, StoreBuffer
from .teacher import Intervals, ScheduledTeacher, Teacher, TeacherSignals, WindowTeacher
from .traces import TraceBankState
from .units import RULE_CODES, Readouts, inactive_kernel_state

__all__ = ["ConsolidationStore", "Intervals", "OutputBuffer", "RULE_CODES", "ReadoutGroupConfig", "ReadoutKernelState",
           "Readouts", "ReadoutsConfig", "ScheduledTeacher", "StoreBuffer", "Teacher", "TeacherSignals", "TraceBankState", "TraceFilterConfig", "WindowTeacher",
           "UnitState", "inactive_kernel_state"]
