# operator-sdk's scorecard-test (built by hack/olm.sh from the module proxy) on our Debian
# base, as uid 1001 like upstream's image. No ENTRYPOINT: scorecard sets each test's command
# (config.yaml's entrypoint), and the same image serves as its untar init container and
# storage sidecar (`tar`, `sh`), so nothing else has to be built or pulled.
ARG BASE
FROM ${BASE}
COPY scorecard-test /usr/local/bin/scorecard-test
ENV HOME=/opt/scorecard-test
WORKDIR /opt/scorecard-test
USER 1001:0
