"""
Plays an original IOTcommunicate script against the hub, as iotdevice.py (side "device") and iotclient.py
(side "client") did: built on the iotcommute library (here its stand-in), asking for the LED's state on
connect, printing every tick's sensor and value, and sending what is typed at its prompt as strings.

usage: original_peer.py ROOT DEVICE_ID KEY SIDE
stdin, one command a line (what a person would type):  SENSOR VALUE  |  get SENSOR  |  quit
stdout, one JSON object a line:  {"event":"open"} {"event":"tick","sensor":…,"value":…}
                                 {"event":"error","error":…} {"event":"closed"}
Exit code 0 when the script quit by itself with no error; 1 when a tick broke it (as it would the original).
"""
import json
import sys
import threading

from iotcommute_like import WebSocket

root, device_id, key, side = sys.argv[1:5]
errors = []
done = threading.Event()


def say(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def on_tick(tick, ws):
    # What the original scripts do with every frame: read the sensor and the value. A frame without them
    # raises KeyError here, which makes the library close the connection.
    say(event="tick", sensor=tick["sensor"], value=tick["value"])


def on_connect(ws):
    say(event="open")
    ws.get_state("LED")
    threading.Thread(target=prompt, args=(ws,), daemon=True).start()


def on_error(error, ws):
    errors.append(repr(error))
    say(event="error", error=repr(error))


def on_close(ws):
    say(event="closed")
    done.set()


def prompt(ws):
    for line in sys.stdin:
        words = line.strip().split(" ", 1)
        if words[0] == "quit":
            break
        if words[0] == "get" and len(words) == 2:
            ws.get_state(words[1])
        elif len(words) == 2:
            # Typed at a prompt: the value is the text, "22" and not 22.
            ws.send_message(words[0], words[1])
    ws.close()


iws = WebSocket(device_id, key, side, root)
iws.on_tick = on_tick
iws.on_connect = on_connect
iws.on_error = on_error
iws.on_close = on_close
iws.connect()
sys.exit(1 if errors else 0)
