"""Every params.yaml section by name, for the consumers that show or check them all (`notelm params`, the
tests). No stage imports this module: a stage imports only the sections it reads."""

from __future__ import annotations

from notelm.config.audit import AuditParams
from notelm.config.data import DataParams
from notelm.config.evaluate import EvaluateParams
from notelm.config.follow import FollowParams
from notelm.config.generate import GenerateParams
from notelm.config.memorize import MemorizeParams
from notelm.config.report import ReportParams
from notelm.config.suggest import SuggestParams
from notelm.config.synthetic import SyntheticParams
from notelm.config.train import TrainParams

SECTIONS: dict[str, type] = {cls.section: cls for cls in (SyntheticParams, DataParams, AuditParams, TrainParams,
                                                          GenerateParams, MemorizeParams, SuggestParams,
                                                          FollowParams, EvaluateParams,
                                                          ReportParams)}
TOP_LEVEL = ("model", "model_overrides")  # the params that are no section: the row's name, one experiment's changes
