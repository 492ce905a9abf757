#!/usr/bin/python3
"""Speaks (and breaks) the worker protocol against a master, for bad-input tests.

usage: wsprobe.py HOST:PORT NAME PASSWORD CASE
Cases print one line: what happened (e.g. 'closed 1002', 'exception Command x does not exist.').
"""
import asyncio
import base64
import sys

import msgpack
import websockets


async def expect_close_or_reply(ws, seq=None, timeout=10):
    """Answers the master's requests; returns on our reply or the close."""
    try:
        while True:
            raw = await asyncio.wait_for(ws.recv(), timeout)
            msg = msgpack.unpackb(raw, raw=False)
            if msg.get("op") == "response" and seq is not None and msg.get("seq_number") == seq:
                if msg.get("is_exception"):
                    return "exception " + str(msg.get("result"))
                return "result " + repr(msg.get("result"))
            if msg.get("op") != "response":
                # a request from the master: answer so the session goes on
                result = None
                if msg.get("op") == "get_worker_info":
                    result = {"basedir": "/nonexistent/probe", "system": "posix"}
                await ws.send(msgpack.packb({"op": "response", "seq_number": msg["seq_number"],
                                             "result": result}))
    except websockets.ConnectionClosed as e:
        return "closed %s" % (e.code,)
    except asyncio.TimeoutError:
        return "timeout"


async def main():
    addr, name, password, case = sys.argv[1:5]
    auth = base64.b64encode(("%s:%s" % (name, password)).encode()).decode()
    async with websockets.connect("ws://%s/" % addr, extra_headers={"Authorization": "Basic " + auth},
                                  max_size=None, compression=None, open_timeout=10) as ws:
        if case == "garbage":
            await ws.send(b"\xc1\xc1\xc1 not msgpack")
            print(await expect_close_or_reply(ws))
        elif case == "missing-fields":
            await ws.send(msgpack.packb({"command_id": "1", "args": None}))
            print(await expect_close_or_reply(ws))
        elif case == "not-a-map":
            await ws.send(msgpack.packb([1, 2, 3]))
            print(await expect_close_or_reply(ws))
        elif case == "unknown-op":
            # answer the attach sequence up to set_worker_settings (this probe
            # serves no builders, so the master is then done), then ask something odd
            while True:
                msg = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 10), raw=False)
                result = None
                if msg.get("op") == "get_worker_info":
                    result = {"basedir": "/nonexistent/probe", "system": "posix"}
                await ws.send(msgpack.packb({"op": "response", "seq_number": msg["seq_number"],
                                             "result": result}))
                if msg.get("op") == "set_worker_settings":
                    break
            await ws.send(msgpack.packb({"op": "frobnicate", "seq_number": 7}))
            print(await expect_close_or_reply(ws, seq=7))
        elif case == "oversize":
            await ws.send(msgpack.packb({"op": "update", "seq_number": 1, "args": [["stdout", "x" * (9 << 20)]]}))
            print(await expect_close_or_reply(ws))
        elif case == "text-frame":
            await ws.send("a text frame")
            await ws.send(msgpack.packb({"op": "frobnicate", "seq_number": 3}))
            print(await expect_close_or_reply(ws, seq=3))
        else:
            print("unknown case")


asyncio.run(main())
