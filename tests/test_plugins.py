from __future__ import annotations

import pytest

from dlspec_ray.errors import UsageError
from dlspec_ray.plugins import Registry


def test_registry_registers_and_suggests():
    reg: Registry[int] = Registry("things", "thing")
    reg.register("alpha")(1)
    reg.add("beta", 2)
    assert reg.get("alpha") == 1
    assert list(reg) == ["alpha", "beta"]
    with pytest.raises(
        UsageError, match=r"unknown thing 'alpa'; known: alpha, beta. Did you mean 'alpha'\?"
    ):
        reg.get("alpa")
    with pytest.raises(ValueError, match="already registered"):
        reg.add("alpha", 3)
