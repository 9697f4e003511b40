# bosun/pause: the pod sandbox. It only holds the pod's network namespace: it sleeps, reaps
# nothing else, and exits at once on SIGTERM/SIGINT.
FROM scratch
COPY busybox /bin/busybox
COPY pause.sh /pause
ENTRYPOINT ["/bin/busybox", "sh", "/pause"]
