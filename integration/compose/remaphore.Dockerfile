# A remaphore node: the static remaphore binary, and busybox for a shell, so
# that receivers can run scripts (sh -c '...'). Config:
# /etc/remaphore/remaphore.conf, the default location.
FROM scratch
COPY bin/busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "busybox mkdir -p /usr/bin /sbin /usr/sbin /etc/remaphore && busybox mkdir -m 1777 /tmp && busybox --install -s"]
COPY bin/remaphore /usr/local/bin/remaphore
ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
CMD ["remaphore", "-h"]
