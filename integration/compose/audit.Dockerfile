# The auditor: the static remaphore-audit binary alone (no shell). Config:
# /etc/remaphore/remaphore.conf, whose audit_db names the database file.
# Its durable consumer is named explicitly: the servers' permissions deny
# that name to every other user (integration/compose/auth.conf.tmpl).
FROM scratch
COPY bin/remaphore-audit /usr/local/bin/remaphore-audit
ENTRYPOINT ["/usr/local/bin/remaphore-audit"]
CMD ["run", "-c", "/etc/remaphore/remaphore.conf", "-name", "remaphore-audit"]
