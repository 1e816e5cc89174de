"""NGINX operator: a Deployment, Service and ConfigMap per NginxServer object."""
