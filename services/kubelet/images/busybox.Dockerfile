# bosun/busybox: a test and example image from Debian's busybox-static (no registry needed).
# Context: a directory holding the `busybox` binary (see build.sh).
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/mkdir", "-p", "/tmp", "/var/www", "/root"]
ENV PATH=/bin
CMD ["/bin/sh"]
