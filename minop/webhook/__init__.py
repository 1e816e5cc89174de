"""The operator's webhook server: admission (validating, mutating) and CRD conversion.

``review`` turns AdmissionReview / ConversionReview bodies into plugin hook calls,
``server`` serves them over HTTPS on every replica, ``certs`` issues and rotates the
self-managed certificate.
"""
