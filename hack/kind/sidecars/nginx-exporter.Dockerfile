# minop/nginx-prometheus-exporter — the static binary (CGO_ENABLED=0, hack/exporters.sh)
# alone: no shell, no libc; the NGINX plugin's pods run it as their own user.
FROM scratch
COPY nginx-prometheus-exporter /nginx-prometheus-exporter
USER 65532:65532
EXPOSE 9113
ENTRYPOINT ["/nginx-prometheus-exporter"]
