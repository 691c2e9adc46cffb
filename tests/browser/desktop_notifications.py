"""A desktop's notification server for Chromium on a private D-Bus, so a test can see and tap notifications.

On Linux, Chromium shows a site's notifications through the desktop's
``org.freedesktop.Notifications`` service (the freedesktop.org Desktop
Notifications spec) and hears a tap as that service's ``ActionInvoked``
signal. This stand-in owns the name on a session bus of its own: it records
each notification Chromium asks for and, on ``tap``, sends the signal a
desktop sends, so Chromium fires a real, trusted ``notificationclick`` in the
service worker (DevTools has no way to click a notification). Headless
Chromium displays nothing itself.
"""

from __future__ import annotations

import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from jeepney import DBusAddress, HeaderFields, MessageType, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
# A session bus that starts no services of its own (no accessibility bus, no desktop portal).
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={folder}</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@dataclass
class Notification:
    id: int
    title: str
    body: str  # Chromium puts the site's host, a blank line, then the notification's body
    closed: bool = False


class DesktopNotifications:
    """``with DesktopNotifications() as desktop:`` pass ``desktop.env`` to Chromium's launch."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self._taps: queue.Queue[int] = queue.Queue()
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> DesktopNotifications:
        daemon = shutil.which("dbus-daemon")
        if daemon is None:
            raise RuntimeError("dbus-daemon is missing: apt-get install dbus-daemon (scripts/prerequisites.sh dbus)")
        self._folder = Path(tempfile.mkdtemp(prefix="pickup-dbus-"))
        config = self._folder / "session.conf"
        config.write_text(BUS_CONFIG.format(folder=self._folder))
        self._bus = subprocess.Popen(
            [daemon, f"--config-file={config}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.address = self._bus.stdout.readline().strip()
        self._connection = open_dbus_connection(self.address)
        self._connection.send_and_get_reply(message_bus.RequestName(NAME))
        self._thread = threading.Thread(target=self._serve, name="desktop-notifications", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._connection.close()
        self._bus.terminate()
        self._bus.wait(10)
        shutil.rmtree(self._folder, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        return {"DBUS_SESSION_BUS_ADDRESS": self.address}

    def tap(self, notification: Notification) -> None:
        """What a desktop does when the notification is tapped."""
        self._taps.put(notification.id)

    def shown(self) -> list[Notification]:
        with self._lock:
            return [notification for notification in self.notifications if not notification.closed]

    def wait_for(self, text: str, timeout: float = 20) -> Notification:
        """The first notification whose title or body holds ``text``, waiting for it to be shown."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for notification in self.notifications:
                    if text in notification.title or text in notification.body:
                        return notification
            time.sleep(0.05)
        raise AssertionError(f"no notification with {text!r}; shown: {self.notifications}")

    def _serve(self) -> None:
        emitter = DBusAddress(PATH, interface=NAME)
        while not self._stopping.is_set():
            while not self._taps.empty():
                self._connection.send(new_signal(emitter, "ActionInvoked", "us", (self._taps.get(), "default")))
            try:
                message = self._connection.receive(timeout=0.05)
            except TimeoutError:
                continue
            if message.header.message_type == MessageType.method_call:
                self._answer(message)

    def _answer(self, message) -> None:
        member = message.header.fields.get(HeaderFields.member)
        if member == "GetCapabilities":
            reply = new_method_return(message, "as", (["body", "actions"],))
        elif member == "GetServerInformation":
            reply = new_method_return(message, "ssss", ("pickup-tests", "pickup", "1", "1.2"))
        elif member == "Notify":
            _app, replaces, _icon, title, body, _actions, _hints, _timeout = message.body
            with self._lock:
                if replaces:
                    for shown in self.notifications:
                        shown.closed = shown.closed or shown.id == replaces
                notification = Notification(replaces or len(self.notifications) + 1, title, body)
                self.notifications.append(notification)
            reply = new_method_return(message, "u", (notification.id,))
        elif member == "CloseNotification":
            with self._lock:
                for shown in self.notifications:
                    shown.closed = shown.closed or shown.id == message.body[0]
            reply = new_method_return(message, "", ())
        else:
            reply = new_method_return(message, "", ())
        self._connection.send(reply)
