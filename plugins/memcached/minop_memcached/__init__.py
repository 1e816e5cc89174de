"""Memcached operator: a Deployment and a Service per Memcached object."""
