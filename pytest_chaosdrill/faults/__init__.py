"""Fault triggers: each acts on the target's environment and proves that it landed.

A trigger kind is ``<boundary>.<what>``: ``venue.*`` (the exchange sandbox), ``proxy.*`` (the TCP
link between target and venue), ``network.*`` (container networks), ``process.*`` (signals,
restart), ``file.*`` (control files), ``kubernetes.*`` (pods of a Deployment), ``hook.*`` (a documented target-side hook that makes the
service cause a physical condition; the evidence discloses it). New kinds come from plugins through
the ``pytest_chaosdrill_add_triggers`` hook.

A trigger kind may declare ``requires`` (backend capabilities, see :mod:`pytest_chaosdrill.backends.base`)
and ``needs`` (what the target file must declare, e.g. ``files.stop``); drills are validated against
both at collection. ``check_params(params)`` returns problems with the drill's ``trigger.params``.

"""
from __future__ import annotations

from .base import BackendFault, CompositeKind, FaultNotLanded, Trigger, TriggerFactory, jsonable, requirements
from .file import StopFile
from .hook import OccasionHook, TargetHook
from .kubernetes import ImageFault, MemoryLimit, NetworkCut, NodeLoss, OomKill, PodDelete, Scale
from .network import DNSFailure, NetworkDisconnect
from .process import ProcessKillRestart, ProcessPause
from .proxy import ProxyToxic
from .schedule import ScheduleKind, ScheduleTrigger
from .venue import ONE_SHOT_VENUE_FAULTS, VENUE_FAULTS, VenueFault, VenueFaultKind

__all__ = ["BackendFault", "CompositeKind", "DNSFailure", "FaultNotLanded", "ImageFault", "MemoryLimit", "NetworkCut", "NetworkDisconnect", "NodeLoss", "ONE_SHOT_VENUE_FAULTS", "OomKill", "OccasionHook", "PodDelete", "ProcessKillRestart", "Scale",
           "ProcessPause", "ProxyToxic", "ScheduleKind", "ScheduleTrigger", "StopFile", "TargetHook", "Trigger",
           "TriggerFactory", "VENUE_FAULTS", "VenueFault", "VenueFaultKind", "jsonable", "requirements"]
