"""The framework's e2e fixtures. The shared ones (``kubectl``, ``namespace``, ``api``,
``watch``, ``audit_log``, ``plugin_crds``...) come from the e2e test kit,
minop.kit.e2e.fixtures, loaded by the repository's top-level conftest.py."""

from __future__ import annotations

import pytest
import widgets
import yaml

from minop.kit.e2e.pods import Kubectl


@pytest.fixture(scope="session")
def test_crds(kubectl: Kubectl) -> None:
    """The CRDs of the core's test plugins (tests/e2e/widgets.py)."""
    docs = [widgets.definition(k) for k in widgets.ALL_KINDS]
    kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs))
    for k in widgets.ALL_KINDS:
        kubectl("wait", "--for=condition=Established", f"crd/{k.plural}.{k.group}", "--timeout=60s")
