# A NATS server with JetStream: the static nats-server pinned in go.mod and
# nothing else (no shell). Config: /etc/nats/nats.conf; JetStream: /data.
FROM scratch
COPY bin/nats-server /nats-server
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
CMD ["-c", "/etc/nats/nats.conf"]
