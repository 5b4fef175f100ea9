# The auditor: the static remaphore-audit binary alone (no shell). Config:
# /etc/remaphore/remaphore.conf, whose audit_db names the database file.
FROM scratch
COPY bin/remaphore-audit /usr/local/bin/remaphore-audit
ENTRYPOINT ["/usr/local/bin/remaphore-audit"]
CMD ["run", "-c", "/etc/remaphore/remaphore.conf"]
