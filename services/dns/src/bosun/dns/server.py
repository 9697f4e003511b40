"""DNS over UDP and TCP on asyncio, answering from a `Resolver`.

UDP answers that do not fit in 512 bytes (or the client's EDNS size) are truncated (TC set) so
that the client retries over TCP, where messages carry a two-byte length prefix (RFC 1035
4.2.2). A packet that does not parse is dropped over UDP and ends the connection over TCP; it
never stops the server.
"""

from __future__ import annotations

import asyncio
import logging
import struct

from dnslib import DNSError, DNSRecord

from bosun.dns.records import Resolver

__all__ = ["DnsServer"]

log = logging.getLogger(__name__)
_UDP_LIMIT = 512


def _answer(resolver: Resolver, data: bytes, limit: int | None) -> bytes | None:
    try:
        request = DNSRecord.parse(data)
    except (DNSError, struct.error, IndexError) as error:
        log.debug("dropping a malformed query: %s", error)
        return None
    reply = resolver.reply(request)
    packed = bytes(reply.pack())
    if limit is not None:
        edns = max((rr.edns_len for rr in request.ar if rr.rtype == 41), default=_UDP_LIMIT)
        if len(packed) > max(limit, edns):
            reply.rr = []
            reply.header.tc = 1
            packed = bytes(reply.pack())
    return packed


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        packed = _answer(self.resolver, data, _UDP_LIMIT)
        if packed is not None and self.transport is not None:
            self.transport.sendto(packed, addr)


class DnsServer:
    def __init__(self, resolver: Resolver, host: str, port: int) -> None:
        self.resolver = resolver
        self.host = host
        self.port = port
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen on UDP and TCP; the port (chosen by the kernel when 0, the same for both)."""
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)
        self.port = self._tcp.sockets[0].getsockname()[1]
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self.resolver), local_addr=(self.host, self.port)
        )
        self._udp = transport
        return self.port

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                packed = _answer(self.resolver, await reader.readexactly(size), None)
                if packed is None:
                    break
                writer.write(struct.pack("!H", len(packed)) + packed)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
