"""A Step Functions endpoint that answers (B)'s calls with canned replies at once: the client's ceiling.

Run as `python bench/canned_engine.py PORT`. Whatever (B) prints for it is what the benchmark's
boto3 client threads can do against a server that costs nothing; no real engine gets past it.
"""

from __future__ import annotations

import asyncio
import json
import sys

_SM = "arn:aws:states:us-east-1:123456789012:stateMachine:canned"
_EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:canned:run"
_REPLIES = {
    b"CreateStateMachine": {"stateMachineArn": _SM, "creationDate": 1.0},
    b"DescribeStateMachine": {
        "stateMachineArn": _SM,
        "name": "canned",
        "definition": "{}",
        "roleArn": "arn:aws:iam::123456789012:role/bench",
        "type": "STANDARD",
        "creationDate": 1.0,
    },
    b"StartExecution": {"executionArn": _EXECUTION, "startDate": 1.0},
    b"DescribeExecution": {
        "executionArn": _EXECUTION,
        "stateMachineArn": _SM,
        "name": "run",
        "status": "SUCCEEDED",
        "startDate": 1.0,
        "stopDate": 1.0,
        "input": "{}",
        "output": "{}",
    },
}


def _http(body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_ANSWERS = {target: _http(json.dumps(reply).encode()) for target, reply in _REPLIES.items()}


class CannedProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive: one canned answer per request, chosen by X-Amz-Target."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            length = (
                int(head.split(b"content-length:")[1].split(b"\r\n")[0]) if b"content-length:" in head else 0
            )
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            target = (
                head.split(b"x-amz-target: awsstepfunctions.")[1].split(b"\r\n")[0]
                if b"x-amz-target" in head
                else b""
            )
            answer = next((a for t, a in _ANSWERS.items() if t.lower() == target), _http(b"{}"))
            self.transport.write(answer)


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(CannedProtocol, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
