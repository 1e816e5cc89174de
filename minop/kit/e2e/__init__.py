"""The e2e test kit: what a plugin's tests against a real API server need.

- ``minop.kit.e2e.fixtures``: the pytest plugin (``pytest_plugins = ["minop.kit.e2e.fixtures"]``
  in the project's top-level conftest.py): ``kubectl``, ``namespace``, ``api``, ``watch``,
  ``audit_log``, ``plugin_crds``, ``operator`` (deployed in-cluster), the ``realpods`` and
  ``kwok`` markers.
- ``minop.kit.e2e.api``: a client of the API server of its own (``Api``, ``Watch``), so the
  tests never share a bug with minop's.
- ``minop.kit.e2e.deployment``: checks for Deployment-based plugins (ownership, restricted
  pod templates, scaling, rolls, drift repair, admission cases from the CRD schema).
- ``minop.kit.e2e.pods``: client pods and commands in pods, where pods really run.
- ``minop.kit.e2e.incluster``: the operator deployed from its plain manifests.

Needs pytest (a test dependency); the runtime never imports it.
"""
