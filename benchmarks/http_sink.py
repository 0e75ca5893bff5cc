"""A minimal HTTP/1.1 receiver for the webhook drain: keep-alive, answers 204, counts requests.

Not Django and not verifying signatures: it stands for a receiver fast enough that the drain
measures the sender. ``GET /count`` answers the number of POSTs so far. Run it as
``python -m benchmarks.http_sink PORT``; it prints ``listening`` when ready.
"""

from __future__ import annotations

import asyncio
import sys

COUNT = 0
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer every request of one connection until the client closes it."""
    global COUNT
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if head.startswith(b"GET /count"):
                body = str(COUNT).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            else:
                COUNT += 1
                writer.write(NO_CONTENT)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
