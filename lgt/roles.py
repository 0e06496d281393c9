"""The recipe's model roles: the four models later stages call, each a `lgt.engines.ModelRole`."""

from __future__ import annotations

from typing import Literal

from lgt.engines.settings import ModelRole
from lgt.settings import Strict

RoleName = Literal["vlm", "reasoner", "verifier", "small_solver"]


class Models(Strict):
    vlm: ModelRole
    reasoner: ModelRole
    verifier: ModelRole
    small_solver: ModelRole
