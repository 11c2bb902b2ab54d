#!/usr/bin/env python3
# Stands in for PID 1's notify socket in tests: binds a unix datagram socket at argv[1], prints "listening", then one
# line per message received (newlines inside a message shown as \n). Closes the fd each systemd-notify passes with
# BARRIER=1, which is how PID 1 answers the barrier (systemd-notify waits until that fd's other end hangs up).
import array
import os
import socket
import sys

sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
print("listening", flush=True)
while True:
    data, ancillary, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(64 * 4))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    print(data.decode("utf-8", "replace").replace("\n", "\\n"), flush=True)
