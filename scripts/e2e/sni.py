#!/usr/bin/env python3
"""The tray as a desktop panel sees it, over the session bus (python3-gi's Gio only).

    sni.py watcher    run a StatusNotifier watcher (org.kde.StatusNotifierWatcher) until killed,
                      as a panel's host does; libayatana-appindicator then exports its icon as a
                      StatusNotifierItem instead of falling back to an XEmbed icon
    sni.py items      print the registered items
    sni.py layout     print each item's menu (com.canonical.dbusmenu), as JSON

Imported, it gives what the end-to-end test needs to read the tray's menu and click its entries
exactly as a panel does: the item's `Menu` property, `GetLayout`, `AboutToShow` and `Event`."""

import json
import sys
import time

from gi.repository import Gio, GLib

WATCHER = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
ITEM_IFACE = "org.kde.StatusNotifierItem"
MENU_IFACE = "com.canonical.dbusmenu"
CALL_TIMEOUT_MS = 10_000

WATCHER_XML = """
<node>
  <interface name="org.kde.StatusNotifierWatcher">
    <method name="RegisterStatusNotifierItem"><arg name="service" type="s" direction="in"/></method>
    <method name="RegisterStatusNotifierHost"><arg name="service" type="s" direction="in"/></method>
    <property name="RegisteredStatusNotifierItems" type="as" access="read"/>
    <property name="IsStatusNotifierHostRegistered" type="b" access="read"/>
    <property name="ProtocolVersion" type="i" access="read"/>
    <signal name="StatusNotifierItemRegistered"><arg type="s"/></signal>
    <signal name="StatusNotifierItemUnregistered"><arg type="s"/></signal>
    <signal name="StatusNotifierHostRegistered"/>
  </interface>
</node>
"""


def run_watcher():
    """Serve org.kde.StatusNotifierWatcher until killed. Items are kept as `bus-name/path` (the
    registering connection's unique name when the item passes only a path, as libayatana does),
    and dropped when their connection leaves the bus."""
    items = []  # "unique-name/object/path", in registration order
    watches = {}
    info = Gio.DBusNodeInfo.new_for_xml(WATCHER_XML).interfaces[0]
    conn = Gio.bus_get_sync(Gio.BusType.SESSION, None)

    def emit(name, arg):
        conn.emit_signal(None, WATCHER_PATH, WATCHER, name, GLib.Variant("(s)", (arg,)))

    def vanished(_conn, name):
        for it in [i for i in items if i.split("/", 1)[0] == name]:
            items.remove(it)
            emit("StatusNotifierItemUnregistered", it)
        w = watches.pop(name, None)
        if w is not None:
            Gio.bus_unwatch_name(w)

    def method(_conn, sender, _path, _iface, name, params, invocation):
        if name == "RegisterStatusNotifierItem":
            (service,) = params.unpack()
            if service.startswith("/"):
                bus_name, path = sender, service
            else:
                bus_name, path = service, "/StatusNotifierItem"
            item = f"{bus_name}{path}"
            if item not in items:
                items.append(item)
                if bus_name not in watches:
                    watches[bus_name] = Gio.bus_watch_name_on_connection(
                        conn, bus_name, Gio.BusNameWatcherFlags.NONE, None, vanished)
                emit("StatusNotifierItemRegistered", item)
            invocation.return_value(None)
        elif name == "RegisterStatusNotifierHost":
            invocation.return_value(None)
        else:
            invocation.return_dbus_error("org.freedesktop.DBus.Error.UnknownMethod", name)

    def get_property(_conn, _sender, _path, _iface, name):
        return {
            "RegisteredStatusNotifierItems": GLib.Variant("as", items),
            "IsStatusNotifierHostRegistered": GLib.Variant("b", True),
            "ProtocolVersion": GLib.Variant("i", 0),
        }.get(name)

    conn.register_object(WATCHER_PATH, info, method, get_property, None)
    loop = GLib.MainLoop()

    def lost(*_):
        print("sni.py: the watcher name is taken or lost", file=sys.stderr, flush=True)
        loop.quit()

    Gio.bus_own_name_on_connection(conn, WATCHER, Gio.BusNameOwnerFlags.NONE, None, lost)
    loop.run()
    sys.exit(1)


def _bus():
    return Gio.bus_get_sync(Gio.BusType.SESSION, None)


def _call(dest, path, iface, method, params, reply):
    return _bus().call_sync(dest, path, iface, method, params, GLib.VariantType.new(reply),
                            Gio.DBusCallFlags.NONE, CALL_TIMEOUT_MS, None).unpack()


def watcher_running():
    (has,) = _call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                   "NameHasOwner", GLib.Variant("(s)", (WATCHER,)), "(b)")
    return has


def items():
    """The items registered with the watcher, as (bus name, object path)."""
    (v,) = _call(WATCHER, WATCHER_PATH, "org.freedesktop.DBus.Properties", "Get",
                 GLib.Variant("(ss)", (WATCHER, "RegisteredStatusNotifierItems")), "(v)")
    out = []
    for it in v:
        i = it.find("/")
        out.append((it[:i], it[i:]) if i > 0 else (it, "/StatusNotifierItem"))
    return out


def item_property(item, name):
    dest, path = item
    (v,) = _call(dest, path, "org.freedesktop.DBus.Properties", "Get",
                 GLib.Variant("(ss)", (ITEM_IFACE, name)), "(v)")
    return v


def menu_of(item):
    """Where the item's menu lives: (bus name, dbusmenu object path)."""
    return item[0], item_property(item, "Menu")


def plain_label(label):
    """A GTK label without its mnemonic underscores (`__` is a literal `_`)."""
    out, i = [], 0
    while i < len(label):
        if label[i] == "_":
            i += 1
            if i < len(label):
                out.append(label[i])
        else:
            out.append(label[i])
        i += 1
    return "".join(out)


def _node(raw):
    ident, props, children = raw
    return {
        "id": ident,
        "label": plain_label(props.get("label", "")),
        "type": props.get("type", "standard"),
        "enabled": props.get("enabled", True),
        "visible": props.get("visible", True),
        "children": [_node(c) for c in children],
    }


def layout(menu):
    """The whole menu tree (GetLayout from the root, every level), after telling the menu it is
    about to be shown, as a panel does when the user opens it."""
    dest, path = menu
    about_to_show(menu, 0)
    (_revision, root) = _call(dest, path, MENU_IFACE, "GetLayout",
                              GLib.Variant("(iias)", (0, -1, [])), "(u(ia{sv}av))")
    return _node(root)


def about_to_show(menu, ident):
    dest, path = menu
    _call(dest, path, MENU_IFACE, "AboutToShow", GLib.Variant("(i)", (ident,)), "(b)")


def click(menu, ident):
    """What a panel sends when the user clicks an entry."""
    dest, path = menu
    _call(dest, path, MENU_IFACE, "Event",
          GLib.Variant("(isvu)", (ident, "clicked", GLib.Variant("i", 0), int(time.time()) & 0xFFFFFFFF)),
          "()")


def find(node, *labels):
    """The visible entry reached by following labels from the root, each matched as a prefix
    of the label or, when it starts with `~`, as a substring; None when there is none."""
    for want in labels:
        nxt = None
        for c in node["children"]:
            if not c["visible"]:
                continue
            lab = c["label"]
            if (want[1:] in lab) if want.startswith("~") else lab.startswith(want):
                nxt = c
                break
        if nxt is None:
            return None
        node = nxt
    return node


def labels(node, depth=0):
    """The tree's labels, indented, for failure messages."""
    out = []
    for c in node["children"]:
        if c["visible"]:
            flag = "" if c["enabled"] else " (disabled)"
            out.append("  " * depth + (c["label"] or f"<{c['type']}>") + flag)
            out.extend(labels(c, depth + 1))
    return out


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "watcher":
        run_watcher()
    elif cmd == "items":
        print(json.dumps(items()))
    elif cmd == "layout":
        print(json.dumps({f"{d}{p}": layout(menu_of((d, p))) for d, p in items()}, indent=1,
                         ensure_ascii=False))
    else:
        sys.exit("usage: sni.py watcher|items|layout")


if __name__ == "__main__":
    main(sys.argv)
