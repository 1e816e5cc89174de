# minop/redis-exporter — the static binary (CGO_ENABLED=0, hack/exporters.sh) alone:
# no shell, no libc; the Redis plugin's pods run it as their own user.
FROM scratch
COPY redis_exporter /redis_exporter
USER 65532:65532
EXPOSE 9121
ENTRYPOINT ["/redis_exporter"]
