# pbxwatch: the processor alone (the stack is in docker-compose.yml).
FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY pbxwatch ./pbxwatch
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --uid 10001 --home /var/lib/pbxwatch pbxwatch \
    && mkdir -p /var/lib/pbxwatch && chown pbxwatch /var/lib/pbxwatch
COPY config /app/config
USER pbxwatch
ENV PBXWATCH_STORAGE__DATA_DIR=/var/lib/pbxwatch
EXPOSE 9108
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/metrics', timeout=3)"
ENTRYPOINT ["pbxwatch"]
CMD ["run", "--config", "/app/config/compose.yaml"]
