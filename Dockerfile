# The EventSink image: one image for the API, every worker, the monitor and the CLI.
#   docker build -t eventsink .
#   docker run --rm eventsink worker list
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/eventsink
# the project metadata first, the packages after: a code change does not re-resolve the dependencies
COPY pyproject.toml README.md ./
COPY sink_lib ./sink_lib
COPY emergency_api ./emergency_api
COPY workers ./workers
COPY monitors ./monitors
RUN pip install '.[all]' \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/eventsink --shell /usr/sbin/nologin eventsink \
    && mkdir -p /var/lib/eventsink/keys /var/lib/eventsink/spool /var/lib/eventsink/prometheus \
                /var/lib/eventsink/monitor /etc/eventsink \
    && chown -R eventsink:eventsink /var/lib/eventsink

# state lives in /var/lib/eventsink (mount volumes there); nothing runs as root
USER eventsink
ENV HOME=/var/lib/eventsink \
    EVENTSINK_SPOOL_DIR=/var/lib/eventsink/spool
WORKDIR /var/lib/eventsink
EXPOSE 8000 9100 9108

ENTRYPOINT ["eventsink"]
CMD ["--help"]
