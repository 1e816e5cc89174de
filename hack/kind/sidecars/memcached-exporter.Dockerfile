# minop/memcached-exporter — the static binary (CGO_ENABLED=0, hack/exporters.sh) alone:
# no shell, no libc; the Memcached plugin's pods run it as their own user.
FROM scratch
COPY memcached_exporter /memcached_exporter
USER 65532:65532
EXPOSE 9150
ENTRYPOINT ["/memcached_exporter"]
