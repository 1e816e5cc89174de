"""The plugin authoring kit: CRD builders, workload builders, real-program checks, tests.

The runtime (``minop``) never imports from here; plugins import ``minop`` and
``minop.kit`` only.
"""
