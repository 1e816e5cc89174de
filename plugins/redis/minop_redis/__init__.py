"""Redis operator: a primary and replicas on a StatefulSet, one Redis object each."""
