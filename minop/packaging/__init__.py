"""Packaging the installed plugins: RBAC rules derived from them and the OLM bundle."""
