# pbxwatch: the processor alone (the stack is in docker-compose.yml).
FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY pbxwatch ./pbxwatch
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --uid 10001 --home /var/lib/pbxwatch pbxwatch \
    && mkdir -p /var/lib/pbxwatch && chown pbxwatch /var/lib/pbxwatch
# config/lab.yaml and config/pbxwatch.example.yaml are links into
# pbxwatch/configs (copied above): the build fails here if one dangles, and
# the stack's config must pass check-config.
COPY config /app/config
RUN test -f /app/config/lab.yaml && test -f /app/config/pbxwatch.example.yaml \
    && pbxwatch check-config /app/config/lab.yaml >/dev/null \
    && pbxwatch check-config /app/config/compose.yaml >/dev/null
USER pbxwatch
# storage.data_dir (the spill files; the SQLite store when no storage.url):
# a volume in docker-compose.yml, owned by the pbxwatch user
ENV PBXWATCH_STORAGE__DATA_DIR=/var/lib/pbxwatch
EXPOSE 9108
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/metrics', timeout=3)"
ENTRYPOINT ["pbxwatch"]
CMD ["run", "--config", "/app/config/compose.yaml"]
